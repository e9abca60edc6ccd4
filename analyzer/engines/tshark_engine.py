"""The tshark engine: Wireshark's dissectors find the messages, our parsers read them.

Runs ``tshark -r FILE -Y DISPLAY_FILTER -T ek -x -z io,phs`` as a subprocess and
reads its output one line (one packet) at a time. ``-x`` adds ``sip_raw``/``http_raw``: the bytes of each
message as Wireshark reassembled (TCP, IP fragments, WebSocket) or decrypted them (TLS with a key log).
Those bytes go through the same ``to_message`` as the dpkt engine, so the records are the same; the frame
is the one Wireshark shows the message in (the one that completed it). MC media-plane control packets
(floor control, MCPC) are found by the dpkt engine's signature and read from ``udp.payload`` by the same
decoder. ``-z io,phs`` ends the output with the number of frames tshark read, which the display filter
would otherwise hide.

Damaged input reads as with the dpkt engine: the project's reader opens the capture first and walks it
beside tshark (``tshark_input.Walk``), so an unreadable file fails before any output with the same line.
tshark's complaints on stderr become the same diagnostic codes (``READ_ERRORS``; unknown ones are
``tshark-warning``, or ``read-error`` when tshark failed). When tshark stopped after the same frame as the
walk, the walk's diagnostics and byte offset stand for both; else tshark's own account does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import InputError
from analyzer.engines.dpkt_engine import _floor, _message
from analyzer.engines.records import Decoded, DecodeOptions, DecodeStats, ReadStop
from analyzer.engines.tshark_command import command
from analyzer.engines.tshark_input import Walk
from analyzer.messages.floor import FloorMessage
from analyzer.messages.records import Message
from analyzer.transport.bodies import plain_message
from analyzer.transport.esp import EspReader
from analyzer.transport.records import (
    DIAGNOSTIC,
    ENCRYPTED,
    MEDIA,
    SIGNALLING,
    ControlPayload,
    Payload,
    TlsHello,
    endpoint,
)
from analyzer.transport.rtcp import is_control

#: tshark's read errors (wiretap's wording, tshark 3.x/4.x) → diagnostic code; any other error that ends
#: tshark's reading is a ``read-error``.
READ_ERRORS = (
    ("cut short in the middle of a packet", "truncated-packet"),
    ("cannot be decompressed", "bad-compression"),
    ("appears to be damaged or corrupt", "bad-record"),
)
#: The fate of the packets tshark's display filter does not show (``DecodeStats.accounting``).
UNSHOWN = "unclassified"
_FRAMES_READ = re.compile(rb"frame +frames:(\d+) ")  # the top line of ``-z io,phs``
_TSHARK_STDERR_KEEP = 64 << 10  # bytes of tshark's stderr read back; the rest is dropped


def decode(path: str, options: DecodeOptions | None = None) -> Decoded:
    """Check the inputs now (so a missing tshark or an unreadable capture fails before any output, with the
    dpkt engine's line); decode lazily."""
    options = options or DecodeOptions()
    if shutil.which("tshark") is None:
        raise InputError("tshark is not installed (apt-get install tshark)")
    if options.tls_keylog and not Path(options.tls_keylog).is_file():
        raise InputError("no such TLS key log file", options.tls_keylog)
    decoded = Decoded(path, iter(()))
    walk = Walk(str(path))
    decoded.items = _run(walk, options, decoded)
    return decoded


class _Shown:
    """What tshark's output showed: frames (and those whose every message was malformed), the last one,
    and the frames it read (``-z io,phs``; None when it did not get that far)."""

    __slots__ = ("encrypted", "failed", "frames", "last_frame", "last_time", "media", "read")

    def __init__(self):
        self.frames = self.failed = self.last_frame = self.encrypted = self.media = 0
        self.last_time: float | None = None
        self.read: int | None = None


def _run(walk: Walk, options: DecodeOptions, decoded: Decoded) -> Iterator[Message | FloorMessage | TlsHello]:
    stats, diag = decoded.stats, decoded.diagnostics
    stats.tls_keylog = bool(options.tls_keylog)
    decryptable = _client_randoms(options.tls_keylog)
    shown = _Shown()
    esp = EspReader()  # counts the ESP packets Wireshark could not open, as the dpkt engine does
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command(walk.tshark_path, options), stdout=subprocess.PIPE, stderr=errors,
                                stdin=walk.tshark_stdin)
        if walk.tshark_stdin != subprocess.DEVNULL:
            os.close(walk.tshark_stdin)  # tshark holds it now
        walk.start()
        try:
            for line in proc.stdout:
                if not line.startswith(b'{"timestamp"'):
                    found = _FRAMES_READ.match(line)
                    if found:
                        shown.read = int(found.group(1))
                    continue  # the ek index lines, the rest of the io,phs table
                packet = json.loads(line)["layers"]
                frame = packet["frame"]
                shown.frames += 1
                shown.last_frame = int(frame["frame_frame_number"])
                shown.last_time = float(frame["frame_frame_time_epoch"])
                if options.progress:  # tshark's position: the last frame it showed (its bytes are its own)
                    stats.packets = shown.last_frame
                    options.progress(stats)
                if _unopened_esp(packet, esp):
                    shown.encrypted += 1
                    continue
                good = bad = 0
                for item in _items(packet, decryptable):
                    if type(item) is ControlPayload:
                        shown.media += 1
                        for message in _floor(item, diag):
                            stats.count(message)
                            yield message
                        continue
                    if isinstance(item, Payload):
                        item = _message(item, diag)
                        if item is None:
                            bad += 1
                            continue
                    good += 1
                    stats.count(item)
                    yield item
                if bad and not good:  # every message of the frame was malformed
                    shown.failed += 1
            rc = proc.wait()
        finally:
            if proc.poll() is None:  # the consumer stopped early
                proc.kill()
                proc.wait()
            proc.stdout.close()
        errors.seek(0)
        complaints = _complaints(errors.read(_TSHARK_STDERR_KEEP).decode("utf-8", "replace"))
    walk.join()
    _account(stats, diag, walk, shown, complaints, rc)
    stats.accounting = {SIGNALLING: shown.frames - shown.failed - shown.encrypted - shown.media,
                        MEDIA: shown.media, DIAGNOSTIC: shown.failed,
                        UNSHOWN: max(0, stats.packets - shown.frames)}
    if shown.encrypted:
        stats.accounting[ENCRYPTED] = shown.encrypted
        stats.esp = esp.summary()
    if options.progress:
        options.progress(stats)


