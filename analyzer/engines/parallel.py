"""Run the decoding in a forked worker and stream its records back.

Two cores, two halves of the work: the worker walks the capture, prefilters, reassembles and parses the
messages; the calling process gives them their meaning (transactions, events) or renders them. Data
flows one way: records go from the worker to the parent in batches, then the worker's diagnostics,
counts and summary (e.g. the packet accounting). Used only where ``fork`` exists; elsewhere the engine
runs both halves in one process.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import McxaError
from analyzer.engines.records import Handled
from analyzer.messages.records import Headers, Message
from analyzer.transport.records import Payload, TlsHello

_BATCH = 256
_BATCH_BYTES = 4 << 20  # ... or fewer: 256 messages of 16 MB would hold 4 GB on each side of the pipe


def available() -> bool:
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _to_wire(item) -> tuple:
    """Plain tuples pickle several times faster than slotted dataclasses; a message's headers travel as
    their (name, value) pairs and are indexed again on arrival."""
    if isinstance(item, Message):
        return (2, item.body, item.proto, item.kind, item.method, item.uri, item.status, item.reason,
                tuple(item.headers), item.frames, item.time, item.src, item.dst, item.transport, item.framing,
                item.reply_to)
    if isinstance(item, Payload):
        return (0, item.data, item.frames, item.time, item.src, item.dst, item.transport, item.framing,
                item.reply_to)
    if isinstance(item, Handled):
        return (4, item.time, item.proto)
    if isinstance(item, TlsHello):
        return (1, item.frame, item.time, item.src, item.dst, item.sni)
    return (3, item)  # rare records (media-plane control): pickled whole


def _from_wire(t: tuple):
    kind = t[0]
    if kind == 3:
        return t[1]
    if kind == 2:
        return Message(t[2], t[3], t[4], t[5], t[6], t[7], Headers(t[8], lowered=True), t[1], *t[9:])
    if kind == 4:
        return Handled(t[1], t[2])
    return Payload(*t[1:]) if kind == 0 else TlsHello(*t[1:])


def _batch(items: list[tuple], reader) -> bytes:
    """Items, then the reader's counters as of now (they reach ``on_batch`` in the parent)."""
    return pickle.dumps(("items", items, reader.packets, reader.bytes_read, reader.last_time), 5)


def _worker(produce: Callable[[], Iterable], reader, diagnostics: Diagnostics, before: tuple,
            summary: Callable[[], object] | None, conn) -> None:
    # The worker only builds transport state: what the parent had is never garbage here, and a capture of
    # many TCP connections keeps hundreds of thousands of objects alive. Freezing the former and collecting
    # less often spares full collections that walk all of them (about a tenth of the time, measured).
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
    try:
        batch: list[tuple] = []
        size = 0
        for item in produce():
            wire = _to_wire(item)
            batch.append(wire)
            size += len(wire[1]) if wire[0] in (0, 2) else 0  # (bodies and payloads weigh)
            if len(batch) >= _BATCH or size >= _BATCH_BYTES:
                conn.send_bytes(_batch(batch, reader))
                batch, size = [], 0
        conn.send_bytes(_batch(batch, reader))
        # Only what this process added: the parent already holds what was there before the fork.
        counts = diagnostics.counts - before[0]
        extra = summary() if summary is not None else None
        conn.send_bytes(pickle.dumps(("end", dict(counts), diagnostics.records[before[1]:], extra), 5))
    except BrokenPipeError:
        pass  # the parent stopped reading (output closed): nothing left to do
    except BaseException:  # report, don't print: the parent turns it into one line
        with contextlib.suppress(OSError):
            conn.send_bytes(pickle.dumps(("error", traceback.format_exc()), 5))
    finally:
        conn.close()
        os._exit(0)


def records_in_worker(produce: Callable[[], Iterable], reader, diagnostics: Diagnostics,
                      on_batch: Callable[..., None], summary: Callable[[], object] | None = None,
                      on_summary: Callable[[object], None] | None = None) -> Iterator:
    """Yield what ``produce()`` yields, computed in a forked child.

    ``reader`` is the capture reader ``produce`` consumes (its counters travel with each batch and reach
    ``on_batch(packets, bytes_read, last_time)``); ``diagnostics``, the collector ``produce`` writes to,
    receives the child's additions at the end. ``summary()``, run in the child once ``produce`` is
    exhausted, returns what only the child knows (picklable); it reaches ``on_summary`` in this process
    before this generator ends.
    """
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    before = (diagnostics.counts.copy(), len(diagnostics.records))
    child = ctx.Process(target=_worker, args=(produce, reader, diagnostics, before, summary, send),
                        daemon=True)
    child.start()
    send.close()
    reader.close()  # the child owns the file now
    try:
        while True:
            try:
                message = pickle.loads(receive.recv_bytes())
            except EOFError:
                raise McxaError(f"decoder process ended unexpectedly (exit code {child.exitcode})",
                                str(reader.path)) from None
            if message[0] == "items":
                on_batch(*message[2:])
                for t in message[1]:
                    yield _from_wire(t)
            elif message[0] == "end":
                diagnostics.merge(message[1], message[2])
                if on_summary is not None:
                    on_summary(message[3])
                return
            else:  # one line for the user; the last traceback line names the failure
                last = message[1].strip().splitlines()[-1]
                raise McxaError(f"internal error in the decoder process: {last}", str(reader.path))
    finally:
        receive.close()
        if child.is_alive():
            child.terminate()
        child.join()
