#!/usr/bin/env python3
"""Write the hostile captures of issue 14's transport and capture classes, small or at full size.

    python tests/hostile/captures/make_captures.py            # the small files committed beside this
    python tests/hostile/captures/make_captures.py --full DIR # the issue's sizes (bench/bench_hostile.py)

Each class is one function ``(path, size)``; ``SMALL`` and ``FULL`` give the sizes. Standard library
only, deterministic: the same size gives the same bytes (``tests/test_hostile_captures.py`` checks that
the committed files are what this writes).
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = 1_700_000_000
MAC = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
SYN, ACK, PSH = 0x02, 0x10, 0x08


# -- packing -------------------------------------------------------------------------------------------------

def ipv4(src: int, dst: int, proto: int, payload: bytes, ident: int = 1, frag: int = 0,
         total: int | None = None) -> bytes:
    """An IPv4 packet (no checksum: mcxa does not check it); ``total=0`` says 'use the captured length'."""
    length = 20 + len(payload) if total is None else total
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, length & 0xFFFF, ident, frag, 64, proto, 0,
                       src.to_bytes(4, "big"), dst.to_bytes(4, "big")) + payload


def eth(l3: bytes) -> bytes:
    return MAC + b"\x08\x00" + l3


def tcp(sport: int, dport: int, seq: int, payload: bytes = b"", flags: int = PSH | ACK) -> bytes:
    return struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def addr(text: str) -> int:
    a, b, c, d = map(int, text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def pcap(path: Path, frames, step_us: int = 10) -> None:
    """Microsecond pcap, Ethernet; ``frames`` may be a generator (the big classes are streamed)."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, frame in enumerate(frames):
            t = START * 1_000_000 + i * step_us
            fh.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)) + frame)


def pcapng_block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


SIP = (b"MESSAGE sip:bob@mcx.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-%d\r\n"
       b"From: <sip:alice@mcx.example>;tag=a\r\nTo: <sip:bob@mcx.example>\r\nCall-ID: hostile-%d\r\n"
       b"CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n")


# -- the classes ---------------------------------------------------------------------------------------------

def land(path: Path, size: int) -> None:
    """TCP segments whose source and destination ip:port are the same (LAND attack), carrying SIP; then a
    normal SIP message, which must still be listed."""
    a = addr("10.0.0.1")
    frames = []
    for i in range(size):
        body = SIP % (i, i)
        frames.append(eth(ipv4(a, a, 6, tcp(5060, 5060, 1000, flags=SYN))))
        frames.append(eth(ipv4(a, a, 6, tcp(5060, 5060, 1001, body))))
    frames.append(eth(ipv4(a, addr("10.0.0.2"), 17, udp(5060, 5060, SIP % (size, size)))))
    pcap(path, frames)


