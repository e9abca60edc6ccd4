"""Link layers: where the IP packet starts in a frame, per LINKTYPE (a registry, not an if-chain).

Each decoder takes the captured bytes and returns ``(ip_version, offset)`` of the network-layer packet,
or ``None`` for frames that carry no IP (ARP, LLDP, STP ...). Tunnels inside IP (GRE, GTP-U, IP-in-IP)
are the transport stage's business; only Ethernet-in-GRE (ERSPAN, TEB) comes back here via
``ethernet``.
"""

from __future__ import annotations

from collections.abc import Callable

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
            return _mpls(data, pos)
        elif etype == PPPOE_SESSION:
            return _ppp(data, pos + 6)
        else:
            return None
    return None


def _mpls(data: bytes, pos: int):
    """Skip MPLS labels to the bottom of stack; the payload's version nibble tells IPv4 from IPv6."""
    while pos + 4 <= len(data):
        bottom = data[pos + 2] & 0x01
        pos += 4
        if bottom:
            return _by_version(data, pos)
    return None


def _ppp(data: bytes, pos: int):
    if pos + 2 > len(data):
        return None
    proto = (data[pos] << 8) | data[pos + 1]
    return {0x0021: (4, pos + 2), 0x0057: (6, pos + 2)}.get(proto)


def _by_version(data: bytes, pos: int):
    if pos >= len(data):
        return None
    version = data[pos] >> 4
    return (version, pos) if version in (4, 6) else None


def raw_ip(data: bytes):
    return _by_version(data, 0)


def linux_sll(data: bytes):
    """Linux cooked capture v1: 16-byte header, protocol type in the last two bytes."""
    if len(data) < 16:
        return None
    etype = (data[14] << 8) | data[15]
    if etype in ETHERTYPE_VERSION:
        return ETHERTYPE_VERSION[etype], 16
    if etype in VLAN_TAGS:  # the kernel sometimes leaves the VLAN tag in the payload
        return ethernet(data, 16 - 12 + 2) if len(data) > 20 else None
    return None


def linux_sll2(data: bytes):
    """Linux cooked capture v2: 20-byte header, protocol type first."""
    if len(data) < 20:
        return None
    etype = (data[0] << 8) | data[1]
    version = ETHERTYPE_VERSION.get(etype)
    return (version, 20) if version else None


#: BSD loopback address families: AF_INET is 2 everywhere, AF_INET6 differs per OS.
_NULL_FAMILIES = {2: 4, 10: 6, 24: 6, 28: 6, 30: 6}


def bsd_null(data: bytes):
    """DLT_NULL: 4-byte address family in the capturing host's byte order (either)."""
    if len(data) < 4:
        return None
    family = int.from_bytes(data[:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(data[:4], "big")
    version = _NULL_FAMILIES.get(family)
    return (version, 4) if version else None


def bsd_loop(data: bytes):
    """DLT_LOOP (OpenBSD): like DLT_NULL but always network byte order."""
    if len(data) < 4:
        return None
    version = _NULL_FAMILIES.get(int.from_bytes(data[:4], "big"))
    return (version, 4) if version else None


LinkDecoder = Callable[[bytes], "tuple[int, int] | None"]

#: LINKTYPE number → decoder. DLT_RAW has had several numbers across platforms.
LINK_DECODERS: dict[int, LinkDecoder] = {
    0: bsd_null,
    1: ethernet,
    12: raw_ip,
    14: raw_ip,
    101: raw_ip,
    108: bsd_loop,
    113: linux_sll,
    228: raw_ip,  # LINKTYPE_IPV4
    229: raw_ip,  # LINKTYPE_IPV6
    276: linux_sll2,
}

LINKTYPE_NAMES = {0: "NULL", 1: "ETHERNET", 12: "RAW", 14: "RAW", 101: "RAW", 108: "LOOP",
                  113: "LINUX_SLL", 228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2"}
