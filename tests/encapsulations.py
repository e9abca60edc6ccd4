"""Builders for the encapsulations of issue 13 that ``tests/captures.py`` does not make: PPTP's enhanced GRE
(RFC 2637) carrying PPP, and Linux NFLOG records (LINKTYPE 239). Each returns bytes for a frame or for the
IP payload of a frame, so tests write them with ``tests.captures.pcap_bytes``.
"""

from __future__ import annotations

import struct

GRE_PROTO = 47
PPP_IPV4, PPP_IPV6, PPP_LCP, PPP_CCP_DATA = 0x0021, 0x0057, 0xC021, 0x00FD
AF_INET, AF_INET6 = 2, 10
NFULA_PACKET_HDR, NFULA_IFINDEX_INDEV, NFULA_PAYLOAD, NFULA_PREFIX = 1, 4, 9, 10


def ppp(payload: bytes, protocol: int = PPP_IPV4, address_control: bool = True,
        compress: bool = False) -> bytes:
    """A PPP frame: FF 03 (unless the peers agreed to drop it, ACFC), then the protocol field, one byte if
    compressed (PFC, only for values below 0x100)."""
    field = bytes((protocol,)) if compress else protocol.to_bytes(2, "big")
    return (b"\xff\x03" if address_control else b"") + field + payload


def enhanced_gre(ppp_frame: bytes, call_id: int = 0x1234, seq: int | None = 1,
                 ack: int | None = None) -> bytes:
    """RFC 2637 §4.1: flags (K always, S with a sequence number, A with an acknowledgement), version 1,
    protocol 0x880B, key = payload length and call ID, then the optional sequence and ack numbers."""
    flags = 0x2000 | (0x1000 if seq is not None else 0) | (0x0080 if ack is not None else 0) | 0x0001
    header = struct.pack(">HHHH", flags, 0x880B, len(ppp_frame), call_id)
    if seq is not None:
        header += struct.pack(">I", seq)
    if ack is not None:
        header += struct.pack(">I", ack)
    return header + ppp_frame


def nflog_tlv(kind: int, value: bytes) -> bytes:
    """One NFLOG TLV: length (counting its 4-byte header) and type, little-endian, padded to 4 bytes."""
    raw = struct.pack("<HH", 4 + len(value), kind) + value
    return raw + b"\x00" * (-len(raw) % 4)


def nflog(packet: bytes, family: int | None = None, prefix: bytes = b"mcxa\x00") -> bytes:
    """An NFLOG record as the kernel's nfnetlink_log hands it to libpcap: header (family by the packet's IP
    version unless given, version 0, resource id 7), packet header, in-device, payload, log prefix."""
    if family is None:
        family = AF_INET6 if packet[0] >> 4 == 6 else AF_INET
    hw_protocol = {AF_INET: b"\x08\x00", AF_INET6: b"\x86\xdd"}.get(family, b"\x00\x00")
    return (bytes((family, 0)) + (7).to_bytes(2, "big")
            + nflog_tlv(NFULA_PACKET_HDR, hw_protocol + b"\x03\x00")  # hw_protocol, hook, pad
            + nflog_tlv(NFULA_IFINDEX_INDEV, struct.pack(">I", 2))
            + nflog_tlv(NFULA_PAYLOAD, packet)
            + nflog_tlv(NFULA_PREFIX, prefix))
