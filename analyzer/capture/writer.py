"""Writing captures: pcapng, the format Wireshark and tshark open without a question.

One section; one interface per link type, declared when its first packet comes (so packets can be
streamed); microsecond timestamps; one Enhanced Packet Block per packet, with the packet's original length
and any frame comments (``opt_comment``, shown by Wireshark as ``frame.comment``). ``mcxa synth`` writes its
captures with it, ``mcxa flow --pcap`` and ``mcxa analyze --pcap-dir`` the frames they cite.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

LINKTYPE_ETHERNET = 1
#: Largest comment kept per option: a pcapng option length is 16 bits.
_MAX_OPTION = 0xFFFC


class OutPacket(NamedTuple):
    """One packet to write: capture time (seconds since the epoch), link type, bytes, length on the wire,
    and the frame comments Wireshark will show."""

    time: float
    linktype: int
    data: bytes
    orig_len: int
    comments: tuple[str, ...] = ()


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def _comment(text: str) -> bytes:
    data = text.encode("utf-8", "replace")
    return data if len(data) <= _MAX_OPTION else data[:_MAX_OPTION - 3] + "…".encode()


def pcapng_blocks(packets: Iterable[OutPacket], application: str, interface: str = "mcxa",
                  comments: Iterable[str] = ()) -> Iterator[bytes]:
    """The file, block by block: the section header (with ``comments`` on the whole file), then each packet
    (after its interface's description, named ``interface`` and a number, the first time its link type is
    seen)."""
    notes = b"".join(_option(1, _comment(c)) for c in comments)
    yield _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + notes
                 + _option(4, application.encode()) + _option(0, b""))
    interfaces: dict[int, int] = {}
    for time, linktype, data, orig_len, comments in packets:
        if linktype not in interfaces:
            interfaces[linktype] = len(interfaces)
            name = f"{interface}{len(interfaces) - 1}".encode()
            yield _block(1, struct.pack("<HHI", linktype, 0, 262144) + _option(2, name) + _option(9, b"\x06")
                         + _option(0, b""))
        micros = round(time * 1_000_000)
        options = b"".join(_option(1, _comment(c)) for c in comments)
        body = (struct.pack("<IIIII", interfaces[linktype], micros >> 32, micros & 0xFFFFFFFF, len(data),
                            max(orig_len, len(data)))
                + data + b"\0" * (-len(data) % 4) + (options + _option(0, b"") if options else b""))
        yield _block(6, body)


def pcapng_bytes(packets: Iterable[tuple[float, bytes]], application: str = "mcxa synth") -> bytes:
    """Ethernet frames (time, bytes) as a whole pcapng file."""
    return b"".join(pcapng_blocks((OutPacket(t, LINKTYPE_ETHERNET, f, len(f)) for t, f in packets),
                                  application, "synth"))
