"""Link layers: where the IP packet starts in a frame, per LINKTYPE (a registry, not an if-chain).

Each decoder takes the captured bytes and returns ``(ip_version, offset)`` of the network-layer packet,
or ``None`` for frames that carry no IP (ARP, LLDP, STP, PPP control protocols ...). A header cut short
raises ``BadFrame``; a packet that may hold IP but in a form not decoded here (compressed or encrypted
PPP) raises ``CannotFollow``: both become diagnostics. Tunnels inside IP (GRE, GTP-U, IP-in-IP) are the
transport stage's business; only what tunnels carry (Ethernet, PPP) comes back here.
"""

from __future__ import annotations

from collections.abc import Callable


class BadFrame(Exception):
    """A link-layer (or tunnel) header is malformed or cut short: a ``malformed-packet`` diagnostic."""


class CannotFollow(Exception):
    """The frame may carry IP, in a form this decoder does not open: an ``unsupported-encapsulation``
    diagnostic."""


ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
#: 802.1Q, 802.1ad (QinQ), legacy QinQ tags: each adds 4 bytes before the real EtherType.
VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
ETHERTYPE_VERSION = {ETH_IPV4: 4, ETH_IPV6: 6}
MPLS_UNICAST, MPLS_MULTICAST = 0x8847, 0x8848
PPPOE_SESSION = 0x8864


def ethernet(data: bytes, offset: int = 0):
    """Ethernet II with any number of VLAN tags, MPLS label stacks and PPPoE sessions."""
    pos = offset + 12
    end = len(data)
    while pos + 2 <= end:
        etype = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if etype in ETHERTYPE_VERSION:
            return ETHERTYPE_VERSION[etype], pos
        if etype in VLAN_TAGS:
            pos += 2
        elif etype in (MPLS_UNICAST, MPLS_MULTICAST):
            return mpls(data, pos)
        elif etype == PPPOE_SESSION:
            return ppp(data, pos + 6)
        else:
            return None
    raise BadFrame(f"Ethernet header cut short ({end - offset} bytes)")


def mpls(data: bytes, pos: int):
    """Skip MPLS labels to the bottom of stack; the payload's version nibble tells IPv4 from IPv6."""
    while pos + 4 <= len(data):
        bottom = data[pos + 2] & 0x01
        pos += 4
        if bottom:
            return _by_version(data, pos)
    raise BadFrame("MPLS label stack runs past the end of the frame")


PPP_VERSIONS = {0x0021: 4, 0x0057: 6}
#: PPP network-layer protocols that may hold IP in a form not decoded here (RFC 1144, 1962, 1968, 1990).
PPP_OPAQUE = {0x002D: "Van Jacobson compressed TCP/IP", 0x002F: "Van Jacobson uncompressed TCP/IP",
              0x003D: "multilink", 0x0053: "encrypted (ECP)", 0x0055: "individual link encrypted",
              0x00FB: "individual link compressed", 0x00FD: "compressed (CCP, e.g. MPPC/MPPE)"}


def ppp(data: bytes, pos: int = 0):
    """A PPP frame (RFC 1661): address and control bytes FF 03 if present (RFC 1662), then the protocol
    field, one byte when compressed (its value is odd) else two; IPv4 0x0021, IPv6 0x0057.

    Control protocols (LCP, IPCP, CHAP ...) and other network protocols carry no IP: None.
    """
    end = len(data)
    if pos + 1 < end and data[pos] == 0xFF and data[pos + 1] == 0x03:
        pos += 2
    if pos >= end:
        raise BadFrame("PPP frame has no protocol field")
    proto = data[pos]
    if proto & 1:
        pos += 1
    elif pos + 2 > end:
        raise BadFrame("PPP protocol field cut short")
    else:
        proto = (proto << 8) | data[pos + 1]
        pos += 2
        if not proto & 1:
            raise BadFrame(f"PPP protocol field 0x{proto:04x} is invalid (RFC 1661 §2: it must be odd)")
    version = PPP_VERSIONS.get(proto)
    if version is not None:
        return version, pos
    if proto in PPP_OPAQUE:
        raise CannotFollow(f"PPP protocol 0x{proto:04x} ({PPP_OPAQUE[proto]}) is not decoded")
    return None


def _by_version(data: bytes, pos: int):
    if pos >= len(data):
        return None
    version = data[pos] >> 4
    return (version, pos) if version in (4, 6) else None


def raw_ip(data: bytes):
    found = _by_version(data, 0)
    if found is None:
        raise BadFrame(f"raw IP frame with IP version {data[0] >> 4}" if data else "empty raw IP frame")
    return found