def _complaints(stderr: str) -> list[str]:
    """tshark's stderr as one line per message (a message's continuation lines are joined to it)."""
    said: list[str] = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line or line.startswith("Running as user"):
            continue
        if line.startswith("tshark:") or not said:
            said.append(line.removeprefix("tshark:").strip())
        else:
            said[-1] += " " + line
    return said


def _account(stats: DecodeStats, diag: Diagnostics, walk: Walk, shown: _Shown, complaints: list[str],
             rc: int) -> None:
    """Packets read, where reading stopped and why: the walk's account when it agrees with tshark's."""
    reader = walk.reader
    if shown.read is not None:
        stats.packets = shown.read
    else:  # tshark did not get to its summary: it read at least the frames it showed
        stats.packets = reader.packets if rc == 0 else shown.last_frame
    stats.bytes_read = reader.bytes_read
    stats.last_time = reader.last_time if reader.packets == stats.packets else shown.last_time
    coded = [(next((c for words, c in READ_ERRORS if words in said), None), said) for said in complaints]
    # the error that ended tshark's reading: the first it names, else its last words when it failed
    fatal = next((i for i, (code, _) in enumerate(coded) if code), len(coded) - 1 if rc != 0 else None)
    for i, (_, said) in enumerate(coded):
        if i != fatal:
            diag.add("tshark-warning", f"tshark: {said}")
    if fatal is None:
        return
    code, said = coded[fatal] if coded else (None, f"tshark exited with status {rc}")
    ours = reader.stopped
    if ours is not None and ours.frame == stats.packets:  # the same damage: say it as the dpkt engine does
        diag.merge(walk.diagnostics.counts, walk.diagnostics.records)
        stats.stopped = ReadStop(*ours)
        return
    stats.stopped = ReadStop(code or "read-error", stats.packets, None, f"tshark: {_the_capture(said)}")
    diag.add(stats.stopped.code, f"{stats.stopped.reason}; reading stopped after frame {stats.packets}",
             frames=(stats.packets + 1,))


