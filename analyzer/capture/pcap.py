"""Classic libpcap files: one file header, then records of a fixed header followed by the captured bytes.

File header (byte order and timestamp unit are given by the magic number):

| offset | size | field |
|---|---|---|
| 0 | 4 | magic, see ``VARIANTS`` |
| 4 | 2 | version major (2) |
| 6 | 2 | version minor (4) |
| 8 | 4 | thiszone (ignored: always 0 in practice, and Wireshark ignores it too) |
| 12 | 4 | sigfigs (ignored) |
| 16 | 4 | snaplen |
| 20 | 4 | link type in the low 26 bits (the high bits may carry FCS length flags) |

Record header:

| offset | size | field |
|---|---|---|
| 0 | 4 | timestamp seconds |
| 4 | 4 | timestamp fraction, in microseconds or nanoseconds |
| 8 | 4 | captured length (bytes that follow) |
| 12 | 4 | original length on the wire |
| 16 | 8 | "modified" (Kuznetzov) variant only: ifindex, protocol, pkt_type, padding |

Seconds and fraction are unsigned 32-bit, so every time lies between 1970 and 2106: unlike pcapng, no
record can carry a timestamp that is not a date.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from analyzer.base.diagnostics import Diagnostics
from analyzer.capture.source import ByteSource, CaptureReader, fill

#: Layouts after the byte-order prefix. File header: (magic skipped) major, minor, thiszone, sigfigs,
#: snaplen, link type. Record header: seconds, fraction, caplen, orig_len (+ 8 bytes in the modified variant).
FILE_HEADER = "4xHHiIII"
FILE_HEADER_SIZE = 24
_RECORD = "IIII"
_RECORD_MODIFIED = "IIII8x"

#: Records longer than this are taken as garbage, as Wireshark does (WTAP_MAX_PACKET_SIZE_STANDARD),
#: unless the file's snaplen is larger; never beyond MAX_CAPLEN_HARD, so a garbage length cannot make the
#: reader buffer gigabytes.
MAX_CAPLEN = 262_144
MAX_CAPLEN_HARD = 16 << 20

LINKTYPE_MASK = 0x03FF_FFFF


class Variant(NamedTuple):
    """What a pcap magic number says about the rest of the file."""

    order: str  # struct byte-order prefix
    units: int  # timestamp fraction units per second
    record: str  # record header layout after the byte order (seconds, fraction, caplen, orig_len)
    name: str


#: Magic number as it appears in the file → variant.
VARIANTS: dict[bytes, Variant] = {
    b"\xd4\xc3\xb2\xa1": Variant("<", 1_000_000, _RECORD, "little-endian, microseconds"),
    b"\xa1\xb2\xc3\xd4": Variant(">", 1_000_000, _RECORD, "big-endian, microseconds"),
    b"\x4d\x3c\xb2\xa1": Variant("<", 1_000_000_000, _RECORD, "little-endian, nanoseconds"),
    b"\xa1\xb2\x3c\x4d": Variant(">", 1_000_000_000, _RECORD, "big-endian, nanoseconds"),
    b"\x34\xcd\xb2\xa1": Variant("<", 1_000_000, _RECORD_MODIFIED, "modified, little-endian"),
    b"\xa1\xb2\xcd\x34": Variant(">", 1_000_000, _RECORD_MODIFIED, "modified, big-endian"),
}


class PcapReader(CaptureReader):
    """Walks pcap records inside each chunk; the per-packet loop is the hot path of the whole analyser."""

    format = "pcap"

    def __init__(self, source: ByteSource, head: bytes, diagnostics: Diagnostics):
        super().__init__(source, diagnostics)
        self.variant = VARIANTS[head[:4]]
        head = fill(source, head, FILE_HEADER_SIZE)
        if len(head) < FILE_HEADER_SIZE:
            raise self.header_error(
                f"pcap file header is truncated ({len(head)} of {FILE_HEADER_SIZE} bytes)")
        order = self.variant.order
        major, minor, _zone, _sigfigs, self.snaplen, link = struct.unpack_from(order + FILE_HEADER, head)
        if major < 2:  # Wireshark's rule: 2.x and later; real writers all write 2.4
            raise self.header_error(f"pcap file header has unsupported version {major}.{minor}")
        self.linktype = link & LINKTYPE_MASK
        self.version = (major, minor)
        self._rest = head[FILE_HEADER_SIZE:]

    def _walk(self) -> Iterator[tuple]:
        record = struct.Struct(self.variant.order + self.variant.record)
        unpack = record.unpack_from
        hsize = record.size
        units = self.variant.units
        linktype = self.linktype
        limit = max(MAX_CAPLEN, min(self.snaplen, MAX_CAPLEN_HARD))
        keep = self.prefilter
        buf, self._rest = self._rest, b""
        base = FILE_HEADER_SIZE  # file offset of buf[0]
        pos = 0
        number = 0
        last = -1  # where the last complete record starts in buf (its time is read once per chunk)
        while chunk := self._read_chunk(number):
            if last >= 0:
                self._stamp(unpack(buf, last))
                last = -1
            buf = buf[pos:] + chunk if pos < len(buf) else chunk
            base += pos
            pos = 0
            end = len(buf)
            stop = end - hsize
            while pos <= stop:
                sec, frac, caplen, orig_len = unpack(buf, pos)
                if caplen > limit:
                    self._bad_length(number + 1, base + pos, caplen, limit)
                    self.packets = number
                    if last >= 0:
                        self._stamp(unpack(buf, last))
                    return
                start = pos + hsize
                nxt = start + caplen
                if nxt > end:
                    break
                number += 1
                last = pos
                if keep is not None and not keep(buf, start, nxt, linktype):
                    pos = nxt
                    continue
                # Exact int division rounds once, to the float nearest the recorded time; costs nothing
                # measurable over sec + frac / units.
                yield (number, (sec * units + frac) / units, linktype, buf[start:nxt], orig_len)
                pos = nxt
        self.packets = number
        if last >= 0:
            self._stamp(unpack(buf, last))
        left = len(buf) - pos
        if left:
            self._truncated(number + 1, base + pos, left, hsize, unpack(buf, pos)[2] if left >= hsize else 0)

    def _stamp(self, record: tuple) -> None:
        units = self.variant.units
        self.last_time = (record[0] * units + record[1]) / units

    def _bad_length(self, frame: int, offset: int, caplen: int, limit: int) -> None:
        self._stop("bad-record", frame - 1, offset,
                   f"the record of frame {frame} claims {caplen} captured bytes (limit {limit})",
                   f"frame {frame}: record at {self._offset(offset)} claims {caplen} captured bytes "
                   f"(limit {limit}); the rest of the file was not read", (frame,))

    def _truncated(self, frame: int, offset: int, left: int, hsize: int, caplen: int) -> None:
        if left < hsize:
            what = f"the file ends inside its record header ({left} of {hsize} bytes)"
        else:
            what = f"{hsize + caplen - left} of its {caplen} captured bytes are missing"
        self._stop("truncated-packet", frame - 1, offset, f"frame {frame} is cut short: {what}",
                   f"frame {frame} ({self._offset(offset)}) is cut short: {what}", (frame,))
