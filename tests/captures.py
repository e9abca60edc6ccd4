"""More capture builders for whole-pipeline tests: raw pcap records, tunnels, link layers, TCP flows.

``tests/packets.py`` builds frames and writes ordinary pcaps; this adds what those cannot express: records
whose captured length is shorter than the original (snap length), files cut inside a record, and the
encapsulations (GTP-U, GRE, IP-in-IP, Linux SLL) a probe's capture wraps signalling in.
"""

from __future__ import annotations

import itertools
import struct

from tests.packets import MAC_A, ether, ip, tcp, udp

PCAP_MAGIC = b"\xd4\xc3\xb2\xa1"  # little-endian, microseconds
START = 1_700_000_000.0
SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


def pcap_bytes(records, linktype: int = 1, snaplen: int = 262144, start: float = START,
               step: float = 0.01) -> bytes:
    """A pcap file as bytes. ``records``: frame bytes, or ``(captured bytes, original length)``."""
    out = [PCAP_MAGIC + struct.pack("<HHiIII", 2, 4, 0, 0, snaplen, linktype)]
    for i, record in enumerate(records):
        data, orig_len = record if isinstance(record, tuple) else (record, len(record))
        micros = round((start + i * step) * 1_000_000)
        out.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(data), orig_len) + data)
    return b"".join(out)


def write_records(path, records, linktype: int = 1, snaplen: int = 262144) -> None:
    path.write_bytes(pcap_bytes(records, linktype, snaplen))


def time_of(frame: int, step: float = 0.01) -> float:
    """Capture time ``pcap_bytes``/``write_pcap`` give frame number ``frame`` (1-based)."""
    return START + (frame - 1) * step


# -- encapsulations ---------------------------------------------------------------------------------------

def gtpu(inner_ip: bytes, teid: int = 1) -> bytes:
    """A GTP-U G-PDU (TS 29.281, no optional fields) carrying one IP packet."""
    return b"\x30\xff" + len(inner_ip).to_bytes(2, "big") + teid.to_bytes(4, "big") + inner_ip


def gre(inner_ip: bytes) -> bytes:
    """Plain RFC 2784 GRE, protocol IPv4 or IPv6 by the inner version."""
    proto = b"\x86\xdd" if inner_ip[0] >> 4 == 6 else b"\x08\x00"
    return b"\x00\x00" + proto + inner_ip


def linux_sll(l3: bytes, etype: int | None = None) -> bytes:
    """Linux cooked capture v1 header (LINKTYPE 113): packet type, ARPHRD, address, protocol."""
    if etype is None:
        etype = 0x86DD if l3[0] >> 4 == 6 else 0x0800
    return struct.pack(">HHH", 0, 1, 6) + MAC_A + b"\x00\x00" + etype.to_bytes(2, "big") + l3


# -- a TCP connection as frames ------------------------------------------------------------------------------

class Flow:
    """Frames of one TCP connection, keeping each side's sequence number (client ``a``, server ``b``).

    A frame takes its sequence number when it is built, so build frames in stream order (handshake
    first), then list them in whatever capture order the test needs.
    """

    def __init__(self, a: tuple[str, int], b: tuple[str, int], isn: tuple[int, int] = (1000, 5000)):
        self.ends = {"a": a, "b": b}
        self.seq = {"a": isn[0], "b": isn[1]}

    def frame(self, side: str, payload: bytes = b"", flags: int = PSH | ACK, seq: int | None = None,
              vlans: tuple[int, ...] = ()) -> bytes:
        (src, sport), (dst, dport) = self.ends[side], self.ends["b" if side == "a" else "a"]
        if seq is None:
            seq = self.seq[side]
            self.seq[side] += len(payload) + bool(flags & (SYN | FIN))
        return ether(ip(src, dst, 6, tcp(sport, dport, seq, payload, flags)), vlans=vlans)

    def handshake(self) -> list[bytes]:
        return [self.frame("a", flags=SYN), self.frame("b", flags=SYN | ACK), self.frame("a", flags=ACK)]

    def pieces(self, side: str, data: bytes, cuts: list[int]) -> list[bytes]:
        """``data`` sent by ``side`` as segments split at ``cuts``, in stream order."""
        bounds = [0, *cuts, len(data)]
        return [self.frame(side, data[lo:hi]) for lo, hi in itertools.pairwise(bounds)]


def udp_ip(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An IP packet carrying one UDP datagram (for tunnels and other link layers)."""
    return ip(src, dst, 17, udp(sport, dport, payload))
