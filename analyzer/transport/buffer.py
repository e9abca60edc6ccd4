"""What every incremental reader of a stream direction shares (SIP/HTTP, WebSocket, TLS), in the style of
h11: the byte buffer that remembers which frame brought each byte, ``NEED_DATA`` until a whole unit is
there, ``Lost`` for what a gap threw away, and the caps on what one direction may hold (``FramingLimits``,
also what the connection sniffs a first line within).
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.base.limits import DEFAULT, Limits


class Sentinel:
    """A named marker returned instead of a result (``NEED_DATA``)."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: Returned by ``next_message`` (and the other incremental parsers) when more bytes are needed.
NEED_DATA = Sentinel("NEED_DATA")


@dataclass(frozen=True, slots=True)
class FramingLimits:
    """Caps that keep one direction's memory bounded; exceeding one is a diagnostic and a resync (the
    WebSocket framer takes ``max_body`` as its message cap). The numbers are ``Limits``'."""

    max_line: int = DEFAULT.line_bytes  # start line, chunk-size line
    max_head: int = DEFAULT.header_bytes  # start line + header section (and chunked trailers)
    max_body: int = DEFAULT.message_bytes

    @classmethod
    def of(cls, limits: Limits) -> FramingLimits:
        return cls(limits.line_bytes, limits.header_bytes, limits.message_bytes)


@dataclass(frozen=True, slots=True)
class Lost:
    """What a framer threw away because the stream broke (a gap): bytes and the frames they came from."""

    size: int
    frames: tuple[int, ...]


class StreamBuffer:
    """Bytes received but not yet consumed, remembering which frame brought each byte.

    ``marks`` holds ``(end, frame, time)`` per received piece, ``end`` being an absolute stream offset,
    from index ``head`` on (a list trimmed by moving its head: one framer per TCP direction, and an empty
    deque costs 600 bytes); ``base`` is the absolute offset of ``data[0]``. Deleting from the front of a
    ``bytearray`` is amortised O(1) in CPython, so consuming messages one by one stays linear.
    """

    __slots__ = ("base", "data", "head", "marks")

    def __init__(self):
        self.data = bytearray()
        self.base = 0
        self.marks: list[tuple[int, int, float]] = []
        self.head = 0

    def __len__(self) -> int:
        return len(self.data)

    def append(self, data: bytes, frame: int, time: float) -> None:
        self.data += data
        end = self.base + len(self.data)
        marks = self.marks
        if len(marks) > self.head and marks[-1][1] == frame:
            marks[-1] = (end, frame, time)
        else:
            marks.append((end, frame, time))

    def consume(self, n: int) -> None:
        del self.data[:n]
        self.base += n
        marks, head = self.marks, self.head
        while head < len(marks) and marks[head][0] <= self.base:
            head += 1
        if head == len(marks):
            marks.clear()
            head = 0
        elif head > 64 and head * 2 > len(marks):
            del marks[:head]
            head = 0
        self.head = head

    def clear(self) -> None:
        self.consume(len(self.data))

    def origin(self, start: int, end: int) -> tuple[tuple[int, ...], float]:
        """Frames and time of buffer bytes ``[start, end)``.

        Frames come in capture order, de-duplicated; the last is the one that completed the bytes (the
        latest to arrive, even when segments came out of order), which is where Wireshark shows a
        reassembled message, and ``time`` is its capture time.
        """
        lo, hi = self.base + start, self.base + end
        times: dict[int, float] = {}
        marks = self.marks
        for k in range(self.head, len(marks)):
            mend, frame, t = marks[k]
            if mend <= lo:
                continue
            times[frame] = t
            if mend >= hi:
                break
        if not times:
            return (), 0.0
        frames = tuple(sorted(times)) if len(times) > 1 else tuple(times)
        return frames, times[frames[-1]]

    def pieces(self) -> list[tuple[bytes, int, float]]:
        """The unconsumed bytes split back into ``(data, frame, time)`` per piece, then cleared."""
        out, pos = [], self.base
        for mend, frame, t in self.marks[self.head:]:
            if mend > pos:
                out.append((bytes(self.data[pos - self.base:mend - self.base]), frame, t))
                pos = mend
        self.clear()
        return out

