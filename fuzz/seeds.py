"""Seed corpora: what each harness starts from, cut out of the bundled and public captures.

``build(name, out_dir)`` writes one file per seed (named by its SHA-1, so rebuilding is idempotent) and
returns how many. Messages, bodies, TCP conversations, SCTP packets, fragments and ClientHellos come out
of ``sample_captures/`` and ``../shared/captures/public/`` through mcxa's own transport stage; WebSocket
frames, fragment sets and SCTP packets are also made from real SIP messages, so every harness starts
from inputs that reach its deep paths. YAML harnesses start from the shipped and hostile files.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import struct
import zlib
from collections.abc import Iterator
from functools import cache
from glob import glob

from fuzz import CORPUS, HARNESSES
from fuzz.harness import WHOLE, pack
from fuzz.packets import SCTP, TCP, UDP, Frame, layers, pcapng_bytes, read_capture

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLIC = os.path.join(os.path.dirname(REPO), "shared", "captures", "public")
#: Seeds per harness at most (the corpus grows from there).
MAX_SEEDS = 400


def capture_files() -> list[str]:
    """Every seed capture: the bundled samples (and real/), and the public captures when present."""
    found = []
    for pattern in ("sample_captures/*.pcap*", "sample_captures/real/*.pcap*"):
        found += sorted(glob(os.path.join(REPO, pattern)))
    found += sorted(glob(os.path.join(PUBLIC, "*.pcap*")))
    return found


@cache
def _frames(path: str) -> tuple[Frame, ...]:
    return tuple(read_capture(path))


@cache
def _payloads(path: str) -> tuple:
    """The transport stage's payloads (SIP/HTTP messages, whole) of one capture."""
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.capture import open_capture
    from analyzer.transport.demux import Demux
    from analyzer.transport.records import Payload

    diag = Diagnostics()
    with open_capture(path, diag) as reader:
        return tuple(p for p in Demux(diag).run(reader) if isinstance(p, Payload))


def _messages(proto: str | None = None) -> Iterator[bytes]:
    for path in capture_files():
        for p in _payloads(path):
            is_http = p.data.startswith(b"HTTP/") or b" HTTP/1." in p.data[:2048]
            if proto is None or (proto == "http") == is_http:
                yield p.data


def _bodies() -> Iterator[tuple[str, bytes]]:
    """(Content-Type, body) of every message with a body."""
    from analyzer.messages.decode import to_message
    from analyzer.messages.parse import MalformedMessage
    from analyzer.transport.records import Payload

    for data in _messages():
        try:
            m, _ = to_message(Payload(data, (1,), 0.0, "a:1", "b:2", "udp"))
        except MalformedMessage:
            continue
        if m.body:
            yield m.content_type or "", m.body


def _tcp_flows() -> Iterator[list[tuple[bool, int, int, bytes]]]:
    """Each TCP connection of the seed captures: (from server, flags, seq, payload) per segment."""
    for path in capture_files():
        flows: dict[bytes, list] = {}
        for f in _frames(path):
            lay = layers(f)
            if lay is None or lay.proto != TCP:
                continue
            key = lay.flow(f.data)
            half = len(key) // 2 - 2
            reverse = key[half:2 * half] + key[:half] + key[-2:] + key[-4:-2]
            if reverse in flows:
                client, key = False, reverse
            else:
                client = True
            d, l4 = f.data, lay.l4
            seq = int.from_bytes(d[l4 + 4:l4 + 8], "big")
            flows.setdefault(key, []).append((not client, d[l4 + 13], seq, d[lay.payload:lay.end]))
        yield from flows.values()


def _stream(flow, from_server: bool) -> bytes:
    """One direction's bytes in capture order (retransmissions and all)."""
    return b"".join(data for server, _, _, data in flow if server == from_server)


# -- per harness ---------------------------------------------------------------------------------------

def _pcap() -> Iterator[bytes]:
    for path in capture_files():
        with open(path, "rb") as f:
            raw = f.read()
        if len(raw) <= HARNESSES["pcap"].max_len:
            yield raw
            continue
        frames, size = [], 0
        for fr in _frames(path):
            size += len(fr.data) + 32
            if size > HARNESSES["pcap"].max_len - 1024:
                break
            frames.append(fr)
        yield pcapng_bytes(frames)
    small = min(capture_files(), key=os.path.getsize)
    with open(small, "rb") as f:
        yield gzip.compress(f.read(), mtime=0)


def _link() -> Iterator[bytes]:
    from fuzz.fuzz_link import selector

    for path in capture_files():
        for f in _frames(path)[:40]:
            pick = selector(f.linktype)
            if pick is not None:
                yield bytes((pick,)) + f.data[:2048]


def _fragments() -> Iterator[bytes]:
    from analyzer.capture.link import LINK_DECODERS

    for path in capture_files():
        packets = []
        for f in _frames(path):
            try:
                found = LINK_DECODERS[f.linktype](f.data)
            except Exception:
                continue
            if found and layers(f) is None:
                packets.append((1, f.data[found[1]:]))
        for i in range(0, len(packets), 40):
            yield pack(packets[i:i + 40])
    rng = random.Random(1)
    for data in list(_messages("sip"))[:60]:
        yield pack((rng.randrange(4), p) for p in _fragmented(data, rng))


