"""Wireshark "Export PDUs" files (LINKTYPE_WIRESHARK_UPPER_PDU, 252): each record is one PDU a dissector
exported (``tshark -U "OSI layer 7"``, File › Export PDUs to File), after a list of tags that say which
dissector it was for and where it came from.

A tag is a 2-byte type and a 2-byte length (big-endian), then that many bytes (Wireshark pads strings to
4 bytes); type 0 ends the list. The types read here are those of Wireshark's ``epan/exported_pdu.h``:
12 the dissector's name, 13 a heuristic dissector's, 14 a dissector table's, 20/21 the IPv4 source and
destination, 22/23 IPv6, 24 the port type (Wireshark's ``port_type``: 1 SCTP, 2 TCP, 3 UDP), 25/26 source
and destination port, 30 the frame number in the original capture. Others are skipped.
"""

from __future__ import annotations

from typing import NamedTuple

from analyzer.capture.link import BadFrame

LINKTYPE_UPPER_PDU = 252
_END, _PROTO, _HEUR_PROTO, _TABLE = 0, 12, 13, 14
_IPV4_SRC, _IPV4_DST, _IPV6_SRC, _IPV6_DST = 20, 21, 22, 23
_PORT_TYPE, _SRC_PORT, _DST_PORT, _ORIG_FRAME = 24, 25, 26, 30
#: Wireshark's ``port_type`` → the transport names of ``Payload``
PORT_TYPES = {1: "sctp", 2: "tcp", 3: "udp"}
_MAX_TAGS = 256  # a real record has a handful


class ExportedPdu(NamedTuple):
    """One exported PDU: the dissector it was exported for, its addresses (raw bytes, None when the
    record has none), ports, transport, the frame it came from in the original capture, its bytes."""

    proto: str
    src: bytes | None
    dst: bytes | None
    sport: int
    dport: int
    transport: str | None
    original_frame: int | None
    data: bytes


def exported_pdu(frame: bytes) -> ExportedPdu:
    """Read the tags and the PDU of one record; a tag list cut short raises ``BadFrame``."""
    pos, end = 0, len(frame)
    proto, src, dst, transport, original = "", None, None, None, None
    sport = dport = 0
    for _ in range(_MAX_TAGS):
        if pos + 4 > end:
            raise BadFrame(f"exported PDU tags cut short at byte {pos} of {end}")
        tag, size = (frame[pos] << 8) | frame[pos + 1], (frame[pos + 2] << 8) | frame[pos + 3]
        value, pos = frame[pos + 4:pos + 4 + size], pos + 4 + size
        if pos > end:
            raise BadFrame(f"exported PDU tag {tag} of {size} bytes runs past the record ({end} bytes)")
        if tag == _END:
            break
        if tag in (_PROTO, _HEUR_PROTO, _TABLE) and not proto:
            proto = value.split(b"\x00", 1)[0].decode("ascii", "replace").lower()
        elif tag in (_IPV4_SRC, _IPV6_SRC) and size in (4, 16):
            src = value
        elif tag in (_IPV4_DST, _IPV6_DST) and size in (4, 16):
            dst = value
        elif size == 4 and tag in (_PORT_TYPE, _SRC_PORT, _DST_PORT, _ORIG_FRAME):
            number = int.from_bytes(value, "big")
            if tag == _PORT_TYPE:
                transport = PORT_TYPES.get(number)
            elif tag == _SRC_PORT:
                sport = number & 0xFFFF
            elif tag == _DST_PORT:
                dport = number & 0xFFFF
            else:
                original = number
    else:
        raise BadFrame(f"exported PDU has more than {_MAX_TAGS} tags")
    return ExportedPdu(proto, src, dst, sport, dport, transport, original, frame[pos:])
