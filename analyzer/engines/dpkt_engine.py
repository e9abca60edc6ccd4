"""The default engine: our record walker, link/IP/transport decoders (dpkt for SCTP), our parsers.

With ``workers=2`` on a big capture, the transport stage and message parsing run in a forked worker process
while this process gives the messages their meaning (see ``parallel``). Its packet accounting and where
reading stopped come back with the worker's last word.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from analyzer.capture import open_capture
from analyzer.engines import parallel
from analyzer.engines.records import Decoded, DecodeOptions, ReadStop
from analyzer.messages.decode import to_message
from analyzer.messages.floor import FloorMessage, decode_control
from analyzer.messages.parse import MalformedMessage
from analyzer.messages.records import Message
from analyzer.transport.demux import Demux
from analyzer.transport.esp_sa import load_esp_sas
from analyzer.transport.records import DIAGNOSTIC, SIGNALLING, ControlPayload, Payload, TlsHello

#: Below this size a worker process costs more than it saves.
PARALLEL_MIN_BYTES = 8 << 20


def decode(path: str, options: DecodeOptions | None = None) -> Decoded:
    """Open ``path`` now (so a bad file fails before any output) and decode it lazily."""
    options = options or DecodeOptions()
    decoded = Decoded(path, iter(()))
    sas = load_esp_sas(options.esp_sa) if options.esp_sa else ()
    reader = open_capture(path, decoded.diagnostics, options.opener(path) if options.opener else None)
    demux = Demux(decoded.diagnostics, options.sip_ports, limits=options.limits, esp_sas=sas)
    reader.prefilter = demux.prefilter

    unread = _UnreadFrames()  # the frames of messages that did not parse, wherever parsing runs

    def parsed(items: Iterator) -> Iterator[Message | FloorMessage | TlsHello]:
        for item in items:
            if isinstance(item, ControlPayload):
                yield from _floor(item, decoded.diagnostics)
                continue
            if isinstance(item, Payload):
                message = _message(item, decoded.diagnostics)
                if message is None:
                    unread.add(item.frames)
                    continue
                item = message
            yield item

    # Two cores split the work where both halves weigh about the same: listing messages leaves the parent
    # little to do, so it parses; meaning is heavy, so the worker parses too (measured on the bench capture)
    # and takes its share of the meaning (``DecodeOptions.share``).
    in_worker = options.parse_in_worker
    forked = options.workers > 1 and parallel.available() and (reader.size or 0) >= PARALLEL_MIN_BYTES
    share = options.share if forked and in_worker else None

    def transport() -> Iterator:
        with reader:
            if not in_worker:
                yield from demux.run(reader)
            elif share is None:
                yield from parsed(demux.run(reader))
            else:
                yield from share.worker(parsed(demux.run(reader)), lambda: reader.packets)

    def counters(packets: int, bytes_read: int, last_time: float | None) -> None:
        stats = decoded.stats
        stats.packets, stats.bytes_read, stats.last_time = packets, bytes_read, last_time
        if options.progress:
            options.progress(decoded.stats)

    def summary() -> tuple:
        """What the transport stage knows at its end (runs where it ran: maybe in the worker)."""
        drops = sum(reader.drops.values()) if reader.drops else None
        return (demux.accounting(reader.packets), reader.stopped, unread.count, demux.esp.summary(), drops,
                share.result() if share is not None else None)

    def take(result: tuple) -> None:
        accounting, stopped, unread_there, decoded.stats.esp, decoded.stats.capture_drops, shared = result
        if share is not None:
            share.take(shared)
        decoded.stats.accounting = accounting
        decoded.stats.stopped = ReadStop(*stopped) if stopped is not None else None
        unread.count = max(unread.count, unread_there)  # counted where parsing ran: here, or the worker

    def settle() -> None:
        """The packets of a message that did not parse were counted as signalling: a diagnostic names them."""
        accounting = decoded.stats.accounting
        if accounting and unread.count:
            accounting[SIGNALLING] -= unread.count
            accounting[DIAGNOSTIC] += unread.count

    if forked:
        records = parallel.records_in_worker(transport, reader, decoded.diagnostics, counters, summary,
                                             take)
    else:
        reader.on_chunk = lambda r: counters(r.packets, r.bytes_read, r.last_time)

        def done() -> None:
            counters(reader.packets, reader.bytes_read, reader.last_time)
            take(summary())

        records = _then(transport(), done)
    if not in_worker:
        records = parsed(records)
    decoded.items = _then(_counted(records, decoded.stats), settle)
    return decoded


def _then(items: Iterator, done) -> Iterator:
    yield from items
    done()


def _counted(items: Iterator[Message | TlsHello], stats) -> Iterator[Message | TlsHello]:
    for item in items:
        stats.count(item)
        yield item


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


def _floor(payload: ControlPayload, diag) -> list[FloorMessage]:
    """The media-plane control messages of one datagram; what could not be read is a diagnostic."""
    found, problems = decode_control(payload)
    for problem in problems:
        diag.add("malformed-floor-control", f"{payload.src} → {payload.dst}: {problem}", payload.frames)
    return found
