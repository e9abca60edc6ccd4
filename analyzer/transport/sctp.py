"""SCTP DATA chunks (RFC 9260) carrying SIP (RFC 4168): one user message per B..E chunk run.

The chunks are walked with offsets into the packet, never by slicing off the rest of it per chunk (dpkt's
way, which made a packet of 1-3-byte chunks cost memory in the square of its size). Every table is
capped: chunks per packet, fragmented messages at once, chunks and bytes per fragmented message; going
over a cap is an ``over-limit`` or ``table-full`` diagnostic naming it.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT, Limits

_DATA = 0
_BEGIN, _END = 0x02, 0x01
_COMMON_HEADER = 12  # ports, verification tag, checksum
_CHUNK_HEADER = struct.Struct(">BBH")  # type, flags, length (header included, padding excluded)
_DATA_HEADER = struct.Struct(">IHHI")  # TSN, stream id, stream sequence number, payload protocol id
_DATA_START = _CHUNK_HEADER.size + _DATA_HEADER.size


class _Partial:
    """A fragmented user message being joined: its bytes so far and the frames they came in."""

    __slots__ = ("chunks", "data", "frames")

    def __init__(self, data: bytes, frame: int):
        self.data = bytearray(data)
        self.frames = [frame]
        self.chunks = 1


class SctpAssembler:
    """Yields complete SCTP user messages; fragmented ones are joined per association and stream."""

    def __init__(self, diagnostics: Diagnostics, limits: Limits = DEFAULT):
        self._diag = diagnostics
        # (association, stream) → message, oldest first (an OrderedDict: the oldest is taken in O(1))
        self._partial: OrderedDict[tuple, _Partial] = OrderedDict()
        self._limits = limits

    def messages(self, assoc: tuple, payload: bytes, frame: int) -> tuple[list, str | None]:
        """``(user message, frames)`` pairs found in one SCTP packet, and what was wrong with it (None if
        nothing): the messages before a malformed chunk are kept."""
        out: list[tuple[bytes, tuple[int, ...]]] = []
        end, pos, count, cap = len(payload), _COMMON_HEADER, 0, self._limits.sctp_chunks
        while pos + _CHUNK_HEADER.size <= end:
            ctype, flags, length = _CHUNK_HEADER.unpack_from(payload, pos)
            if length < _CHUNK_HEADER.size:
                return out, f"SCTP chunk at byte {pos} has length {length}, shorter than its own header"
            if pos + length > end:
                return out, f"SCTP chunk at byte {pos} ({length} bytes) runs past the end of the packet"
            count += 1
            if count > cap:
                self._diag.add("over-limit", f"frame {frame}: SCTP packet has more than {cap} chunks; the "
                               f"rest were skipped (--limit sctp_chunks={cap} raises the cap)", (frame,))
                return out, None
            if ctype == _DATA and length > _DATA_START:
                self._data(assoc, payload, pos, length, flags, frame, out)
            pos += (length + 3) & ~3
        return out, None

    def _data(self, assoc, payload: bytes, pos: int, length: int, flags: int, frame: int, out: list) -> None:
        _tsn, stream, _ssn, _ppid = _DATA_HEADER.unpack_from(payload, pos + _CHUNK_HEADER.size)
        user = payload[pos + _DATA_START:pos + length]
        if flags & _BEGIN and flags & _END:
            out.append((user, (frame,)))
            return
        key = (assoc, stream)
        partials, limits = self._partial, self._limits
        if flags & _BEGIN:
            partials.pop(key, None)
            if len(partials) >= limits.sctp_partial_messages:
                self._drop(partials.popitem(last=False)[1], "table-full",
                           f"more than {limits.sctp_partial_messages} were being joined at once "
                           f"(--limit sctp_partial_messages={limits.sctp_partial_messages} raises the cap)")
            partials[key] = _Partial(user, frame)
            return
        partial = partials.get(key)
        if partial is None:
            return  # the message began before the capture did
        partial.data += user
        partial.chunks += 1
        if partial.frames[-1] != frame:
            partial.frames.append(frame)
        if flags & _END:
            del partials[key]
            out.append((bytes(partial.data), tuple(partial.frames)))
        elif len(partial.data) > limits.sctp_partial_bytes:
            del partials[key]
            self._drop(partial, "over-limit", f"over {limits.sctp_partial_bytes} bytes (--limit "
                       f"sctp_partial_bytes={limits.sctp_partial_bytes} raises the cap)")
        elif partial.chunks >= limits.sctp_partial_chunks:
            del partials[key]
            self._drop(partial, "over-limit", f"over {limits.sctp_partial_chunks} chunks (--limit "
                       f"sctp_partial_chunks={limits.sctp_partial_chunks} raises the cap)")

    def close(self) -> None:
        """End of capture: a fragmented message still being joined never ended."""
        for partial in self._partial.values():
            self._drop(partial, "fragment-incomplete", "the capture ended before its last chunk")
        self._partial.clear()

    def _drop(self, partial: _Partial, code: str, why: str) -> None:
        self._diag.add(code, f"a fragmented SCTP message was dropped unfinished: {why}",
                       tuple(partial.frames))