def _the_capture(said: str) -> str:
    """tshark's message with the file named as "the capture" (the report names the file)."""
    return re.sub(r'^The (file "[^"]*"|standard input)', "the capture", said)


def _listed(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _last(layers: dict, name: str) -> dict | None:
    """The innermost instance of a protocol layer (tunnels repeat ip/eth)."""
    found = _listed(layers.get(name))
    return found[-1] if found else None


def _find(tree, key: str):
    """First value of ``key`` anywhere in a nested layer (TLS nests records and handshakes)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = tree.values()
    elif not isinstance(tree, list):
        return None
    for sub in tree:
        found = _find(sub, key)
        if found is not None:
            return found
    return None


def _first(value):
    return value[0] if isinstance(value, list) else value


_PIECES = {"ip": "ip_ip_fragment", "ipv6": "ipv6_ipv6_fragment", "tcp": "tcp_tcp_segment",
           "sctp": "sctp_sctp_fragment"}


def _pieces(layer: str, layers: dict) -> list:
    """Frame numbers of a reassembly's pieces: at the top level (TCP) or inside the layer (IP, SCTP)."""
    key = _PIECES[layer]
    found = _listed(layers.get(key))
    for tree in _listed(layers.get(layer)):
        if isinstance(tree, dict):
            found += _listed(tree.get(key))
    return found


def _client_randoms(keylog: str | None) -> frozenset[str]:
    """Client randoms the key log has secrets for (NSS format: ``LABEL <client random hex> <secret>``)."""
    if not keylog:
        return frozenset()
    with open(keylog, encoding="ascii", errors="replace") as fh:
        return frozenset(parts[1].lower() for parts in map(str.split, fh)
                         if len(parts) == 3 and not parts[0].startswith("#"))


def _unopened_esp(layers: dict, esp: EspReader) -> bool:
    """Is this an ESP packet Wireshark could not open? Then count it by SPI and addresses."""
    layer = _last(layers, "esp")
    if layer is None or "esp_esp_protocol" in layer or any(p in layers for p in ("sip", "http", "tls")):
        return False
    ip6, ip4 = _last(layers, "ipv6"), _last(layers, "ip")
    if ip6 is not None and (ip4 is None or list(layers).index("ipv6") > list(layers).index("ip")):
        src, dst = ip6.get("ipv6_ipv6_src"), ip6.get("ipv6_ipv6_dst")
    elif ip4 is not None:
        src, dst = ip4.get("ip_ip_src"), ip4.get("ip_ip_dst")
    else:
        return False
    try:
        spi = int(str(_first(layer.get("esp_esp_spi"))), 0)
        esp.count_unread(spi, ip_address(_first(src)).packed, ip_address(_first(dst)).packed)
    except ValueError:
        return False
    return True


def _endpoints(layers: dict) -> tuple[str, str, str] | None:
    """Source, destination and transport of a packet: from its innermost IP and TCP/UDP/SCTP headers, or
    from the tags of an exported PDU (Wireshark "Export PDUs" files; ``0.0.0.0`` for an address it lacks)."""
    ip6, ip4 = _last(layers, "ipv6"), _last(layers, "ip")
    pdu = _last(layers, "exported_pdu")
    if pdu is not None and ip4 is None and ip6 is None:
        tag = "exported_pdu_exported_pdu_"
        ends = [_first(pdu.get(f"{tag}ipv6_{end}") or pdu.get(f"{tag}ipv4_{end}")) or "0.0.0.0"
                for end in ("src", "dst")]
        ports = [int(_first(pdu.get(f"{tag}{end}_port")) or 0) for end in ("src", "dst")]
        kind = {"1": "sctp", "2": "tcp", "3": "udp"}.get(str(_first(pdu.get(f"{tag}port_type"))))
        name = str(_first(pdu.get(f"{tag}prot_name")) or "")
        return (endpoint(ends[0], ports[0]), endpoint(ends[1], ports[1]),
                kind or ("tcp" if "http" in name else "udp"))
    # the innermost IP header is the last one: with IPv6 in IPv4 (or the reverse) take whichever came later
    if ip4 and ip6:
        keys = list(layers)
        use6 = keys.index("ipv6") > keys.index("ip")
    else:
        use6 = ip6 is not None
    if use6:
        src_ip, dst_ip = ip6.get("ipv6_ipv6_src"), ip6.get("ipv6_ipv6_dst")
    elif ip4:
        src_ip, dst_ip = ip4.get("ip_ip_src"), ip4.get("ip_ip_dst")
    else:
        return None
    for transport in ("tcp", "udp", "sctp"):
        layer = _last(layers, transport)
        if layer is not None:
            sport = _first(layer.get(f"{transport}_{transport}_srcport"))
            dport = _first(layer.get(f"{transport}_{transport}_dstport"))
            return endpoint(_first(src_ip), int(sport)), endpoint(_first(dst_ip), int(dport)), transport
    return None


def _items(layers: dict, decryptable: frozenset[str] = frozenset()) -> Iterator[Payload | TlsHello]:
    frame_layer = layers["frame"]
    frame = int(frame_layer["frame_frame_number"])
    time = float(frame_layer["frame_frame_time_epoch"])
    found = _endpoints(layers)
    if found is None:
        return
    src, dst, transport = found
    tls = "tls" in layers
    if tls and "http" not in layers and "sip" not in layers:
        random = _find(layers["tls"], "tls_tls_handshake_random")
        if isinstance(random, str) and random.replace(":", "").lower() in decryptable:
            return  # the key log decrypts this session: its HTTP messages follow, not an opaque flow
        sni = _find(layers["tls"], "tls_tls_handshake_extensions_server_name")
        yield TlsHello(frame, time, src, dst, _first(sni))
        return
    payload = (_last(layers, "udp") or {}).get("udp_udp_payload_raw") if transport == "udp" else None
    if isinstance(payload, str) and "sip" not in layers and is_control(data := bytes.fromhex(payload)):
        yield ControlPayload(data, (frame,), time, src, dst)  # (media-plane control: ``MEDIA_CONTROL``)
        return
    kind = "tls" if tls else transport
    framing = "websocket" if "websocket" in layers else None
    # every frame that carried a piece: TCP segments, IPv4/IPv6 fragments, SCTP chunks
    segments = sorted({int(f) for layer in ("ip", "ipv6", "tcp", "sctp") if layer in layers
                       for f in _pieces(layer, layers) if str(f).isdigit()})
    frames = (*(f for f in segments if f != frame), frame)
    for proto in ("sip", "http"):
        raws = _listed(layers.get(f"{proto}_raw"))
        trees = _listed(layers.get(proto))
        for i, raw in enumerate(raws):
            data = bytes.fromhex(raw)
            reply_to = None
            if proto == "http" and i < len(trees) and isinstance(trees[i], dict):
                request_in = trees[i].get("http_http_request_in")
                if not request_in and "http_http_response" in trees[i]:  # Wireshark did not pair it
                    request_in = trees[i].get("http_http_prev_request_in")
                reply_to = int(_first(request_in)) if request_in else None
                data = _http_with_body(data, trees[i], layers, len(raws))
            yield Payload(data, frames, time, src, dst, kind, framing, reply_to)


def _http_with_body(head: bytes, tree: dict, layers: dict, count: int) -> bytes:
    """``http_raw`` covers the start line and headers only; add the body as it was on the wire.

    One HTTP message completed by TCP reassembly: the reassembled PDU is the whole message. Otherwise
    (one segment, or decrypted TLS) the dissected body follows the headers.
    """
    body = tree.get("http_http_file_data_raw")
    if "chunked" in str(tree.get("http_http_transfer_encoding", "")).lower() and isinstance(body, str):
        # as our framer does: the de-chunked body with a Content-Length instead of the framing fields
        body = bytes.fromhex(body)
        end = head.find(b"\r\n\r\n")
        head = head[:end + 2] if end >= 0 else head.rstrip(b"\r\n") + b"\r\n"
        return plain_message(head, body)
    reassembled = layers.get("tcp_tcp_reassembled_data_raw")
    if count == 1 and isinstance(reassembled, str):
        whole = bytes.fromhex(reassembled)
        if whole.startswith(head):
            return whole
    if isinstance(body, str):
        return head + bytes.fromhex(body)
    return head