def _esp() -> Iterator[bytes]:
    """SIP messages in ESP of each kind the harness knows (NULL, NULL + HMAC, AES-CBC, AES-GCM), over UDP
    and TCP, in transport and tunnel mode, a few packets per input."""
    from fuzz.fuzz_esp import seal

    spis = (0x1234, 0x10, 0x20, 0x30)
    for i, data in enumerate(list(_messages("sip"))[:80]):
        spi = spis[i % 4]
        udp = struct.pack(">HHHH", 5060, 5060, 8 + len(data), 0) + data
        tcp = struct.pack(">HHIIBBHHH", 5060, 40000, 1, 0, 0x50, 0x18, 65535, 0, 0) + data
        tunnel = (b"\x45\x00" + (20 + len(udp)).to_bytes(2, "big") + b"\x00\x01\x00\x00\x40\x11\x00\x00"
                  + bytes((192, 168, 0, 1, 192, 168, 0, 2)) + udp)
        yield pack([(i & 3, seal(spi, udp, 17)), (1, seal(spi, tcp, 6, 2)), (0x0C, seal(spi, tunnel, 4, 3))])


def _fragmented(payload: bytes, rng: random.Random) -> list[bytes]:
    """A UDP datagram carrying ``payload`` as IPv4 fragments of 8-byte multiples, shuffled."""
    udp = struct.pack(">HHHH", 5060, 5060, 8 + len(payload), 0) + payload
    ident, size, out = rng.randrange(1 << 16), 8 * rng.randrange(8, 64), []
    for off in range(0, len(udp), size):
        more = 0x2000 if off + size < len(udp) else 0
        piece = udp[off:off + size]
        out.append(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(piece), ident, more | off // 8, 64, UDP, 0,
                               b"\x0a\0\0\x01", b"\x0a\0\0\x02") + piece)
    rng.shuffle(out)
    return out


def _tcp() -> Iterator[bytes]:
    from fuzz.fuzz_tcp import tag

    for flow in _tcp_flows():
        for i in range(0, len(flow), 48):
            yield pack((tag(server, flags), seq.to_bytes(4, "big") + data)
                       for server, flags, seq, data in flow[i:i + 48])


def _sctp() -> Iterator[bytes]:
    for path in capture_files():
        packets = [f.data[lay.l4:lay.end] for f in _frames(path) if (lay := layers(f)) and lay.proto == SCTP]
        if packets:
            yield pack((0, p) for p in packets)
    for n, data in enumerate(list(_messages("sip"))[:40]):
        cut = 1 + n * 37 % max(1, len(data) - 1)
        chunks = [_data_chunk(data, 3)] if n % 2 else [_data_chunk(data[:cut], 2), _data_chunk(data[cut:], 1)]
        yield pack((n & 3, struct.pack(">HHII", 5060, 5060, 1, 0) + c) for c in chunks)


def _data_chunk(user: bytes, flags: int) -> bytes:
    body = struct.pack(">IHHI", 1, 0, 0, 0) + user
    return struct.pack(">BBH", 0, flags, 4 + len(body)) + body + b"\0" * (-len(body) % 4)


def _framer() -> Iterator[bytes]:
    whole = WHOLE << 2
    for flow in _tcp_flows():
        for server in (False, True):
            data = _stream(flow, server)
            if data and data[0] != 0x16:
                yield pack([(whole, data[:3500])])
    udp = list(_messages())
    for i in range(0, len(udp), 4):
        yield pack([(whole, b"".join(udp[i:i + 4])[:3500])])


def _websocket() -> Iterator[bytes]:
    for flow in _tcp_flows():
        for server in (False, True):
            data = _stream(flow, server)
            if data.startswith((b"GET ", b"HTTP/1.1 101")) and b"\r\n\r\n" in data:
                rest = data.split(b"\r\n\r\n", 1)[1]
                if rest:
                    yield b"\0" + pack([(WHOLE << 1, rest[:8000])])
    for n, data in enumerate(list(_messages("sip"))[:60]):
        mask = n.to_bytes(4, "big") if n % 2 else None
        deflate = n % 3 == 0
        body = data
        if deflate:  # RFC 7692 §7.2.1: a sync flush, its 00 00 ff ff tail removed
            c = zlib.compressobj(wbits=-15)
            body = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        yield bytes((int(deflate),)) + pack([(WHOLE << 1, _ws_frame(body, mask, 0x40 if deflate else 0))])


def _ws_frame(payload: bytes, mask: bytes | None, rsv: int) -> bytes:
    n = len(payload)
    head = bytes((0x81 | rsv,))
    bit = 0x80 if mask else 0
    head += bytes((bit | n,)) if n < 126 else bytes((bit | 126,)) + n.to_bytes(2, "big")
    if mask:
        from analyzer.transport.websocket import unmask

        return head + mask + unmask(payload, mask)
    return head + payload


