"""Captures as lists of frames for the fuzzers: read one, find the layers of a frame, put a new payload in
with its IP/UDP/TCP lengths and checksums fixed, and write frames back as pcap or pcapng.

The writers take the timestamp resolution and offset as parameters, so the mutator can reach the
extremes of ``if_tsresol``/``if_tsoffset``; lengths are always consistent, so mutated captures are read
to their end and their packets reach the deep stages.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

UDP, TCP, SCTP = 17, 6, 132


class Frame(NamedTuple):
    time: float
    linktype: int
    data: bytes
    orig_len: int


@dataclass(frozen=True, slots=True)
class Layers:
    """Where one frame's IP datagram and its UDP/TCP/SCTP payload are (offsets into the frame)."""

    version: int
    ip: int  # IP header
    proto: int
    l4: int  # UDP/TCP/SCTP header
    payload: int  # application bytes (for SCTP: the chunks, after the common header)
    end: int  # end of the IP datagram (an Ethernet trailer may follow)

    def flow(self, data: bytes) -> bytes:
        """src ip, dst ip, src port, dst port: one direction of a flow."""
        ip = self.ip
        addresses = data[ip + 12:ip + 20] if self.version == 4 else data[ip + 8:ip + 40]
        return addresses + data[self.l4:self.l4 + 4]


def read_capture(path: str) -> list[Frame]:
    """Every frame of a capture file (read with mcxa's own reader, which the seeds are valid for)."""
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.capture import open_capture

    with open_capture(path, Diagnostics()) as reader:
        return [Frame(time, linktype, data, orig_len) for _, time, linktype, data, orig_len in reader]


def layers(frame: Frame) -> Layers | None:
    """The layers of an unfragmented IPv4/IPv6 UDP, TCP or SCTP frame; None for anything else."""
    from analyzer.capture.link import LINK_DECODERS

    data = frame.data
    decoder = LINK_DECODERS.get(frame.linktype)
    try:
        found = decoder(data) if decoder else None
    except Exception:  # a damaged seed frame: not ours to judge here
        return None
    if found is None:
        return None
    version, ip = found
    if version == 4:
        if len(data) < ip + 20:
            return None
        ihl = (data[ip] & 0x0F) * 4
        total = int.from_bytes(data[ip + 2:ip + 4], "big")
        frag = int.from_bytes(data[ip + 6:ip + 8], "big")
        if ihl < 20 or frag & 0x3FFF or total < ihl or ip + total > len(data):
            return None
        proto, l4, end = data[ip + 9], ip + ihl, ip + total
    else:
        if len(data) < ip + 40:
            return None
        plen = int.from_bytes(data[ip + 4:ip + 6], "big")
        proto, l4, end = data[ip + 6], ip + 40, ip + 40 + plen
        if end > len(data):
            return None
    if proto == UDP and end - l4 >= 8:
        return Layers(version, ip, proto, l4, l4 + 8, end)
    if proto == TCP and end - l4 >= 20:
        offset = (data[l4 + 12] >> 4) * 4
        return Layers(version, ip, proto, l4, l4 + offset, end) if 20 <= offset <= end - l4 else None
    if proto == SCTP and end - l4 >= 12:
        return Layers(version, ip, proto, l4, l4 + 12, end)
    return None


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rebuild(frame: Frame, lay: Layers, payload: bytes, seq: int | None = None) -> Frame:
    """``frame`` with ``payload`` as its UDP/TCP/SCTP payload (and ``seq`` as its TCP sequence number):
    IP and UDP lengths, IPv4 header and UDP/TCP checksums recomputed (SCTP's CRC32c is left as is)."""
    data = frame.data
    ip = bytearray(data[lay.ip:lay.l4])
    l4 = bytearray(data[lay.l4:lay.payload])
    l4_len = len(l4) + len(payload)
    if lay.version == 4:
        ip[2:4] = (len(ip) + l4_len).to_bytes(2, "big")
        ip[10:12] = b"\0\0"
        ip[10:12] = checksum(bytes(ip)).to_bytes(2, "big")
        pseudo = bytes(ip[12:20]) + bytes((0, lay.proto)) + l4_len.to_bytes(2, "big")
    else:
        ip[4:6] = l4_len.to_bytes(2, "big")
        pseudo = bytes(ip[8:40]) + l4_len.to_bytes(4, "big") + bytes((0, 0, 0, lay.proto))
    if lay.proto == UDP:
        l4[4:6] = l4_len.to_bytes(2, "big")
        l4[6:8] = b"\0\0"
    elif lay.proto == TCP:
        if seq is not None:
            l4[4:8] = (seq % (1 << 32)).to_bytes(4, "big")
        l4[16:18] = b"\0\0"
    if lay.proto in (UDP, TCP):
        value = checksum(pseudo + bytes(l4) + payload)
        at = 6 if lay.proto == UDP else 16
        l4[at:at + 2] = (value or (0xFFFF if lay.proto == UDP else 0)).to_bytes(2, "big")
    out = data[:lay.ip] + bytes(ip) + bytes(l4) + payload + data[lay.end:]
    return Frame(frame.time, frame.linktype, out, len(out) + max(0, frame.orig_len - len(data)))


