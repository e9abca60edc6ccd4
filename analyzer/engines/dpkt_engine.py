"""The default engine: our record walker, link/IP/transport decoders (dpkt for SCTP), our parsers.

With ``workers=2`` on a big capture, the transport stage runs in a forked worker process while this
process parses and renders messages (see ``parallel``). Its packet accounting and where reading stopped
come back with the worker's last word.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from analyzer.capture import open_capture
from analyzer.engines import parallel
from analyzer.engines.records import Decoded, DecodeOptions, ReadStop
from analyzer.messages.decode import to_message
from analyzer.messages.parse import MalformedMessage
from analyzer.messages.records import Message
from analyzer.transport.demux import Demux
from analyzer.transport.records import DIAGNOSTIC, SIGNALLING, Payload, TlsHello

#: Below this size a worker process costs more than it saves.
PARALLEL_MIN_BYTES = 8 << 20


def decode(path: str, options: DecodeOptions | None = None) -> Decoded:
    """Open ``path`` now (so a bad file fails before any output) and decode it lazily."""
    options = options or DecodeOptions()
    decoded = Decoded(path, iter(()))
    reader = open_capture(path, decoded.diagnostics)
    demux = Demux(decoded.diagnostics, options.sip_ports, limits=options.limits)
    reader.prefilter = demux.prefilter

    def transport() -> Iterator[Payload | TlsHello]:
        with reader:
            yield from demux.run(reader)

    def counters(packets: int, bytes_read: int, last_time: float | None) -> None:
        stats = decoded.stats
        stats.packets, stats.bytes_read, stats.last_time = packets, bytes_read, last_time
        if options.progress:
            options.progress(decoded.stats)

    def summary() -> tuple:
        """What the transport stage knows at its end (runs where it ran: maybe in the worker)."""
        return demux.accounting(reader.packets), reader.stopped

    def take(result: tuple) -> None:
        accounting, stopped = result
        decoded.stats.accounting = accounting
        decoded.stats.stopped = ReadStop(*stopped) if stopped is not None else None

    if options.workers > 1 and parallel.available() and (reader.size or 0) >= PARALLEL_MIN_BYTES:
        payloads = parallel.payloads_in_worker(transport, reader, decoded.diagnostics, counters, summary,
                                               take)
    else:
        reader.on_chunk = lambda r: counters(r.packets, r.bytes_read, r.last_time)

        def done() -> None:
            counters(reader.packets, reader.bytes_read, reader.last_time)
            take(summary())

        payloads = _then(transport(), done)
    decoded.items = _messages(payloads, decoded)
    return decoded


def _then(items: Iterator, done) -> Iterator:
    yield from items
    done()


def _messages(payloads: Iterator[Payload | TlsHello], decoded: Decoded) -> Iterator[Message | TlsHello]:
    stats, diag = decoded.stats, decoded.diagnostics
    unread = _UnreadFrames()
    for item in payloads:
        if isinstance(item, Payload):
            message = _message(item, diag)
            if message is None:
                unread.add(item.frames)
                continue
            item = message
        stats.count(item)
        yield item
    # The packets of a message that did not parse were counted as signalling: a diagnostic names them.
    if stats.accounting and unread.count:
        stats.accounting[SIGNALLING] -= unread.count
        stats.accounting[DIAGNOSTIC] += unread.count


class _UnreadFrames:
    """Counts the frames of unparsable messages once each. Two messages share a frame only when they
    follow each other on one stream, so remembering the last few thousand frames is enough."""

    __slots__ = ("_seen", "count")

    _KEEP = 4096

    def __init__(self):
        self.count = 0
        self._seen: OrderedDict[int, None] = OrderedDict()  # (first key in O(1), unlike a dict's)

    def add(self, frames: tuple[int, ...]) -> None:
        seen = self._seen
        for frame in frames:
            if frame not in seen:
                if len(seen) >= self._KEEP:
                    seen.popitem(last=False)
                seen[frame] = None
                self.count += 1


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