def timestamps(path: Path, size: int) -> None:
    """pcapng interfaces whose if_tsresol/if_tsoffset put packet times outside years 1..9999, in both
    directions, then a sane interface: the SIP messages on every interface must still be listed."""
    shb = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    interfaces = [  # (if_tsresol, if_tsoffset)
        (b"\x00", 1 << 62),  # whole seconds, offset 2**62 s: year ~1.5e11
        (b"\x80", -(1 << 62)),  # 2**0 units, offset -2**62 s
        (b"\x06", (1 << 63) - 1),  # microseconds, the largest offset
        (b"\x06", 0),  # sane
    ]
    blocks = [shb]
    for resol, offset in interfaces:
        opts = option(9, resol) + option(14, struct.pack("<q", offset)) + option(0, b"")
        blocks.append(pcapng_block(1, struct.pack("<HHI", 1, 0, 262144) + opts))
    n = 0
    for i in range(size):
        for ifid in range(len(interfaces)):
            if ifid == 0:
                ts = (1 << 64) - 1 - i  # the largest timestamps as well
            elif ifid == 1:
                ts = i
            else:
                ts = (START + i) * 1_000_000
            frame = eth(ipv4(addr("10.0.0.1"), addr("10.0.0.2"), 17, udp(5060, 5060, SIP % (n, n))))
            n += 1
            body = struct.pack("<IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame
            blocks.append(pcapng_block(6, body))
    path.write_bytes(b"".join(blocks))


def sctp_chunks(path: Path, size: int) -> None:
    """SCTP packets of ``size`` bytes made of tiny chunks: 3-byte chunks (their length is below the chunk
    header's own 4 bytes; a DATA one is padded to 4), then empty 4-byte chunks, then 17-byte DATA
    fragments of one user message that never ends; the IP total length is 0 (as with segmentation
    offload), so the packets may exceed 64 KB. A SIP message over SCTP follows, which must be listed."""
    src, dst = addr("10.0.0.1"), addr("10.0.0.2")
    header = struct.pack(">HHII", 5060, 5060, 1, 0)

    def packet(chunks: bytes) -> bytes:
        return eth(ipv4(src, dst, 132, header + chunks, total=0))

    # type 3, flags 0, length 3: the next chunk starts on this one's last byte, 3 again
    three = b"\x03\x00\x00" * (size // 3)
    data3 = b"\x00\x03\x00\x03" * (size // 4)  # DATA, length 3 (padded to 4)
    four = b"\xc0\x00\x00\x04" * (size // 4)
    middle = b"".join(struct.pack(">BBHIHHI", 0, 0, 17, tsn, 0, 0, 3) + b"x\0\0\0"
                      for tsn in range(size // 20))
    begin = struct.pack(">BBHIHHI", 0, 2, 17, 0, 0, 0, 3) + b"x\0\0\0"
    sip = SIP % (0, 0)
    whole = struct.pack(">BBHIHHI", 0, 3, 16 + len(sip), 9, 1, 0, 3) + sip + b"\0" * (-len(sip) % 4)
    pcap(path, [packet(three), packet(data3), packet(four), packet(begin + middle), packet(whole)])


def tcp_streams(path: Path, size: int) -> None:
    """``size`` half-open TCP streams (no SYN, no answer), each one segment of a SIP request announcing a
    15 MB body (under the 16 MB body cap, so the framer waits for it) that never comes."""
    head = (b"MESSAGE sip:bob@mcx.example SIP/2.0\r\nVia: SIP/2.0/TCP 10.1.0.1;branch=z9hG4bK-%07d\r\n"
            b"Call-ID: s%07d\r\nCSeq: 1 MESSAGE\r\nContent-Length: 15000000\r\n\r\nhello")
    dst = addr("10.0.0.2")

    def frames():
        for i in range(size):
            src = addr("10.1.0.0") + (i >> 14)
            yield eth(ipv4(src, dst, 6, tcp(1024 + (i & 0x3FFF), 5060, 7, head % (i, i))))
    pcap(path, frames(), step_us=1)


def ip_fragments(path: Path, size: int) -> None:
    """``size`` eight-byte IPv4 fragments, in datagrams of up to 8 191 (the most whose end stays within
    the 65 535 bytes of a datagram), each sent last fragment first and missing its first fragment, so none
    ever completes."""
    src, dst = addr("10.0.0.1"), addr("10.0.0.2")
    pieces = min(size, 8191)

    def frames():
        for ident in range(size // pieces):
            yield eth(ipv4(src, dst, 17, b"z" * 8, ident, pieces - 1))  # the last one: MF clear
            for k in range(pieces - 2, 0, -1):  # fragment 0 never comes
                yield eth(ipv4(src, dst, 17, b"z" * 8, ident, 0x2000 | k))
    pcap(path, frames())


def tcp_segments(path: Path, size: int) -> None:
    """One TCP connection carrying a SIP message in ``size`` one-byte segments; every segment is sent
    again up to 1 000 segments later with a different byte (a conflicting retransmission), and every
    64th pair is swapped (out of order)."""
    src, dst = addr("10.0.0.1"), addr("10.0.0.2")
    body = b"a" * size
    data = (b"MESSAGE sip:bob@mcx.example SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:40000;branch=z9hG4bK-t\r\n"
            b"From: <sip:alice@mcx.example>;tag=a\r\nTo: <sip:bob@mcx.example>\r\nCall-ID: tiny\r\n"
            b"CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    isn, lag = 1000, min(1000, size // 2)
    order = list(range(len(data)))
    for i in range(0, len(order) - 1, 64):
        order[i], order[i + 1] = order[i + 1], order[i]

    def frames():
        yield eth(ipv4(src, dst, 6, tcp(40000, 5060, isn, flags=SYN)))
        for n, i in enumerate(order):
            yield eth(ipv4(src, dst, 6, tcp(40000, 5060, isn + 1 + i, data[i:i + 1])))
            if n >= lag:
                j = order[n - lag]
                yield eth(ipv4(src, dst, 6, tcp(40000, 5060, isn + 1 + j, b"#")))
    pcap(path, frames())


#: name → (writer, small size, full size: the issue's table)
CLASSES = {
    "land": (land, 3, 3),
    "timestamps": (timestamps, 2, 2),
    "sctp-chunks": (sctp_chunks, 8_000, 240_000),
    "tcp-streams": (tcp_streams, 300, 200_000),
    "ip-fragments": (ip_fragments, 300, 8 * 8191),
    "tcp-segments": (tcp_segments, 500, 65_536),
}


def write(directory: Path, full: bool = False, only: list[str] | None = None) -> list[Path]:
    out = []
    for name, (writer, small, big) in CLASSES.items():
        if only and name not in only:
            continue
        path = directory / f"{name}.pcap{'ng' if name == 'timestamps' else ''}"
        writer(path, big if full else small)
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", metavar="DIR", help="write the full-size captures into DIR")
    parser.add_argument("names", nargs="*", help=f"only these classes ({', '.join(CLASSES)})")
    args = parser.parse_args(argv)
    directory = Path(args.full) if args.full else HERE
    directory.mkdir(parents=True, exist_ok=True)
    for path in write(directory, bool(args.full), args.names):
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
