"""Make sample_captures/derived/group-migration-esp-null.pcapng: the compliant group migration sample with
every SIP/UDP datagram between a UE and its SIP server put inside NULL-encrypted IPsec ESP (transport
mode, HMAC-SHA1-96 ICV), as sec-agree (RFC 3329, TS 33.203) protects the Gm interface on a test network.

Frames keep their number and time: an unfragmented datagram becomes one ESP packet; a fragmented one is
wrapped whole and cut at the same fragment offsets (the last fragment carries the ESP trailer and ICV), so
each SIP message completes in the frame it did before. Each direction of each UE/server pair has its own
SPI and sequence numbers, like the two SA pairs of sec-agree. Deterministic: same bytes on every run.

    python -m tests.make_esp_sample      # rewrites the sample and its SA file
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from pathlib import Path

from analyzer.base.diagnostics import Diagnostics
from analyzer.capture import open_capture
from analyzer.synth.pcapng import pcapng_bytes
from analyzer.synth.wire import checksum

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
SOURCE = SAMPLES / "group-migration-compliant.pcapng"
TARGET = SAMPLES / "derived" / "group-migration-esp-null.pcapng"
SA_FILE = TARGET.with_suffix(".sa.yaml")
INTEGRITY_KEY = b"mcxa-gm-esp-null-key"  # 20 bytes: HMAC-SHA1
SIP_PORT, UDP, ESP = 5060, 17, 50


def _ipv4_udp(frame: bytes):
    """(header offset, header length, src, dst, ident, flags/offset word, payload) of an Ethernet IPv4
    frame, or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4 or frame[23] != UDP:
        return None
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack(">H", frame[16:18])[0]
    return (14, ihl, frame[26:30], frame[30:34], struct.unpack(">H", frame[18:20])[0],
            struct.unpack(">H", frame[20:22])[0], frame[14 + ihl:14 + total])


def _datagrams(frames) -> dict[tuple, bytes]:
    """Every UDP datagram, whole, by (src, dst, ident): fragments put together."""
    pieces: dict[tuple, list[tuple[int, bytes]]] = {}
    for _, frame in frames:
        found = _ipv4_udp(frame)
        if found:
            _, _, src, dst, ident, word, payload = found
            pieces.setdefault((src, dst, ident), []).append(((word & 0x1FFF) * 8, payload))
    return {key: b"".join(p for _, p in sorted(parts)) for key, parts in pieces.items()}


def _esp(spi: int, seq: int, udp: bytes) -> bytes:
    pad = -(len(udp) + 2) % 4
    signed = struct.pack(">II", spi, seq) + udp + bytes(range(1, pad + 1)) + bytes((pad, UDP))
    return signed + hmac.digest(INTEGRITY_KEY, signed, hashlib.sha1)[:12]


def wrap(source: Path = SOURCE) -> tuple[bytes, dict[tuple[bytes, bytes], int]]:
    """The sample's bytes, and the SPI of each (src, dst) direction."""
    with open_capture(str(source), Diagnostics()) as reader:
        frames = [(time, data) for _, time, _, data, _ in reader]
    whole = _datagrams(frames)
    spis: dict[tuple[bytes, bytes], int] = {}
    seqs: dict[int, int] = {}
    sealed: dict[tuple, bytes] = {}
    out = []
    for time, frame in frames:
        found = _ipv4_udp(frame)
        datagram = whole.get(found[2:5]) if found else None
        if datagram is None or SIP_PORT not in struct.unpack(">HH", datagram[:4]):
            out.append((time, frame))
            continue
        ip, ihl, src, dst, ident, word, payload = found
        key = (src, dst, ident)
        if key not in sealed:
            spi = spis.setdefault((src, dst), 0x0000A000 + len(spis) + 1)
            seqs[spi] = seqs.get(spi, 0) + 1
            sealed[key] = _esp(spi, seqs[spi], datagram)
        esp, offset = sealed[key], (word & 0x1FFF) * 8
        piece = esp[offset:offset + len(payload)] if word & 0x2000 else esp[offset:]
        header = bytearray(frame[ip:ip + ihl])
        header[2:4] = struct.pack(">H", ihl + len(piece))
        header[9], header[10:12] = ESP, b"\x00\x00"
        header[10:12] = struct.pack(">H", checksum(bytes(header)))
        out.append((time, frame[:ip] + bytes(header) + piece))
    return pcapng_bytes(out, "mcxa tests/make_esp_sample.py"), spis


def sa_text(spis: dict[tuple[bytes, bytes], int]) -> str:
    """The SA file that checks the sample's ICVs (``--esp-sa``)."""
    import ipaddress

    lines = ["# The SAs of group-migration-esp-null.pcapng (made by tests/make_esp_sample.py): NULL",
             "# encryption, HMAC-SHA1-96. mcxa reads the SIP without it; with it, every ICV is checked."]
    for (src, dst), spi in spis.items():
        lines += [f"- spi: 0x{spi:08x}", f"  src: {ipaddress.ip_address(src)}",
                  f"  dst: {ipaddress.ip_address(dst)}", "  encryption: null", "  integrity: hmac-sha1-96",
                  f'  integrity_key: "0x{INTEGRITY_KEY.hex()}"']
    return "\n".join(lines) + "\n"


def main() -> None:
    data, spis = wrap()
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_bytes(data)
    SA_FILE.write_text(sa_text(spis))
    print(f"made {TARGET.relative_to(SAMPLES.parent)} and {SA_FILE.name} ({len(spis)} SPIs)")


if __name__ == "__main__":
    main()
