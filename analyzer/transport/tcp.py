"""TCP reassembly of one direction: segments in capture order in, contiguous stream bytes and gaps out.

No I/O and no protocol knowledge: ``TcpStream.segment`` takes what the capture saw and returns
``Chunk`` (in-order bytes, tagged with the frame that carried them) and ``Gap`` (bytes that were never
captured) events. Sequence numbers are 32-bit and wrap; internally every byte gets an unbounded
stream offset (``int``), so wraparound is handled once, in ``_offset``.

Memory is bounded: out-of-order segments wait for the hole before them to fill, but at most
``max_pending_bytes`` / ``max_pending_segments`` of them; beyond that (or at FIN, RST and close) the hole
is declared a gap. A short history of delivered segments (references, no copies; capped in bytes and in
segments) lets retransmissions that carry *different* bytes be reported; a retransmission finds the
segments it overlaps by bisection, so one-byte segments retransmitted far back stay linear.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from dataclasses import dataclass
from operator import itemgetter

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT, Limits

SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10
_MOD = 1 << 32
_HALF = 1 << 31


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """How much out-of-order data one direction may hold before a hole is declared a gap, and how much
    delivered data it keeps (by reference) to check retransmissions; the numbers are ``Limits``'."""

    max_pending_bytes: int = DEFAULT.tcp_pending_bytes
    max_pending_segments: int = DEFAULT.tcp_pending_segments
    history_bytes: int = DEFAULT.tcp_history_bytes
    history_segments: int = DEFAULT.tcp_history_segments

    @classmethod
    def of(cls, limits: Limits) -> TcpLimits:
        return cls(limits.tcp_pending_bytes, limits.tcp_pending_segments, limits.tcp_history_bytes,
                   limits.tcp_history_segments)


