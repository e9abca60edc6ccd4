"""IPsec ESP security associations the user gives (``--esp-sa FILE``), and opening a packet with one.

The file is a YAML list, one mapping per SA, in the terms of Wireshark's ESP SA table (``esp_sa``)::

    - spi: 0x0001a2b3                  # hex or decimal
      src: 10.0.0.1                    # optional: the SA applies to packets from/to these addresses only
      dst: 10.0.0.2
      encryption: aes-cbc              # null | aes-cbc (128/192/256 by key length) | aes-gcm-16 (RFC 4106)
      encryption_key: "0x00112233..."  # hex, quoted; aes-gcm-16: the key then its 4-byte salt
      integrity: hmac-sha1-96          # null | hmac-sha1-96 | hmac-md5-96 | hmac-sha256-128
      integrity_key: "0x..."

A packet's ICV is checked before anything is decrypted; one that does not match is refused (``EspError``).
Only 32-bit sequence numbers (no ESN) are supported. The ``cryptography`` library does AES.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

from analyzer.base.errors import InputError

#: integrity algorithm → (hash, ICV bytes, key bytes)
INTEGRITY = {"null": (None, 0, 0), "hmac-sha1-96": ("sha1", 12, 20), "hmac-md5-96": ("md5", 12, 16),
             "hmac-sha256-128": ("sha256", 16, 32)}
#: encryption algorithm → (IV bytes in the packet, key lengths accepted)
ENCRYPTION = {"null": (0, (0,)), "aes-cbc": (16, (16, 24, 32)), "aes-gcm-16": (8, (20, 28, 36))}
_GCM_ICV = 16
MAX_SAS = 4096  # a UE has a handful; a file with more is not an SA table
_FIELDS = {"spi": (int, str), "src": str, "dst": str, "encryption": str, "encryption_key": str,
           "integrity": str, "integrity_key": str}


class EspError(Exception):
    """An ESP packet that cannot be used: cut short, or a malformed trailer (a ``malformed-esp``)."""


class EspAuthFailed(EspError):
    """The packet's ICV (or AES-GCM tag) does not match the key given (an ``esp-auth-failed``)."""


@dataclass(frozen=True, slots=True)
class SecurityAssociation:
    """One SA: which packets it opens (SPI, optionally addresses as raw bytes) and how."""

    spi: int
    src: bytes | None
    dst: bytes | None
    encryption: str
    encryption_key: bytes
    integrity: str
    integrity_key: bytes
    _aead: object = field(default=None, compare=False, repr=False)  # AESGCM, built once

    @property
    def icv_length(self) -> int:
        return _GCM_ICV if self.encryption == "aes-gcm-16" else INTEGRITY[self.integrity][1]

    def matches(self, src: bytes, dst: bytes) -> bool:
        return (self.src is None or self.src == src) and (self.dst is None or self.dst == dst)

    def open(self, packet: bytes) -> bytes:
        """The plaintext of one ESP packet (payload, padding, pad length, next header), its ICV checked."""
        icv = self.icv_length
        iv = ENCRYPTION[self.encryption][0]
        if len(packet) < 8 + iv + icv + 2:
            raise EspError(f"ESP packet of {len(packet)} bytes is too short for SPI 0x{self.spi:08x}'s "
                           f"{self.encryption}/{self.integrity} (IV {iv}, ICV {icv} bytes)")
        if self.encryption == "aes-gcm-16":
            return self._open_gcm(packet)
        end = len(packet) - icv
        digest = INTEGRITY[self.integrity][0]
        if digest and not hmac.compare_digest(
                hmac.digest(self.integrity_key, packet[:end], digest)[:icv], packet[end:]):
            raise EspAuthFailed(f"ICV does not match {self.integrity} with the key given for SPI "
                           f"0x{self.spi:08x} (wrong key, or the packet is damaged); packet not used")
        if self.encryption == "null":
            return packet[8:end]
        body = packet[8 + iv:end]
        if not body or len(body) % 16:
            raise EspError(f"AES-CBC ciphertext of {len(body)} bytes is not a whole number of 16-byte blocks")
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        decryptor = Cipher(algorithms.AES(self.encryption_key), modes.CBC(packet[8:8 + iv])).decryptor()
        return decryptor.update(body) + decryptor.finalize()

    def _open_gcm(self, packet: bytes) -> bytes:
        """RFC 4106: nonce = salt (the key's last 4 bytes) + the packet's 8-byte IV; SPI and sequence
        number are the associated data; the 16-byte tag ends the packet."""
        from cryptography.exceptions import InvalidTag

        aead = self._aead
        if aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = AESGCM(self.encryption_key[:-4])
            object.__setattr__(self, "_aead", aead)
        try:
            return aead.decrypt(self.encryption_key[-4:] + packet[8:16], packet[16:], packet[:8])
        except InvalidTag:
            raise EspAuthFailed(f"AES-GCM tag does not match the key given for SPI 0x{self.spi:08x} (wrong "
                                "key, or the packet is damaged); packet not used") from None


