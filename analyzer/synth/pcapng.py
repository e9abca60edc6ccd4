"""The capture file: packets as pcapng, the format Wireshark and tshark open without a question (one
section, one Ethernet interface with microsecond timestamps, one Enhanced Packet Block per packet).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def pcapng_bytes(packets: Iterable[tuple[float, bytes]], application: str = "mcxa synth") -> bytes:
    """One section, one Ethernet interface (microsecond timestamps), one Enhanced Packet Block per packet."""
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(4, application.encode()) + _option(0, b"")
    idb = (struct.pack("<HHI", 1, 0, 262144) + _option(2, b"synth0") + _option(9, b"\x06")
           + _option(0, b""))
    out = [_block(0x0A0D0D0A, shb), _block(1, idb)]
    for time, frame in packets:
        micros = round(time * 1_000_000)
        body = (struct.pack("<IIIII", 0, micros >> 32, micros & 0xFFFFFFFF, len(frame), len(frame))
                + frame + b"\0" * (-len(frame) % 4))
        out.append(_block(6, body))
    return b"".join(out)