def linux_sll(data: bytes):
    """Linux cooked capture v1: 16-byte header, protocol type in the last two bytes."""
    if len(data) < 16:
        raise BadFrame(f"Linux cooked header cut short ({len(data)} of 16 bytes)")
    etype = (data[14] << 8) | data[15]
    if etype in ETHERTYPE_VERSION:
        return ETHERTYPE_VERSION[etype], 16
    if etype in VLAN_TAGS:  # the kernel sometimes leaves the VLAN tag in the payload
        return ethernet(data, 16 - 12 + 2)
    return None


def linux_sll2(data: bytes):
    """Linux cooked capture v2: 20-byte header, protocol type first."""
    if len(data) < 20:
        raise BadFrame(f"Linux cooked v2 header cut short ({len(data)} of 20 bytes)")
    etype = (data[0] << 8) | data[1]
    version = ETHERTYPE_VERSION.get(etype)
    return (version, 20) if version else None


#: BSD loopback address families: AF_INET is 2 everywhere, AF_INET6 differs per OS.
_NULL_FAMILIES = {2: 4, 10: 6, 24: 6, 28: 6, 30: 6}


def bsd_null(data: bytes):
    """DLT_NULL: 4-byte address family in the capturing host's byte order (either)."""
    if len(data) < 4:
        raise BadFrame(f"loopback header cut short ({len(data)} of 4 bytes)")
    family = int.from_bytes(data[:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(data[:4], "big")
    version = _NULL_FAMILIES.get(family)
    return (version, 4) if version else None


def bsd_loop(data: bytes):
    """DLT_LOOP (OpenBSD): like DLT_NULL but always network byte order."""
    if len(data) < 4:
        raise BadFrame(f"loopback header cut short ({len(data)} of 4 bytes)")
    version = _NULL_FAMILIES.get(int.from_bytes(data[:4], "big"))
    return (version, 4) if version else None


def ppp_frame(data: bytes):
    """LINKTYPE_PPP: a PPP frame, with or without the FF 03 of HDLC-like framing (not byte-stuffed)."""
    return ppp(data, 0)


#: NFLOG address families (Linux AF_INET, AF_INET6) → IP version; others carry no IP packet we read.
_NFLOG_FAMILIES = {2: 4, 10: 6}
NFULA_PACKET_HDR, NFULA_PAYLOAD = 1, 9


def nflog(data: bytes):
    """Linux NFLOG (LINKTYPE 239): family (1), version (1), resource id (2, big-endian), then TLVs of
    length (2) and type (2) in the capturing host's byte order (little-endian, as tshark assumes), the
    length counting this 4-byte header, each padded to 4 bytes. NFULA_PAYLOAD (type 9) holds the packet.

    As tshark does, the packet header's hardware protocol (an EtherType) says what the payload is, or,
    when it is 0 or absent, the header's family (AF_INET, AF_INET6); anything else is not IP.
    """
    end = len(data)
    if end < 4:
        raise BadFrame(f"NFLOG header cut short ({end} of 4 bytes)")
    pos, hw_protocol = 4, 0
    while pos + 4 <= end:
        length = data[pos] | (data[pos + 1] << 8)
        kind = (data[pos + 2] | (data[pos + 3] << 8)) & 0x7FFF  # bit 15: NLA_F_NESTED
        if length < 4:
            raise BadFrame(f"NFLOG TLV at byte {pos} has length {length} (below its 4-byte header)")
        if kind == NFULA_PAYLOAD:  # (it may run past the end: a snap length cut it)
            version = (ETHERTYPE_VERSION.get(hw_protocol) if hw_protocol
                       else _NFLOG_FAMILIES.get(data[0]))
            return (version, pos + 4) if version else None
        if pos + length > end:
            raise BadFrame(f"NFLOG TLV of type {kind} at byte {pos} runs past the end of the frame")
        if kind == NFULA_PACKET_HDR and length >= 6:
            hw_protocol = (data[pos + 4] << 8) | data[pos + 5]
        pos += (length + 3) & ~3
    return None  # a log entry without the packet (NFLOG may be configured to log no payload)


LinkDecoder = Callable[[bytes], "tuple[int, int] | None"]

#: LINKTYPE number → decoder. DLT_RAW has had several numbers across platforms.
LINK_DECODERS: dict[int, LinkDecoder] = {
    0: bsd_null,
    1: ethernet,
    9: ppp_frame,
    12: raw_ip,
    14: raw_ip,
    101: raw_ip,
    108: bsd_loop,
    113: linux_sll,
    228: raw_ip,  # LINKTYPE_IPV4
    229: raw_ip,  # LINKTYPE_IPV6
    239: nflog,
    276: linux_sll2,
}

LINKTYPE_NAMES = {0: "NULL", 1: "ETHERNET", 9: "PPP", 12: "RAW", 14: "RAW", 101: "RAW", 108: "LOOP",
                  113: "LINUX_SLL", 228: "IPV4", 229: "IPV6", 239: "NFLOG", 276: "LINUX_SLL2"}
