"""pcapng files: a sequence of blocks, each carrying its total length at both ends.

Every block starts with ``type (4) | total length (4)`` and ends with ``total length (4)``; the length is a
multiple of 4. A Section Header Block starts a section: it fixes the byte order of everything up to the next
SHB and forgets the interfaces of the previous section. Interface Description Blocks number the interfaces
of a section from 0, in order. Layouts after the 8-byte block header (``BLOCKS`` says which are read):

| block | type | body |
|---|---|---|
| SHB section header | 0x0A0D0D0A | byte-order magic 1A2B3C4D (4), major (2), minor (2), length (8), opts |
| IDB interface description | 1 | link type (2), reserved (2), snaplen (4), options |
| PB packet (obsolete) | 2 | interface (2), drops (2), ts high (4), ts low (4), caplen (4), orig len (4), … |
| SPB simple packet | 3 | orig len (4), data (caplen = min(orig len, snaplen of interface 0)) |
| EPB enhanced packet | 6 | interface (4), ts high (4), ts low (4), caplen (4), orig len (4), data, options |

Data is padded to 4 bytes. Timestamps count units of the interface's ``if_tsresol`` (option 9, one byte:
high bit clear = 10^-n s, set = 2^-n s; default 10^-6) from ``if_tsoffset`` (option 14, signed seconds).
A Simple Packet Block has no timestamp and gets the time of the last packet decoded before it (0.0 if none),
which with a prefilter may be an earlier one than the packet just before it. So does a packet whose
timestamp, with its interface's resolution and offset, is not a date in years 1..9999 (``bad-timestamp``).
An Interface Statistics Block's drop counters (``isb_ifdrop``, ``isb_osdrop``) go to ``drops``. Every
other block type (name resolution, decryption secrets, custom, ...) is skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import NamedTuple

from analyzer.base.diagnostics import Diagnostics
from analyzer.capture.source import FIRST_TIME, LAST_TIME, ByteSource, CaptureReader, fill, hexstart

MAGIC = b"\x0a\x0d\x0d\x0a"  # SHB block type: a palindrome, so readable before the byte order is known

SHB, IDB, PB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6

#: Byte-order magic as it appears in the file → struct byte-order prefix.
BYTE_ORDERS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}

#: Struct layouts after the byte-order prefix, read from the start of the block.
BLOCK_HEADER = "II"  # type, total length
TRAILER = "I"  # total length, repeated at the end
SHB_BODY = "8x4xHHq"  # (byte-order magic read apart) major, minor, section length
IDB_BODY = "8xHxxI"  # link type, snaplen
EPB_BODY = "8xIIIII"  # interface, ts high, ts low, caplen, orig len
EPB_FAST = BLOCK_HEADER + "IIIII"  # the same with the block header, for the hot loop
PB_BODY = "8xHxxIIII"  # interface, ts high, ts low, caplen, orig len (drops skipped)
SPB_BODY = "8xI"  # orig len
OPTION = "HH"  # code, length; value follows, padded to 4

EPB_DATA, PB_DATA, SPB_DATA, IDB_OPTIONS = 28, 28, 12, 16  # offsets in the block

#: Blocks longer than this are garbage: no legal packet needs more (Wireshark's limit is of this order).
MAX_BLOCK = 16 << 20
#: Interfaces one section may define: far beyond any capture tool's, so that a file of nothing but
#: interface blocks cannot grow the table without bound (a further one is a malformed block).
MAX_INTERFACES = 65_536

OPT_ENDOFOPT, IF_TSRESOL, IF_TSOFFSET = 0, 9, 14
ISB_OPTIONS, ISB_IFDROP, ISB_OSDROP = 20, 5, 7  # where an ISB's options start; the drop counters' codes
DEFAULT_UNITS = 1_000_000


class _BadBlock(Exception):
    """A block that cannot be read (one-line reason); always becomes a diagnostic or a header error."""


class _Section:
    """State of one section: its byte order, the structs bound to it, and its interfaces."""

    __slots__ = ("epb", "header", "interfaces", "order", "trailer")

    def __init__(self, order: str):
        self.order = order
        self.header = struct.Struct(order + BLOCK_HEADER).unpack_from
        self.epb = struct.Struct(order + EPB_FAST).unpack_from
        self.trailer = struct.Struct(order + TRAILER).unpack_from
        #: (link type, timestamp units per second, if_tsoffset in units, snaplen) per interface id
        self.interfaces: list[tuple[int, int, int, int]] = []


class BlockKind(NamedTuple):
    """How to treat one block type: its name for messages, its minimum length, what reads it."""

    name: str
    minimum: int
    # reader, block bytes, block offset, block length → (time or None, link type, data, orig len) or None
    handler: Callable | None = None
    packet: bool = False  # counted as a frame by Wireshark


def _options(buf: bytes, start: int, end: int, order: str) -> Iterator[tuple[int, bytes]]:
    """(code, value) of each option from ``start`` up to opt_endofopt or ``end``."""
    option = struct.Struct(order + OPTION)
    p = start
    while p + 4 <= end:
        code, length = option.unpack_from(buf, p)
        if code == OPT_ENDOFOPT:
            return
        v = p + 4
        if v + length > end:
            raise _BadBlock(f"option {code} ({length} bytes) runs past the end of the block")
        yield code, buf[v:v + length]
        p = v + ((length + 3) & ~3)


def _tsresol(value: bytes | None) -> int:
    """Timestamp units per second from an if_tsresol value."""
    if value is None:
        return DEFAULT_UNITS
    if len(value) != 1:
        raise _BadBlock(f"if_tsresol option has {len(value)} bytes instead of 1")
    exponent = value[0] & 0x7F
    return 1 << exponent if value[0] & 0x80 else 10 ** exponent


def _tsoffset(value: bytes | None, order: str) -> int:
    """if_tsoffset in seconds (0 when absent)."""
    if value is None:
        return 0
    if len(value) != 8:
        raise _BadBlock(f"if_tsoffset option has {len(value)} bytes instead of 8")
    return struct.unpack(order + "q", value)[0]


def _byte_order(buf: bytes, pos: int) -> str:
    magic = buf[pos + 8:pos + 12]
    order = BYTE_ORDERS.get(magic)
    if order is None:
        raise _BadBlock(f"section header has an unknown byte-order magic ({hexstart(magic)})")
    return order


class PcapngReader(CaptureReader):
    """Walks pcapng blocks inside each chunk: Enhanced Packet Blocks inline, every other block by registry."""

    format = "pcapng"

    def __init__(self, source: ByteSource, head: bytes, diagnostics: Diagnostics):
        super().__init__(source, diagnostics)
        minimum = BLOCKS[SHB].minimum
        head = fill(source, head, 12)
        if len(head) < 12:
            raise self.header_error(
                f"pcapng section header block is truncated ({len(head)} of at least {minimum} bytes)")
        try:
            order = _byte_order(head, 0)
        except _BadBlock as exc:
            raise self.header_error(f"pcapng {exc}") from None
        self._section = _Section(order)
        length = struct.unpack_from(order + TRAILER, head, 4)[0]
        if not length & 3 and minimum <= length <= MAX_BLOCK:
            head = fill(source, head, length)
            if len(head) < length:
                raise self.header_error(
                    f"pcapng section header block is truncated ({len(head)} of {length} bytes)")
        try:
            end, _ = self._block(head, 0, len(head))
        except _BadBlock as exc:
            raise self.header_error(f"pcapng section header block is garbled: {exc}") from None
        self._rest, self._first = head[end:], end

    @property
    def byte_order(self) -> str:
        """'<' or '>' for the current section."""
        return self._section.order

    def _walk(self) -> Iterator[tuple]:
        keep = self.prefilter
        buf, self._rest = self._rest, b""
        base = self._first  # file offset of buf[0]
        pos = 0
        number = 0
        t = 0.0  # time of the previous packet, for Simple Packet Blocks
        section = self._section
        epb, trailer = section.epb, section.trailer
        ifaces = section.interfaces
        nifaces = len(ifaces)
        last = -1  # where the last fast-path EPB starts in buf (its time is read once per chunk)
        while chunk := self._read_chunk(number):
            if last >= 0:
                self._stamp(epb(buf, last), ifaces)
                last = -1
            buf = buf[pos:] + chunk if pos < len(buf) else chunk
            base += pos
            pos = 0
            end = len(buf)
            stop = end - 12  # every block is at least 12 bytes
            fast_stop = end - 32  # an EPB is at least 32
            while pos <= stop:
                # Fast path: a complete, well-formed EPB. Anything else, or an EPB failing a check, goes the
                # general way, which reports exactly what is wrong.
                if pos <= fast_stop:
                    btype, blen, ifid, hi, lo, caplen, orig_len = epb(buf, pos)
                    nxt = pos + blen
                    if (btype == EPB and nxt <= end and 32 <= blen <= MAX_BLOCK and not blen & 3
                            and trailer(buf, nxt - 4)[0] == blen and caplen <= blen - 32 and ifid < nifaces):
                        linktype, units, offset, _ = ifaces[ifid]
                        number += 1
                        last = pos
                        data_start = pos + EPB_DATA
                        if keep is None or keep(buf, data_start, data_start + caplen, linktype):
                            # (a Simple Packet Block, which has no time, takes this last computed one)
                            when = (((hi << 32) | lo) + offset) / units
                            t = when if FIRST_TIME <= when <= LAST_TIME else self._bad_time(number, when, t)
                            yield (number, t, linktype, buf[data_start:data_start + caplen], orig_len)
                        pos = nxt
                        continue
                try:
                    nxt, packet = self._block(buf, pos, end)
                except _BadBlock as exc:
                    self._bad_block(buf, pos, base, number, str(exc))
                    self.packets = number
                    if last >= 0:
                        self._stamp(epb(buf, last), ifaces)
                    return
                if nxt is None:
                    break  # the block goes on in the next chunk
                if self._section is not section:  # a new section: the last time needs the old interfaces
                    if last >= 0:
                        self._stamp(epb(buf, last), ifaces)
                        last = -1
                    section = self._section
                    epb, trailer = section.epb, section.trailer
                ifaces = section.interfaces
                nifaces = len(ifaces)
                if packet is not None:
                    number += 1
                    when, linktype, data, orig_len = packet
                    if when is not None:
                        t = when if FIRST_TIME <= when <= LAST_TIME else self._bad_time(number, when, t)
                    last, self.last_time = -1, t
                    yield (number, t, linktype, data, orig_len)
                pos = nxt
        self.packets = number
        if last >= 0:
            self._stamp(epb(buf, last), ifaces)
        if pos < len(buf):
            self._truncated(buf, pos, base, number)

    def _stamp(self, block: tuple, ifaces) -> None:
        _, _, ifid, hi, lo, _, _ = block
        _, units, offset, _ = ifaces[ifid]
        when = (((hi << 32) | lo) + offset) / units
        if FIRST_TIME <= when <= LAST_TIME:  # (a bad one was reported when its packet was read)
            self.last_time = when

    def _kind(self, btype: int) -> BlockKind:
        kind = BLOCKS.get(btype)
        return kind if kind is not None else BlockKind(f"block of unknown type 0x{btype:08x}", 12)

    def _block(self, buf: bytes, pos: int, end: int) -> tuple[int | None, tuple | None]:
        """Check the block at ``pos`` and hand it to its handler → (next offset, packet or None).

        (None, None) when the block is not complete in ``buf``. Raises _BadBlock when it is malformed.
        """
        order = self._section.order
        btype, blen = self._section.header(buf, pos)
        if btype == SHB:  # a new section may switch byte order, including that of its own length
            order = _byte_order(buf, pos)
            blen = struct.unpack_from(order + TRAILER, buf, pos + 4)[0]
        kind = self._kind(btype)
        if blen & 3:
            raise _BadBlock(f"{kind.name} length {blen} is not a multiple of 4")
        if blen < kind.minimum:
            raise _BadBlock(f"{kind.name} length {blen} is below its minimum of {kind.minimum}")
        if blen > MAX_BLOCK:
            raise _BadBlock(f"{kind.name} length {blen} exceeds the limit of {MAX_BLOCK}")
        nxt = pos + blen
        if nxt > end:
            return None, None
        trail = struct.unpack_from(order + TRAILER, buf, nxt - 4)[0]
        if trail != blen:
            raise _BadBlock(f"{kind.name} length is {blen} at its start but {trail} at its end")
        return nxt, kind.handler(self, buf, pos, blen) if kind.handler else None

    # -- block handlers (registered in BLOCKS) ------------------------------------------------------------

    def _shb(self, buf: bytes, pos: int, blen: int) -> None:
        order = _byte_order(buf, pos)
        major, minor, _length = struct.unpack_from(order + SHB_BODY, buf, pos)
        if major != 1:
            raise _BadBlock(f"section header has unsupported version {major}.{minor}")
        self._section = _Section(order)

    def _idb(self, buf: bytes, pos: int, blen: int) -> None:
        order = self._section.order
        linktype, snaplen = struct.unpack_from(order + IDB_BODY, buf, pos)
        if len(self._section.interfaces) >= MAX_INTERFACES:
            raise _BadBlock(f"section defines more than {MAX_INTERFACES} interfaces")
        options = dict(_options(buf, pos + IDB_OPTIONS, pos + blen - 4, order))
        units = _tsresol(options.get(IF_TSRESOL))
        offset = _tsoffset(options.get(IF_TSOFFSET), order)
        self._section.interfaces.append((linktype, units, offset * units, snaplen))

    def _isb(self, buf: bytes, pos: int, blen: int) -> None:
        """Interface statistics: the packets the capture tool says were dropped (``isb_ifdrop`` by the
        interface, ``isb_osdrop`` by the OS), kept per interface as of its latest block (counts are
        cumulative; a ring's later file repeats them from the start of the capture)."""
        order = self._section.order
        (ifid,) = struct.unpack_from(order + "8xI", buf, pos)
        counts = dict(_options(buf, pos + ISB_OPTIONS, pos + blen - 4, order))
        drops = [struct.unpack(order + "Q", counts[c])[0] for c in (ISB_IFDROP, ISB_OSDROP)
                 if len(counts.get(c, b"")) == 8]
        if drops and len(self.drops) < MAX_INTERFACES:
            self.drops[ifid] = sum(drops)

    def _interface(self, ifid: int) -> tuple[int, int, int, int]:
        interfaces = self._section.interfaces
        if ifid >= len(interfaces):
            raise _BadBlock(f"packet names interface {ifid} but the section defines {len(interfaces)}")
        return interfaces[ifid]

    def _timed_packet(self, buf: bytes, pos: int, blen: int, body: str, data_at: int) -> tuple:
        ifid, hi, lo, caplen, orig_len = struct.unpack_from(self._section.order + body, buf, pos)
        if caplen > blen - data_at - 4:
            raise _BadBlock(f"captured length {caplen} does not fit in a block of {blen} bytes")
        linktype, units, offset, _ = self._interface(ifid)
        return ((((hi << 32) | lo) + offset) / units, linktype, buf[pos + data_at:pos + data_at + caplen],
                orig_len)

    def _epb(self, buf: bytes, pos: int, blen: int) -> tuple:
        return self._timed_packet(buf, pos, blen, EPB_BODY, EPB_DATA)

    def _pb(self, buf: bytes, pos: int, blen: int) -> tuple:
        return self._timed_packet(buf, pos, blen, PB_BODY, PB_DATA)

    def _spb(self, buf: bytes, pos: int, blen: int) -> tuple:
        (orig_len,) = struct.unpack_from(self._section.order + SPB_BODY, buf, pos)
        linktype, _units, _offset, snaplen = self._interface(0)
        caplen = min(orig_len, blen - SPB_DATA - 4)
        if snaplen:
            caplen = min(caplen, snaplen)
        return None, linktype, buf[pos + SPB_DATA:pos + SPB_DATA + caplen], orig_len

    # -- endings ------------------------------------------------------------------------------------------

    def _bad_block(self, buf: bytes, pos: int, base: int, number: int, reason: str) -> None:
        kind = self._kind(self._section.header(buf, pos)[0])
        if kind.packet:
            where, frames = f"frame {number + 1} ({kind.name} at {self._offset(base + pos)})", (number + 1,)
            what = f"frame {number + 1} ({kind.name})"
        else:
            where, frames = f"block at {self._offset(base + pos)} (after frame {number})", ()
            what = kind.name
        self._stop("bad-record", number, base + pos, f"{what} is malformed: {reason}",
                   f"{where}: {reason}; the rest of the file was not read", frames)

    def _truncated(self, buf: bytes, pos: int, base: int, number: int) -> None:
        left = len(buf) - pos
        at = self._offset(base + pos)
        if left < 8:
            what = f"the file ends inside a block header ({left} of 8 bytes)"
            self._stop("truncated-packet", number, base + pos, what,
                       f"the file ends inside a block header at {at} ({left} of 8 bytes)")
            return
        btype, blen = self._section.header(buf, pos)
        if btype == SHB and left >= 12:  # checked by _block already, so its byte-order magic is sound
            blen = struct.unpack_from(_byte_order(buf, pos) + TRAILER, buf, pos + 4)[0]
        kind = self._kind(btype)
        missing = (f"{blen - left} of its {blen} bytes are missing" if blen > left
                   else f"only {left} bytes are left")
        if kind.packet:
            self._stop("truncated-packet", number, base + pos,
                       f"frame {number + 1} ({kind.name}) is cut short: {missing}",
                       f"frame {number + 1} ({kind.name} at {at}) is cut short: {missing}", (number + 1,))
        else:
            self._stop("truncated-packet", number, base + pos,
                       f"the file ends inside the {kind.name}: {missing}",
                       f"the file ends inside the {kind.name} at {at}: {missing}")


#: Block type → how it is read. Types not listed are skipped whole after the length checks. Wireshark also
#: shows systemd journal export blocks as frames (with no LINKTYPE); here they are skipped, not numbered.
BLOCKS: dict[int, BlockKind] = {
    SHB: BlockKind("section header block", 28, PcapngReader._shb),
    IDB: BlockKind("interface description block", 20, PcapngReader._idb),
    PB: BlockKind("packet block", 32, PcapngReader._pb, packet=True),
    SPB: BlockKind("simple packet block", 16, PcapngReader._spb, packet=True),
    EPB: BlockKind("enhanced packet block", 32, PcapngReader._epb, packet=True),
    4: BlockKind("name resolution block", 12),
    5: BlockKind("interface statistics block", 24, PcapngReader._isb),
    9: BlockKind("systemd journal export block", 12),
    0x0A: BlockKind("decryption secrets block", 20),
    0x0BAD: BlockKind("custom block", 16),
    0x40000BAD: BlockKind("custom block (not to be copied)", 16),
}
