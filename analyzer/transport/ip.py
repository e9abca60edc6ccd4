"""IPv4 and IPv6 headers, extension headers, and fragment reassembly.

``parse_ip`` reads only what the later stages need (addresses, upper protocol, payload bounds,
fragment fields) with plain index arithmetic: it runs on every candidate packet.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import NamedTuple

from analyzer.diagnostics import Diagnostics

# IPv6 extension headers that can precede the upper-layer header (RFC 8200 §4), and how to size them.
_HOP_BY_HOP, _ROUTING, _FRAGMENT, _DEST_OPTS, _AUTH = 0, 43, 44, 60, 51
_MOBILITY, _HIP, _SHIM6 = 135, 139, 140
_EXT_8_OCTETS = frozenset((_HOP_BY_HOP, _ROUTING, _DEST_OPTS, _MOBILITY, _HIP, _SHIM6))


class BadIp(Exception):
    """The bytes are not a well-formed IP header (turned into a diagnostic by the caller)."""


class IpPacket(NamedTuple):
    """One IP datagram (or fragment): addresses as raw bytes, the upper protocol and its bytes.

    A NamedTuple rather than a frozen dataclass: one is made per candidate packet, and this is 3x cheaper.
    """

    version: int
    src: bytes
    dst: bytes
    proto: int
    payload: bytes
    frag_id: int | None = None  # set on fragments only
    frag_offset: int = 0  # bytes
    more_fragments: bool = False


def parse_ip(version: int, data: bytes, off: int) -> IpPacket:
    return _parse_v4(data, off) if version == 4 else _parse_v6(data, off)


def _parse_v4(data: bytes, off: int) -> IpPacket:
    if len(data) < off + 20:
        raise BadIp("IPv4 header truncated")
    ihl = (data[off] & 0x0F) * 4
    if ihl < 20 or len(data) < off + ihl:
        raise BadIp(f"IPv4 header length {ihl} is invalid")
    total = (data[off + 2] << 8) | data[off + 3]
    # total == 0 happens with TCP segmentation offload captures: use what was captured.
    end = off + total if ihl <= total and off + total <= len(data) else len(data)
    frag = (data[off + 6] << 8) | data[off + 7]
    more, offset = bool(frag & 0x2000), (frag & 0x1FFF) * 8
    payload = data[off + ihl:end]
    src, dst, proto = data[off + 12:off + 16], data[off + 16:off + 20], data[off + 9]
    if more or offset:
        ident = (data[off + 4] << 8) | data[off + 5]
        return IpPacket(4, src, dst, proto, payload, ident, offset, more)
    return IpPacket(4, src, dst, proto, payload)


def _parse_v6(data: bytes, off: int) -> IpPacket:
    if len(data) < off + 40:
        raise BadIp("IPv6 header truncated")
    plen = (data[off + 4] << 8) | data[off + 5]
    end = off + 40 + plen if plen and off + 40 + plen <= len(data) else len(data)
    nxt, pos = data[off + 6], off + 40
    frag_id, frag_offset, more = None, 0, False
    while True:
        if nxt in _EXT_8_OCTETS:
            if pos + 2 > end:
                raise BadIp("IPv6 extension header truncated")
            nxt, pos = data[pos], pos + (data[pos + 1] + 1) * 8
        elif nxt == _AUTH:
            if pos + 2 > end:
                raise BadIp("IPv6 AH truncated")
            nxt, pos = data[pos], pos + (data[pos + 1] + 2) * 4
        elif nxt == _FRAGMENT:
            if pos + 8 > end:
                raise BadIp("IPv6 fragment header truncated")
            field = (data[pos + 2] << 8) | data[pos + 3]
            frag_offset, more = field & 0xFFF8, bool(field & 1)
            frag_id = int.from_bytes(data[pos + 4:pos + 8], "big")
            nxt, pos = data[pos], pos + 8
        else:
            break
        if pos > end:
            raise BadIp("IPv6 extension headers run past the packet")
    src, dst = data[off + 8:off + 24], data[off + 24:off + 40]
    if frag_id is not None and (more or frag_offset):
        return IpPacket(6, src, dst, nxt, data[pos:end], frag_id, frag_offset, more)
    return IpPacket(6, src, dst, nxt, data[pos:end])


def ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


@dataclass(slots=True)
class _Pending:
    first_time: float
    pieces: dict[int, bytes]
    frames: list[int]
    total: int | None = None
    weight: int = 0  # captured packets these fragments stand for (more than one each inside a tunnel)


class FragmentReassembler:
    """Puts IPv4/IPv6 fragments back together, in any arrival order.

    A datagram is delivered when its last hole fills, numbered by the frame that completed it (as
    Wireshark does). Datagrams still incomplete after ``timeout`` seconds of capture time, or pushed out
    by the ``max_pending`` cap, are reported as ``fragment-incomplete``; ``lost`` counts the captured
    packets they stood for (the packet accounting's diagnostic share).
    """

    def __init__(self, diagnostics: Diagnostics, timeout: float = 30.0, max_pending: int = 4096):
        self._pending: dict[tuple, _Pending] = {}
        self._diag = diagnostics
        self._timeout = timeout
        self._max = max_pending
        self.lost = 0

    def add(self, pkt: IpPacket, frame: int, time: float) -> tuple[IpPacket, tuple[int, ...]] | None:
        """Add one fragment; return the whole datagram and its frames when complete."""
        done = self.add_weighted(pkt, frame, time, 1)
        return None if done is None else done[:2]

    def add_weighted(self, pkt: IpPacket, frame: int, time: float,
                     weight: int) -> tuple[IpPacket, tuple[int, ...], int] | None:
        """``add`` for a fragment that stands for ``weight`` captured packets (an outer datagram
        reassembled first); a complete datagram comes with the weight of all its fragments."""
        key = (pkt.version, pkt.src, pkt.dst, pkt.proto if pkt.version == 4 else 0, pkt.frag_id)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self._max:
                self._drop_oldest()
            entry = self._pending[key] = _Pending(time, {}, [])
        entry.pieces.setdefault(pkt.frag_offset, pkt.payload)
        entry.frames.append(frame)
        entry.weight += weight
        if not pkt.more_fragments:
            entry.total = pkt.frag_offset + len(pkt.payload)
        whole = self._complete(entry)
        if whole is None:
            self._expire(time)
            return None
        del self._pending[key]
        return IpPacket(pkt.version, pkt.src, pkt.dst, pkt.proto, whole), tuple(entry.frames), entry.weight

    @staticmethod
    def _complete(entry: _Pending) -> bytes | None:
        if entry.total is None:
            return None
        out, covered = bytearray(entry.total), 0
        for start in sorted(entry.pieces):
            piece = entry.pieces[start]
            if start > covered:
                return None
            end = min(start + len(piece), entry.total)
            if end > covered:
                out[covered:end] = piece[covered - start:end - start]
                covered = end
        return bytes(out) if covered >= entry.total else None

    def _expire(self, now: float) -> None:
        # dicts keep insertion order, so the oldest datagrams come first
        while self._pending:
            key, entry = next(iter(self._pending.items()))
            if now - entry.first_time <= self._timeout:
                return
            del self._pending[key]
            self._report(entry)

    def _drop_oldest(self) -> None:
        key = next(iter(self._pending))
        self._report(self._pending.pop(key))

    def close(self) -> None:
        """End of capture: every datagram still waiting is incomplete."""
        for entry in self._pending.values():
            self._report(entry)
        self._pending.clear()

    def _report(self, entry: _Pending) -> None:
        self.lost += entry.weight
        self._diag.add("fragment-incomplete",
                       f"IP datagram never completed ({len(entry.pieces)} fragment(s) seen)",
                       entry.frames)