_START_OF = itemgetter(0)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Contiguous stream bytes, next in order, as carried by one frame."""

    data: bytes
    frame: int
    time: float


@dataclass(frozen=True, slots=True)
class Gap:
    """``missing`` stream bytes were never captured between frame ``before`` and frame ``after``.

    ``before`` is the frame of the last byte delivered before the hole (None at stream start), ``after`` the
    frame of the first byte after it. ``cap`` names the limit that made the hole a gap when the bytes may
    still have come later (too much held out of order), None when the stream ended or broke.
    """

    missing: int
    before: int | None
    after: int
    cap: str | None = None


@dataclass(slots=True)
class _Held:
    """An out-of-order segment waiting for the hole before it; ordered by offset, then arrival."""

    start: int
    order: int
    data: bytes
    frame: int
    time: float

    def __lt__(self, other: _Held) -> bool:
        return (self.start, self.order) < (other.start, other.order)


class TcpStream:
    """Reassembles one direction of a TCP connection.

    Feed every segment (in capture order) to ``segment``; call ``close`` at the end of the capture. The
    first SYN fixes the start (ISN + 1); without one, the first segment seen is the start and anything
    before it is treated like a retransmission of bytes we never saw.
    """

    __slots__ = (
        "_diag",
        "_history",
        "_history_bytes",
        "_history_head",
        "_last_frame",
        "_limits",
        "_name",
        "_next",
        "_next32",
        "_order",
        "_pending",
        "_pending_bytes",
        "fin_seen",
        "isn",
        "rst_seen",
    )

    def __init__(self, diagnostics: Diagnostics, name: str = "", limits: TcpLimits = TcpLimits()):
        self._limits = limits
        self._diag = diagnostics
        self._name = name  # "src → dst", for diagnostic messages
        self._next: int | None = None  # stream offset of the next byte expected
        self._next32 = 0  # the same position as a 32-bit sequence number
        self._pending: list[_Held] = []
        self._pending_bytes = 0
        self._order = 0
        # Delivered (stream offset, bytes), contiguous and in order from ``_history_head`` on: a list
        # trimmed from the front by moving the head (a deque costs 600 bytes even when empty).
        self._history: list[tuple[int, bytes]] = []
        self._history_head = 0
        self._history_bytes = 0
        self._last_frame: int | None = None
        self.fin_seen = False
        self.rst_seen = False
        self.isn: int | None = None

    @property
    def started(self) -> bool:
        return self._next is not None

    @property
    def held(self) -> tuple[int, int]:
        """Out-of-order segments and bytes waiting for a hole to fill: what the limits bound."""
        return len(self._pending), self._pending_bytes

    @property
    def memory(self) -> int:
        """Bytes this direction keeps alive: held segments and the retransmission history."""
        return self._pending_bytes + self._history_bytes

    def drop_history(self) -> int:
        """Forget the retransmission history (memory is short); returns the bytes it held. Later
        retransmissions of those bytes are dropped unchecked."""
        freed = self._history_bytes
        self._history = []
        self._history_head = 0
        self._history_bytes = 0
        return freed

    def _offset(self, seq: int) -> int:
        """Map a 32-bit sequence number to the stream offset nearest the current position (wraparound)."""
        delta = ((seq - self._next32 + _HALF) % _MOD) - _HALF
        return self._next + delta

    def segment(self, seq: int, flags: int, data: bytes, frame: int, time: float) -> list[Chunk | Gap]:
        """Take one captured segment; return the stream events it releases, in stream order."""
        if flags & SYN:
            seq = (seq + 1) % _MOD  # the SYN occupies one sequence number; data (TFO) follows it
            if self._next is None:
                self.isn = (seq - 1) % _MOD
                self._next, self._next32 = 0, seq
        if self._next is None:
            if not data:
                return []  # a bare ACK/FIN/RST before any byte: nothing to anchor on yet
            self._next, self._next32 = 0, seq
        out: list[Chunk | Gap] = []
        if data:
            start = self._offset(seq)
            if start == self._next:  # the common case: in order
                self._deliver(start, data, frame, time, out)
                if self._pending:
                    self._drain(out)
            elif start + len(data) <= self._next:
                self._check_retransmission(start, data, frame)
            elif start < self._next:
                self._deliver(start, data, frame, time, out)
                if self._pending:
                    self._drain(out)
            else:
                self._hold(start, data, frame, time, out)
        if flags & (FIN | RST):
            if flags & FIN:
                self.fin_seen = True
            else:
                self.rst_seen = True
            self._flush(out)
        return out

    def close(self) -> list[Chunk | Gap]:
        """End of capture: whatever is still held is released behind a gap."""
        out: list[Chunk | Gap] = []
        self._flush(out)
        return out

    # -- internals ---------------------------------------------------------------------------------------

    def _deliver(self, start: int, data: bytes, frame: int, time: float, out: list) -> None:
        """Append bytes from ``start`` (<= next) to the stream; the part already delivered is checked."""
        skip = self._next - start
        if skip:
            self._check_retransmission(start, data[:skip], frame)
            data = data[skip:]
        history, limits = self._history, self._limits
        history.append((self._next, data))
        self._history_bytes += len(data)
        head = self._history_head
        while (len(history) - head > 1 and (self._history_bytes > limits.history_bytes
                                            or len(history) - head > limits.history_segments)):
            self._history_bytes -= len(history[head][1])
            head += 1
        if head > 64 and head * 2 > len(history):
            del history[:head]
            head = 0
        self._history_head = head
        self._next += len(data)
        self._next32 = (self._next32 + len(data)) % _MOD
        self._last_frame = frame
        out.append(Chunk(data, frame, time))

    def _hold(self, start: int, data: bytes, frame: int, time: float, out: list) -> None:
        self._order += 1
        insort(self._pending, _Held(start, self._order, data, frame, time))
        self._pending_bytes += len(data)
        limits = self._limits
        while self._pending:
            if self._pending_bytes > limits.max_pending_bytes:
                cap = f"tcp_pending_bytes={limits.max_pending_bytes}"
            elif len(self._pending) > limits.max_pending_segments:
                cap = f"tcp_pending_segments={limits.max_pending_segments}"
            else:
                break
            self._skip_hole(out, cap)
            self._drain(out)

    def _drain(self, out: list) -> None:
        """Release held segments that the stream has now reached."""
        pending = self._pending
        while pending and pending[0].start <= self._next:
            held = pending.pop(0)
            self._pending_bytes -= len(held.data)
            if held.start + len(held.data) <= self._next:
                self._check_retransmission(held.start, held.data, held.frame)
            else:
                self._deliver(held.start, held.data, held.frame, held.time, out)

    def _skip_hole(self, out: list, cap: str | None = None) -> None:
        """Give up on the hole before the first held segment: report it and move past it."""
        first = self._pending[0]
        missing = first.start - self._next
        out.append(Gap(missing, self._last_frame, first.frame, cap))
        self.drop_history()
        self._next = first.start
        self._next32 = (self._next32 + missing) % _MOD

    def _flush(self, out: list) -> None:
        while self._pending:
            self._skip_hole(out)
            self._drain(out)

    def _check_retransmission(self, start: int, data: bytes, frame: int) -> None:
        """Bytes the stream already has: drop them, but report if they differ from the first copy."""
        end = start + len(data)
        if len(data) == 1 and end == self._next:
            return  # keep-alive probe: one garbage byte at seq - 1
        history = self._history
        # The last entry starting at or before ``start`` is the first one it can overlap.
        first = max(bisect_right(history, start, self._history_head, key=_START_OF) - 1, self._history_head)
        for k in range(first, len(history)):
            hstart, hdata = history[k]
            if hstart >= end:
                break
            hend = hstart + len(hdata)
            lo, hi = max(start, hstart), min(end, hend)
            if lo < hi and data[lo - start:hi - start] != hdata[lo - hstart:hi - hstart]:
                self._diag.add("tcp-overlap-conflict",
                               f"{self._name}: {hi - lo} retransmitted bytes differ from the first copy "
                               f"(kept the first)", (frame,))
                return
