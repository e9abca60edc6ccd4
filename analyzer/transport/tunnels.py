"""Tunnels a probe's capture wraps the signalling in: GRE (ERSPAN, TEB) and GTP-U.

Each decoder returns where the inner packet starts as ``("ip", version, bytes)`` or
``("ethernet", bytes)``, or ``None`` when the tunnel carries nothing we decode (GTP-C, GRE keepalives).
"""

from __future__ import annotations

from analyzer.capture.link import ETHERTYPE_VERSION

GRE_TEB, ERSPAN_II, ERSPAN_III = 0x6558, 0x88BE, 0x22EB
GTPU_PORT = 2152
_GTP_GPDU = 0xFF


def gre(payload: bytes):
    """RFC 2784/2890 GRE: optional checksum, key and sequence words precede the payload."""
    if len(payload) < 4:
        return None
    flags, proto = (payload[0] << 8) | payload[1], (payload[2] << 8) | payload[3]
    if flags & 0x0007:  # version 1 is PPTP's enhanced GRE: not IP inside
        return None
    pos = 4 + 4 * (bool(flags & 0x8000) or bool(flags & 0x4000)) + 4 * bool(flags & 0x2000) \
        + 4 * bool(flags & 0x1000)
    inner = payload[pos:]
    if proto in ETHERTYPE_VERSION:
        return "ip", ETHERTYPE_VERSION[proto], inner
    if proto == GRE_TEB:
        return "ethernet", inner
    if proto == ERSPAN_II:
        # Type I (no sequence number in GRE) has no ERSPAN header at all; type II has 8 bytes.
        return "ethernet", inner[8:] if flags & 0x1000 else inner
    if proto == ERSPAN_III:
        if len(inner) < 12:
            return None
        has_subheader = inner[11] & 0x01  # the O bit: an 8-byte platform-specific sub-header follows
        return "ethernet", inner[20:] if has_subheader else inner[12:]
    return None


def gtpu(payload: bytes):
    """3GPP TS 29.281 GTP-U G-PDU: 8-byte header, 4 more if E/S/PN, then extension headers."""
    if len(payload) < 8 or payload[0] >> 5 != 1 or payload[1] != _GTP_GPDU:
        return None
    flags, pos = payload[0], 8
    if flags & 0x07:
        pos = 12
        next_ext = payload[11] if len(payload) >= 12 else 0
        while next_ext and pos < len(payload):
            words = payload[pos]
            if not words:
                return None
            pos += words * 4
            next_ext = payload[pos - 1] if pos <= len(payload) else 0
    if pos >= len(payload):
        return None
    version = payload[pos] >> 4
    return ("ip", version, payload[pos:]) if version in (4, 6) else None
