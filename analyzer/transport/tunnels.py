"""Tunnels a probe's capture wraps the signalling in: GRE (plain, ERSPAN, TEB, PPTP's enhanced GRE with
PPP inside) and GTP-U.

Each decoder returns where the inner packet starts as ``("ip", version, bytes)`` or ``("ethernet", bytes)``,
or ``None`` when the tunnel carries no IP packet (GTP-C messages, GRE of other versions or protocols, PPP
control protocols, PPTP acknowledgements). A header cut short raises ``BadFrame``; compressed or encrypted
PPP raises ``CannotFollow``.
"""

from __future__ import annotations

from analyzer.capture.link import ETHERTYPE_VERSION, MPLS_MULTICAST, MPLS_UNICAST, BadFrame, mpls, ppp

GRE_TEB, ERSPAN_II, ERSPAN_III, GRE_PPP = 0x6558, 0x88BE, 0x22EB, 0x880B
GTPU_PORT = 2152
_GTP_GPDU = 0xFF

# GRE flag bits (RFC 2784, RFC 2890, and RFC 2637 for version 1).
_CHECKSUM, _ROUTING, _KEY, _SEQUENCE, _ACK = 0x8000, 0x4000, 0x2000, 0x1000, 0x0080


def gre(payload: bytes):
    """RFC 2784/2890 GRE (version 0): optional checksum, key and sequence words precede the payload;
    version 1 is PPTP's enhanced GRE (``enhanced_gre``). Other versions are not defined: None."""
    if len(payload) < 4:
        raise BadFrame(f"GRE header cut short ({len(payload)} of 4 bytes)")
    flags, proto = (payload[0] << 8) | payload[1], (payload[2] << 8) | payload[3]
    version = flags & 0x0007
    if version == 1:
        return enhanced_gre(payload, flags, proto)
    if version:
        return None
    pos = 4 + 4 * bool(flags & (_CHECKSUM | _ROUTING)) + 4 * bool(flags & _KEY) + 4 * bool(flags & _SEQUENCE)
    if pos > len(payload):
        raise BadFrame(f"GRE header cut short ({len(payload)} of {pos} bytes)")
    inner = payload[pos:]
    if proto in ETHERTYPE_VERSION:
        return "ip", ETHERTYPE_VERSION[proto], inner
    if proto == GRE_TEB:
        return "ethernet", inner
    if proto == ERSPAN_II:
        # Type I (no sequence number in GRE) has no ERSPAN header at all; type II has 8 bytes.
        return "ethernet", inner[8:] if flags & _SEQUENCE else inner
    if proto == ERSPAN_III:
        if len(inner) < 12:
            raise BadFrame(f"ERSPAN type III header cut short ({len(inner)} of 12 bytes)")
        has_subheader = inner[11] & 0x01  # the O bit: an 8-byte platform-specific sub-header follows
        return "ethernet", inner[20:] if has_subheader else inner[12:]
    if proto in (MPLS_UNICAST, MPLS_MULTICAST):
        found = mpls(inner, 0)
        return None if found is None else ("ip", found[0], inner[found[1]:])
    return None


def enhanced_gre(payload: bytes, flags: int, proto: int):
    """RFC 2637 §4.1 enhanced GRE, as PPTP uses: a key word (payload length, call ID) is always there,
    then a sequence number if S, then an acknowledgement number if A; the payload is a PPP frame
    (protocol 0x880B). A packet with no payload only acknowledges."""
    if proto != GRE_PPP:
        return None
    if not flags & _KEY:
        raise BadFrame("enhanced GRE (version 1) header without its key field")
    key = 4 + 4 * bool(flags & (_CHECKSUM | _ROUTING))
    pos = key + 4 + 4 * bool(flags & _SEQUENCE) + 4 * bool(flags & _ACK)
    if pos > len(payload):
        raise BadFrame(f"enhanced GRE header cut short ({len(payload)} of {pos} bytes)")
    length = (payload[key] << 8) | payload[key + 1]  # the key's high half; the low half is the call ID
    inner = payload[pos:pos + length] if length <= len(payload) - pos else payload[pos:]
    if not inner:
        return None
    found = ppp(inner, 0)
    return None if found is None else ("ip", found[0], inner[found[1]:])


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
                raise BadFrame("GTP-U extension header of length 0")
            pos += words * 4
            next_ext = payload[pos - 1] if pos <= len(payload) else 0
    if pos >= len(payload):
        return None
    version = payload[pos] >> 4
    return ("ip", version, payload[pos:]) if version in (4, 6) else None
