"""IPsec ESP (RFC 4303), as sec-agree (RFC 3329, TS 33.203) puts it on the Gm interface: the UE's SIP
inside ESP, IP protocol 50 or UDP-encapsulated on port 4500 (RFC 3948).

``EspReader.open`` turns one ESP packet into its next header and inner bytes (transport mode: a TCP/UDP/
SCTP segment; tunnel mode: an IP packet). It uses the SA the user gave for the packet's SPI
(``esp_sa``), else recognises NULL encryption (RFC 2410, common on test networks) the way Wireshark's
heuristic does: ICV lengths 12, 16, 24, 32 are tried and one is taken only when its trailer checks out
(padding 1, 2, 3 … as RFC 4303 says, a next header mcxa follows, 4-byte alignment) and the inner header's
own length agrees. What it cannot open (encrypted, no key) is counted per SPI, so the report says that the
SIP is protected and which keys would open it, never a silent nothing.
"""

from __future__ import annotations

from analyzer.transport.esp_sa import EspAuthFailed, EspError, SecurityAssociation
from analyzer.transport.ip import ip_text

ESP = 50
NAT_T_PORT = 4500
_NO_NEXT_HEADER = 59  # a dummy packet (traffic flow confidentiality, RFC 4303 §2.6)
_IPIP, _TCP, _UDP, _IPV6, _SCTP = 4, 6, 17, 41, 132
_NULL_ICVS = (12, 16, 24, 32)
_PAD = bytes(range(1, 256))
MAX_SPIS = 1024  # SPIs remembered (NULL ICV length, unread counts); more are counted together

__all__ = ["ESP", "NAT_T_PORT", "EspAuthFailed", "EspError", "EspReader", "nat_t_esp"]


def nat_t_esp(payload: bytes) -> bool:
    """Is this UDP payload on port 4500 an ESP packet? Not a NAT keep-alive (one 0xFF byte) nor IKE
    (the 4-byte non-ESP marker of zeros, RFC 3948 §2.2)."""
    return len(payload) > 1 and payload[:4] != b"\x00\x00\x00\x00"


def trailer(plain: bytes, spi: int, encrypted: bool) -> tuple[int, bytes]:
    """Strip padding, pad length and next header from a decrypted payload: (next header, inner bytes)."""
    if len(plain) < 2:
        raise EspError(f"ESP SPI 0x{spi:08x}: payload of {len(plain)} bytes has no room for its trailer")
    pad, next_header = plain[-2], plain[-1]
    hint = " (wrong encryption key?)" if encrypted else ""
    if pad > len(plain) - 2:
        raise EspError(f"ESP SPI 0x{spi:08x}: pad length {pad} is longer than the {len(plain) - 2}-byte "
                       f"payload{hint}")
    if plain[-2 - pad:-2] != _PAD[:pad]:
        raise EspError(f"ESP SPI 0x{spi:08x}: padding is not 1, 2, 3 … (RFC 4303){hint}")
    return next_header, plain[:-2 - pad]


def _plausible(next_header: int, inner: bytes) -> bool:
    """Does the inner header's own length agree with what is left? (The NULL heuristic's last check.)"""
    n = len(inner)
    if next_header == _UDP:
        return n >= 8 and (inner[4] << 8 | inner[5]) == n
    if next_header == _TCP:
        return n >= 20 and inner[12] >> 4 >= 5 and (inner[12] >> 4) * 4 <= n
    if next_header == _IPIP:
        return n >= 20 and inner[0] >> 4 == 4 and (inner[2] << 8 | inner[3]) == n
    if next_header == _IPV6:
        return n >= 40 and inner[0] >> 4 == 6 and (inner[4] << 8 | inner[5]) + 40 == n
    if next_header == _SCTP:
        return n >= 12 and n % 4 == 0
    return next_header == _NO_NEXT_HEADER and n == 0


def null_payload(packet: bytes, first: int | None = None) -> tuple[int, int, bytes] | None:
    """NULL encryption recognised: (ICV length, next header, inner bytes), or None. ``first``: the ICV
    length this SPI had before, tried first."""
    size = len(packet)
    for icv in (first, *_NULL_ICVS) if first else _NULL_ICVS:
        end = size - icv
        if end < 10 or (end - 8) % 4:
            continue
        pad, next_header = packet[end - 2], packet[end - 1]
        start = end - 2 - pad
        if start < 8 or packet[start:end - 2] != _PAD[:pad]:
            continue
        inner = packet[8:start]
        if _plausible(next_header, inner):
            return icv, next_header, inner
    return None


class EspReader:
    """Opens ESP packets with the SAs given, or as NULL-encrypted; counts the ones it cannot open.

    ``unread`` counts those packets; ``summary()`` says which SPIs and addresses they were (tables capped
    at ``MAX_SPIS``)."""

    def __init__(self, sas: tuple[SecurityAssociation, ...] = ()):
        self._sas: dict[int, list[SecurityAssociation]] = {}
        for sa in sas:
            self._sas.setdefault(sa.spi, []).append(sa)
        self.keys_given = bool(sas)
        self._null_icv: dict[int, int] = {}  # SPI → ICV length the NULL heuristic found
        self._unread: dict[int, list] = {}  # SPI → [packets, src, dst] (addresses of its first packet)
        self.unread = 0

    def open(self, src: bytes, dst: bytes, packet: bytes) -> tuple[int, bytes] | None:
        """(next header, inner bytes), or None when the packet is encrypted with a key not given.
        Raises ``EspError`` for a malformed packet or an ICV that does not match."""
        if len(packet) < 8:
            raise EspError(f"ESP header cut short ({len(packet)} of 8 bytes)")
        spi = int.from_bytes(packet[:4], "big")
        if spi == 0:
            raise EspError("ESP SPI 0 is reserved (RFC 4303 §2.1)")
        for sa in self._sas.get(spi, ()):
            if sa.matches(src, dst):
                return trailer(sa.open(packet), spi, sa.encryption != "null")
        known = self._null_icv.get(spi)
        found = null_payload(packet, known)
        if found is None:
            self.count_unread(spi, src, dst)
            return None
        if known is None and len(self._null_icv) < MAX_SPIS:
            self._null_icv[spi] = found[0]
        return found[1], found[2]

    def count_unread(self, spi: int, src: bytes, dst: bytes) -> None:
        """One more ESP packet not opened (also called by the tshark engine for those Wireshark did not)."""
        self.unread += 1
        entry = self._unread.get(spi)
        if entry is not None:
            entry[0] += 1
        elif len(self._unread) < MAX_SPIS:
            self._unread[spi] = [1, src, dst]

    def summary(self) -> dict | None:
        """The ESP packets not opened, for the report: ``packets``, ``spis`` (hex SPI → packets, at most
        ``MAX_SPIS``), ``peers`` (address pairs, as the SPIs' first packets went), ``keys_given``;
        None when there were none."""
        if not self.unread:
            return None
        spis = sorted(self._unread.items(), key=lambda item: -item[1][0])
        peers: dict[tuple[str, str], None] = {}
        for _, (_, src, dst) in spis:
            pair = tuple(sorted((ip_text(src), ip_text(dst))))
            peers[pair] = None
        return {"packets": self.unread, "spis": {f"0x{spi:08x}": n for spi, (n, _, _) in spis},
                "peers": [list(p) for p in peers], "keys_given": self.keys_given}