# -- writers --------------------------------------------------------------------------------------------

PCAP_MAGIC = {False: 0xA1B2C3D4, True: 0xA1B23C4D}  # microseconds, nanoseconds


def pcap_bytes(frames: list[Frame], nanos: bool = False, big: bool = False, snaplen: int = 262144) -> bytes:
    """A classic pcap file; its one link type is the first frame's (pcap has one per file)."""
    order = ">" if big else "<"
    linktype = frames[0].linktype if frames else 1
    out = [struct.pack(order + "IHHiIII", PCAP_MAGIC[nanos], 2, 4, 0, 0, snaplen, linktype)]
    scale = 1_000_000_000 if nanos else 1_000_000
    for f in frames:
        units = int(f.time * scale) if abs(f.time) < 1e12 else 0
        sec, frac = divmod(units, scale)
        out.append(struct.pack(order + "IIII", sec % (1 << 32), frac, len(f.data), f.orig_len % (1 << 32)))
        out.append(f.data)
    return b"".join(out)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(order: str, kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack(order + "II", kind, size) + body + struct.pack(order + "I", size)


def pcapng_bytes(frames: list[Frame], tsresol: int = 6, tsoffset: int = 0, big: bool = False) -> bytes:
    """A pcapng file: one section, one interface per link type (with ``if_tsresol`` = ``tsresol`` and
    ``if_tsoffset`` = ``tsoffset`` when not the defaults), one Enhanced Packet Block per frame."""
    order = ">" if big else "<"
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    interfaces: dict[int, int] = {}
    blocks = [shb]
    options = b""
    if tsresol != 6:
        options += _option(order, 9, bytes((tsresol & 0xFF,)))
    if tsoffset:
        options += _option(order, 14, struct.pack(order + "q", max(min(tsoffset, (1 << 63) - 1), -(1 << 63))))
    if options:
        options += _option(order, 0, b"")
    base = 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10 ** (tsresol & 0x7F)
    for f in frames:
        if f.linktype not in interfaces:
            interfaces[f.linktype] = len(interfaces)
            blocks.append(_block(order, 1, struct.pack(order + "HHI", f.linktype & 0xFFFF, 0, 0) + options))
        try:
            units = int((f.time - tsoffset) * base) % (1 << 64)
        except (OverflowError, ValueError):
            units = 0
        body = struct.pack(order + "IIIII", interfaces[f.linktype], units >> 32, units & 0xFFFFFFFF,
                           len(f.data), f.orig_len % (1 << 32)) + f.data
        blocks.append(_block(order, 6, body))
    return b"".join(blocks)
