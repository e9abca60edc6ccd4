"""The default engine: our own record walker, link/IP/transport decoders (dpkt for SCTP), our parsers."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.capture import open_capture
from analyzer.engines import Decoded, DecodeOptions, DecodeStats
from analyzer.messages.parse import MalformedMessage, to_message
from analyzer.messages.records import Message
from analyzer.transport.demux import Demux
from analyzer.transport.records import Payload, TlsHello

_PROGRESS_EVERY = 1 << 16  # packets between progress callbacks


def decode(path: str, options: DecodeOptions | None = None) -> Decoded:
    """Open ``path`` now (so a bad file fails before any output) and decode it lazily."""
    options = options or DecodeOptions()
    decoded = Decoded(path, iter(()))
    reader = open_capture(path, decoded.diagnostics)
    decoded.items = _items(reader, decoded, options)
    return decoded


def _items(reader, decoded: Decoded, options: DecodeOptions) -> Iterator[Message | TlsHello]:
    stats, diag = decoded.stats, decoded.diagnostics
    demux = Demux(diag, options.sip_ports)
    with reader:
        packets = _counting(reader, stats, options.progress) if options.progress else reader
        for item in demux.run(packets):
            if isinstance(item, Payload):
                item = _message(item, diag)
                if item is None:
                    continue
            stats.count(item)
            yield item
        stats.packets = demux.packets
        stats.bytes_read = reader.bytes_read


def _message(payload: Payload, diag) -> Message | None:
    try:
        message, parsed = to_message(payload)
    except MalformedMessage as exc:
        proto = "http" if payload.data[:5] == b"HTTP/" or b" HTTP/1." in payload.data[:2048] else "sip"
        diag.add(f"malformed-{proto}", f"{payload.src} → {payload.dst}: {exc}", payload.frames)
        return None
    if parsed.junk:
        diag.add("junk-before-message", f"{parsed.junk} byte(s) before the {message.proto.upper()} "
                 "start line were skipped", payload.frames)
    for problem in parsed.problems:
        diag.add(f"malformed-{message.proto}", problem, payload.frames)
    return message


def _counting(reader, stats: DecodeStats, progress) -> Iterator[tuple]:
    """Pass packets through, reporting progress every few thousand (keeps the hot loop free of it)."""
    for n, packet in enumerate(reader, start=1):
        if not n % _PROGRESS_EVERY:
            stats.packets, stats.bytes_read = n, reader.bytes_read
            progress(stats)
        yield packet
