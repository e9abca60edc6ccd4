"""Harness: IPsec ESP (``EspReader``: the NULL heuristic, the SAs' ICV checks and decryption, trailers) and
what the demux does with what it opens. Input: records (``harness.records``), each an ESP packet; the tag
picks the direction (bit 0), IP protocol 50 or UDP port 4500 (bit 1), and feeds every fourth packet to the
reader alone (bits 2-3 == 3). The reader knows one SA of each kind (see ``SA_FILE``)."""

from __future__ import annotations

import contextlib

from fuzz import harness

#: SPI 0x10 NULL + HMAC-SHA1-96, 0x20 AES-CBC + HMAC-SHA1-96, 0x30 AES-GCM-16, 0x40 AES-256-CBC + MD5.
SA_FILE = """\
- {spi: 0x10, integrity: hmac-sha1-96, integrity_key: "4041424344454647484940414243444546474849"}
- {spi: 0x20, src: 10.0.0.1, encryption: aes-cbc, encryption_key: "101112131415161718191a1b1c1d1e1f",
   integrity: hmac-sha1-96, integrity_key: "4041424344454647484940414243444546474849"}
- {spi: 0x30, encryption: aes-gcm-16, encryption_key: "202122232425262728292a2b2c2d2e2fcafebabe"}
- {spi: 0x40, encryption: aes-cbc,
   encryption_key: "1111111111111111111111111111111111111111111111111111111111111111",
   integrity: hmac-md5-96, integrity_key: "22222222222222222222222222222222"}
"""
UE, SERVER = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))


def seal(spi: int, inner: bytes, next_header: int, seq: int = 1) -> bytes:
    """``inner`` as an ESP packet of ``SA_FILE``'s SA ``spi`` (0x10, 0x20 or 0x30), or NULL-encrypted
    with a 12-byte ICV of zeros for any other SPI (seeds)."""
    import hashlib
    import hmac

    header = spi.to_bytes(4, "big") + seq.to_bytes(4, "big")
    block = 16 if spi == 0x20 else 4
    pad = -(len(inner) + 2) % block
    plain = inner + bytes(range(1, pad + 1)) + bytes((pad, next_header))
    sha1_key = bytes.fromhex("4041424344454647484940414243444546474849")
    if spi == 0x30:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = bytes.fromhex("202122232425262728292a2b2c2d2e2fcafebabe")
        return header + b"\x00" * 7 + b"\x01" + AESGCM(key[:16]).encrypt(key[16:] + b"\x00" * 7 + b"\x01",
                                                                         plain, header)
    if spi == 0x20:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        iv = bytes(16)
        aes = algorithms.AES(bytes.fromhex("101112131415161718191a1b1c1d1e1f"))
        enc = Cipher(aes, modes.CBC(iv)).encryptor()
        header += iv + enc.update(plain) + enc.finalize()
        return header + hmac.digest(sha1_key, header, hashlib.sha1)[:12]
    if spi == 0x10:
        return header + plain + hmac.digest(sha1_key, header + plain, hashlib.sha1)[:12]
    return header + plain + bytes(12)


def ip_packet(src: bytes, dst: bytes, esp: bytes, nat_t: bool) -> bytes:
    """An IPv4 packet (no checksum: nothing checks it) carrying ``esp``, in UDP 4500 if ``nat_t``."""
    proto, payload = 50, esp
    if nat_t:
        proto, payload = 17, b"\x11\x94\x11\x94" + (8 + len(esp)).to_bytes(2, "big") + b"\x00\x00" + esp
    total = 20 + len(payload)
    return (b"\x45\x00" + (total & 0xFFFF).to_bytes(2, "big") + b"\x00\x01\x00\x00\x40" + bytes((proto,))
            + b"\x00\x00" + src + dst + payload)


def load():
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.transport.demux import Demux
    from analyzer.transport.esp import EspReader
    from analyzer.transport.esp_sa import EspError, parse_esp_sas

    keys = parse_esp_sas(SA_FILE)

    def target(data: bytes) -> None:
        demux = Demux(Diagnostics(), esp_sas=keys)
        reader = EspReader(keys)
        packets = []
        for number, (tag, esp) in enumerate(harness.records(data, 64), 1):
            src, dst = (UE, SERVER) if tag & 1 else (SERVER, UE)
            if tag & 0x0C == 0x0C:
                with contextlib.suppress(EspError):
                    reader.open(src, dst, esp)
            else:
                packets.append((number, float(number), 228, ip_packet(src, dst, esp, bool(tag & 2)), 0))
        for _ in demux.run(packets):
            pass
        reader.summary()
        demux.esp.summary()

    return target


if __name__ == "__main__":
    harness.main(load)