def _tls() -> Iterator[bytes]:
    for flow in _tcp_flows():
        data = _stream(flow, False)
        if data[:1] == b"\x16":
            yield bytes((WHOLE,)) + data[:4000]
            yield bytes((7,)) + data[:4000]


def _xml() -> Iterator[bytes]:
    from analyzer.messages.multipart import body_parts
    from analyzer.messages.parse import MalformedBody

    for content_type, body in _bodies():
        try:
            parts = body_parts(content_type, body)
        except MalformedBody:
            continue
        for part in parts:
            if part.content_type.endswith("xml"):
                yield part.body
    for path in sorted(glob(os.path.join(REPO, "tests", "hostile", "*.xml"))):
        with open(path, "rb") as f:
            yield f.read()


def _multipart() -> Iterator[bytes]:
    for content_type, body in _bodies():
        yield content_type.encode("utf-8", "replace") + b"\n" + body


def _files(*patterns: str) -> Iterator[bytes]:
    for pattern in patterns:
        for path in sorted(glob(os.path.join(REPO, pattern))):
            with open(path, "rb") as f:
                yield f.read()


def _floor() -> Iterator[bytes]:
    """Every message synth writes, alone, in pairs, through the demux, and among RTP."""
    from analyzer.synth.floor import MCPC, MCPT, floor_message, mcpc_message, rtp_packet

    user = "sip:alice@mcx.example"
    packets = [floor_message(m, 7, ack=bool(n & 1), user_id=user, duration=30, ssrc=9, sequence_number=n,
                             priority=3) for n, m in enumerate(MCPT)]
    packets += [mcpc_message(m, 8, session_identity="sip:g@x", group_id="sip:g@x", answer_state=1)
                for m in MCPC]
    for n, packet in enumerate(packets):
        yield pack([(n & 1, packet)])
        yield pack([(1, rtp_packet(5, n, n * 160)), (1, packet), (0, packet + packets[n - 1])])


def _refers() -> Iterator[bytes]:
    """REFERs of pre-established sessions the samples do not show: Refer-To in compact form with a
    multipart body, inside the session's dialog (no Target-Dialog), a Reason as a URI header, a body
    referenced from the REFER's own body."""
    head = ("REFER sip:gc-1@10.10.0.10 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.0.5;branch=z9hG4bK1\r\n"
            "From: <sip:a@a.example>;tag=1\r\nTo: <sip:gc-1@a.example>;tag=2\r\nCall-ID: pre1\r\n"
            "CSeq: 2 REFER\r\n")
    multipart = ("multipart%2Fmixed%3Bboundary%3Db&body=--b%0D%0AContent-Type%3A%20application%2Fvnd.3gpp."
                 "mcptt-info%2Bxml%0D%0A%0D%0A%3Cmcpttinfo%3E%3Cmcptt-Params%3E%3Csession-type%3Eprivate%3C"
                 "%2Fsession-type%3E%3C%2Fmcptt-Params%3E%3C%2Fmcpttinfo%3E%0D%0A--b--")
    for extra, body in (
            (f"r: <sip:bob@a.example?Content-Type={multipart}>\r\n", ""),
            ("Refer-To: <sip:G1@a.example;method=BYE?Reason=SIP%3Bcause%3D200%3Btext%3D%22MC%20migration%22>"
             "\r\nTarget-Dialog: pre1;local-tag=1;remote-tag=2\r\n", ""),
            ("Refer-To: <cid:x@a.example>\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n",
             "<mcpttinfo><mcptt-Params><session-type>chat</session-type></mcptt-Params></mcpttinfo>")):
        yield f"{head}{extra}Content-Length: {len(body)}\r\n\r\n{body}".encode()


SOURCES = {
    "pcap": _pcap, "link": _link, "fragments": _fragments, "esp": _esp, "tcp": _tcp, "sctp": _sctp,
    "sip": lambda: _messages("sip"), "http": lambda: _messages("http"), "framer": _framer,
    "multipart": _multipart, "xml": _xml, "websocket": _websocket, "tls": _tls, "floor": _floor,
    "rules": lambda: _files("rules/*.yaml", "tests/hostile/rules/*.yaml"),
    "scenario": lambda: _files("sample_captures/*.yaml", "analyzer/synth/examples/*.yaml",
                               "tests/hostile/scenarios/*.yaml"),
    "expect": lambda: _files("sample_captures/expected.yaml", "tests/hostile/expect/*.yaml"),
    "mcfacts": lambda: (*_refers(), *_messages()),
}


def seed_dir(name: str) -> str:
    return os.path.join(os.path.dirname(CORPUS), "seeds", name)


def build(name: str, out_dir: str | None = None) -> int:
    """Write ``name``'s seeds (at most ``MAX_SEEDS``, each cut to the harness's ``max_len``) into
    ``out_dir`` (default ``fuzz/seeds/NAME``); returns how many distinct seeds there are."""
    out_dir = out_dir or seed_dir(name)
    os.makedirs(out_dir, exist_ok=True)
    limit = HARNESSES[name].max_len
    seen: set[str] = set()
    for data in SOURCES[name]():
        data = data[:limit]
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        path = os.path.join(out_dir, digest)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        if len(seen) >= MAX_SEEDS:
            break
    return len(seen)
