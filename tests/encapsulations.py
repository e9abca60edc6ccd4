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


# -- IPsec ESP (RFC 4303) ------------------------------------------------------------------------------------

ESP_PROTO, NAT_T_PORT = 50, 4500
HMAC_SHA1_KEY = bytes(range(0x40, 0x54))  # 20 bytes
AES128_KEY = bytes(range(0x10, 0x20))
GCM_KEY = bytes(range(0x20, 0x30)) + b"\xca\xfe\xba\xbe"  # AES-128 key + 4-byte salt (RFC 4106)


def esp_trailer(inner: bytes, next_header: int, block: int = 4) -> bytes:
    """Inner bytes, padding 1, 2, 3 … up to a multiple of ``block`` (with the 2 trailer bytes), pad length,
    next header (RFC 4303 §2.4)."""
    pad = -(len(inner) + 2) % block
    return inner + bytes(range(1, pad + 1)) + bytes((pad, next_header))


def esp_null(inner: bytes, next_header: int = 17, spi: int = 0x1000A, seq: int = 1, icv_len: int = 12,
             integrity_key: bytes | None = None) -> bytes:
    """NULL-encrypted ESP (RFC 2410): header, the inner segment in clear, trailer, ICV (HMAC-SHA1-96 when
    a key is given, else ``icv_len`` bytes of 0xAB)."""
    import hashlib
    import hmac

    signed = struct.pack(">II", spi, seq) + esp_trailer(inner, next_header)
    if integrity_key is not None:
        return signed + hmac.digest(integrity_key, signed, hashlib.sha1)[:12]
    return signed + b"\xab" * icv_len


def esp_aes_cbc(inner: bytes, next_header: int = 17, spi: int = 0x2000B, seq: int = 1,
                key: bytes = AES128_KEY, integrity_key: bytes = HMAC_SHA1_KEY,
                iv: bytes = bytes(range(0xA0, 0xB0))) -> bytes:
    """AES-CBC (RFC 3602) + HMAC-SHA1-96 (RFC 2404) ESP."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = encryptor.update(esp_trailer(inner, next_header, 16)) + encryptor.finalize()
    signed = struct.pack(">II", spi, seq) + iv + body
    return signed + hmac.digest(integrity_key, signed, hashlib.sha1)[:12]


def esp_aes_gcm(inner: bytes, next_header: int = 17, spi: int = 0x3000C, seq: int = 1, key: bytes = GCM_KEY,
                iv: bytes = b"\x00\x00\x00\x00\x00\x00\x00\x07") -> bytes:
    """AES-GCM with a 16-byte ICV (RFC 4106): nonce = salt + IV, SPI and sequence number authenticated."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = struct.pack(">II", spi, seq)
    return header + iv + AESGCM(key[:-4]).encrypt(key[-4:] + iv, esp_trailer(inner, next_header), header)