def load_esp_sas(path: str) -> tuple[SecurityAssociation, ...]:
    """Read an SA file; any mistake is one ``InputError`` naming file, line and key."""
    from analyzer.base.yamlfile import load_yaml  # (PyYAML: only when there is a file to read)

    return _sas(*load_yaml(path))


def parse_esp_sas(text: str, source: str = "<string>") -> tuple[SecurityAssociation, ...]:
    """``load_esp_sas`` for text in hand."""
    from analyzer.base.yamlfile import parse_yaml

    return _sas(*parse_yaml(text, source))


def _sas(data, where) -> tuple[SecurityAssociation, ...]:
    if not isinstance(data, list) or not data:
        raise InputError("expected a list of security associations (spi, encryption, integrity, keys)",
                         where.where(()))
    if len(data) > MAX_SAS:
        raise InputError(f"more than {MAX_SAS} security associations", where.where(()))
    return tuple(_sa(entry, where, (i,)) for i, entry in enumerate(data))


def _sa(entry, where, path) -> SecurityAssociation:
    from analyzer.base.yamlfile import check_choice, check_mapping

    if isinstance(entry, dict):  # ``encryption: null`` is YAML's null: the algorithm of that name
        entry = entry | {k: "null" for k in ("encryption", "integrity") if k in entry and entry[k] is None}
    check_mapping(entry, where, path, _FIELDS, required=("spi",), what=f"security association {path[0] + 1}")
    spi = entry["spi"]
    if isinstance(spi, str):
        try:
            spi = int(spi, 16 if spi.lower().startswith("0x") else 10)
        except ValueError:
            raise where.error((*path, "spi"), f"{entry['spi']!r} is not a number (hex as 0x…)") from None
    if not 0 < spi < 1 << 32:
        raise where.error((*path, "spi"), f"{spi} is not a 32-bit SPI (1 … 0xffffffff)")
    encryption = check_choice(entry.get("encryption", "null"), where, (*path, "encryption"), ENCRYPTION,
                              "encryption algorithm")
    integrity = check_choice(entry.get("integrity", "null"), where, (*path, "integrity"), INTEGRITY,
                             "integrity algorithm")
    if encryption == "aes-gcm-16" and integrity != "null":
        raise where.error((*path, "integrity"), "aes-gcm-16 authenticates by itself: integrity must be null")
    enc_key = _key(entry, where, path, "encryption_key", ENCRYPTION[encryption][1])
    int_key = _key(entry, where, path, "integrity_key", (INTEGRITY[integrity][2],))
    return SecurityAssociation(spi, _address(entry, where, path, "src"), _address(entry, where, path, "dst"),
                               encryption, enc_key, integrity, int_key)


def _key(entry, where, path, name: str, lengths: tuple[int, ...]) -> bytes:
    text = entry.get(name, "")
    try:
        key = bytes.fromhex(text.removeprefix("0x").removeprefix("0X").replace(":", "").replace(" ", ""))
    except ValueError:
        raise where.error((*path, name), "not a hex string") from None
    if len(key) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise where.error((*path, name), f"{len(key)} bytes; this algorithm takes {want}"
                          + (" (the AES key and its 4-byte salt)" if 20 in lengths else ""))
    return key


def _address(entry, where, path, name: str) -> bytes | None:
    text = entry.get(name)
    if text is None or text in ("*", "any"):
        return None
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise where.error((*path, name), f"{text!r} is not an IP address") from None

