"""SCTP DATA chunks (RFC 9260) carrying SIP (RFC 4168): one user message per B..E chunk run."""

from __future__ import annotations

import struct

import dpkt

_DATA = 0
_BEGIN, _END = 0x02, 0x01
_DATA_HEADER = struct.Struct(">IHHI")  # TSN, stream id, stream sequence number, payload protocol id


class SctpAssembler:
    """Yields complete SCTP user messages; fragmented ones are joined per association and stream."""

    def __init__(self, max_partial: int = 1 << 20):
        self._partial: dict[tuple, tuple[list[bytes], list[int]]] = {}
        self._max = max_partial

    def messages(self, assoc: tuple, payload: bytes, frame: int):
        """Return ``(user message, frames)`` pairs found in one SCTP packet.

        dpkt decodes the common header and splits the chunks; we only interpret DATA.
        """
        try:
            packet = dpkt.sctp.SCTP(payload)
        except (dpkt.UnpackError, struct.error) as exc:
            raise ValueError(f"SCTP packet malformed: {exc}") from exc
        out = []
        for chunk in packet.chunks:
            if chunk.type != _DATA or len(chunk.data) < _DATA_HEADER.size:
                continue
            _tsn, stream, _ssn, _ppid = _DATA_HEADER.unpack_from(chunk.data)
            user = bytes(chunk.data[_DATA_HEADER.size:])  # dpkt already cut data to the chunk length
            key = (assoc, stream)
            if chunk.flags & _BEGIN and chunk.flags & _END:
                out.append((user, (frame,)))
                continue
            if chunk.flags & _BEGIN:
                self._partial[key] = ([user], [frame])
            elif key in self._partial:
                pieces, frames = self._partial[key]
                pieces.append(user)
                if frame not in frames:
                    frames.append(frame)
                if chunk.flags & _END:
                    del self._partial[key]
                    out.append((b"".join(pieces), tuple(frames)))
                elif sum(map(len, pieces)) > self._max:
                    del self._partial[key]
        return out
