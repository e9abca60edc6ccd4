"""Messages to packets: Ethernet, IPv4/IPv6 (with fragmentation), UDP and TCP connections.

The procedures hand over *sends* (a UDP datagram, or bytes written to one side of a logical TCP link, or
the close of a link), each with a time. ``Wire`` plays them in time order the way a host stack would:

- a UDP datagram larger than the 1500-byte MTU leaves as IP fragments (IPv4: 1480 payload bytes per
  fragment, no DF; IPv6: a fragment header and 1448 bytes per fragment), last fragment last;
- a logical TCP link becomes a real connection at its first send: SYN / SYN-ACK / ACK in the 3 ms before
  the data (so a TCP step at ``at: 0`` starts the capture 3 ms before ``start``),
  from an ephemeral port of whichever side sends first; data goes in MSS-sized segments (or ``split``
  pieces), the receiver acknowledges by piggy-backing on its next segment or by a pure ACK after the
  delayed-ACK time; a close is FIN / FIN-ACK / ACK, and a later send on the link opens a new connection;
- IPv4 header, UDP and TCP checksums are computed;
- UDP between the endpoints of an IPsec SA (``esp``) is sealed in ESP before it is fragmented.

``Wire.finish`` sorts the packets, cuts the capture at ``truncate_at``, and numbers frames as Wireshark
will, so each declared message gets the frame that completes it (last fragment, last segment).
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
import struct
import sys
from array import array
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from analyzer.synth.esp import ESP, seal
from analyzer.transport.records import endpoint

MTU = 1500
ETH_IP4, ETH_IP6 = 0x0800, 0x86DD
UDP, TCP, IP6_FRAGMENT = 17, 6, 44
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
ACK_DELAY = 0.040  # Linux delayed ACK
SEGMENT_GAP = 0.000020  # between back-to-back segments of one write
HANDSHAKE_RTT = 0.0030
EPHEMERAL = (32768, 60999)  # Linux ip_local_port_range
GATEWAY_MAC = bytes.fromhex("00005e0001fe")
_LITTLE = sys.byteorder == "little"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An address and port; ``str()`` is the contract form (IPv6 in brackets)."""

    ip: str
    port: int

    def __str__(self) -> str:
        return endpoint(self.ip, self.port)


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What a send carries, when it is one SIP or HTTP message (None for TLS records, RTP, ...)."""

    proto: str  # sip | http
    method: str | None
    status: int | None
    call_id: str | None


@dataclass(frozen=True, slots=True)
class Declared:
    """One SIP/HTTP message the synthesiser put on the wire, as a decoder will list it."""

    frame: int  # Wireshark frame number of the frame that completes the message
    time: float  # capture time of that frame (epoch seconds)
    proto: str  # sip | http
    method: str | None
    status: int | None
    call_id: str | None
    src: str  # "ip:port", IPv6 in brackets
    dst: str
    transport: str  # udp | tcp


@dataclass(frozen=True, slots=True)
class Hello:
    """A TLS ClientHello the synthesiser sent (frame that carries it, and its SNI)."""

    frame: int
    src: str
    dst: str
    sni: str


@dataclass(frozen=True, slots=True)
class Link:
    """A logical TCP link between side ``a`` (the UE: its address and SIP listening port, or port 0 for
    HTTP clients) and side ``b`` (a server). Connections come and go under it."""

    key: Hashable
    a: Endpoint
    b: Endpoint


@dataclass(frozen=True, slots=True)
class Datagram:
    time: float
    src: Endpoint
    dst: Endpoint
    data: bytes
    info: MessageInfo | None = None


@dataclass(frozen=True, slots=True)
class StreamSend:
    time: float
    link: Link
    from_a: bool
    data: bytes
    info: MessageInfo | None = None
    split: int = 1  # at least this many TCP segments
    sni: str | None = None  # set on the send that carries a TLS ClientHello


@dataclass(frozen=True, slots=True)
class StreamClose:
    time: float
    link: Link
    from_a: bool


Send = Datagram | StreamSend | StreamClose


# -- checksums and headers ------------------------------------------------------------------------------

def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum of ``data``."""
    if len(data) & 1:
        data += b"\0"
    words = array("H", data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    if _LITTLE:
        total = ((total & 0xFF) << 8) | (total >> 8)
    return ~total & 0xFFFF


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def _l4_with_checksum(header: bytes, payload: bytes, src: bytes, dst: bytes, proto: int, at: int) -> bytes:
    segment = header + payload
    value = checksum(_pseudo(src, dst, proto, len(segment)) + segment)
    if proto == UDP and value == 0:
        value = 0xFFFF
    return segment[:at] + struct.pack("!H", value) + segment[at + 2:]


def _mac(ip: str) -> bytes:
    return b"\x02" + hashlib.sha256(ip.encode()).digest()[:5]


@dataclass(slots=True)
class _Packet:
    time: float
    order: int
    frame: bytes


@dataclass(slots=True)
class _Side:
    ep: Endpoint
    seq: int
    acked: int  # last ack number we sent (= peer's next expected byte)
    ack_due: float | None = None  # a pure ACK is owed at this time


@dataclass(slots=True)
class _Conn:
    client: _Side
    server: _Side
    link_a_is_client: bool
    closed: bool = False


@dataclass(slots=True)
class _Pending:
    """A message waiting for its frame number: index of the packet that completes it."""

    order: int
    info: MessageInfo
    src: str
    dst: str
    transport: str


@dataclass(slots=True)
class Wire:
    """Plays sends into packets. ``local`` addresses (the UEs) get their own MAC; others sit behind the
    gateway MAC, as on a UE-side capture."""

    seed: int
    local: frozenset[str] = frozenset()
    rng: random.Random = field(init=False)
    packets: list[_Packet] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    hellos: list[tuple[int, str, str, str]] = field(default_factory=list)
    _conns: dict[Hashable, _Conn] = field(default_factory=dict)
    _ip_ids: dict[str, int] = field(default_factory=dict)
    _raw: dict[str, bytes] = field(default_factory=dict)
    _ports: set[tuple[str, int]] = field(default_factory=set)
    #: (source, destination ip:port) → SPI: UDP between them travels in ESP (``esp``), with this key
    esp: dict[tuple[str, str], int] = field(default_factory=dict)
    esp_key: bytes = b""
    _esp_seq: dict[int, int] = field(default_factory=dict)

    def __post_init__(self):
        self.rng = random.Random(f"wire/{self.seed}")

    # -- public ---------------------------------------------------------------------------------------
    def play(self, sends: Iterable[Send]) -> None:
        """Turn sends (any order) into packets; ties keep the order given."""
        indexed = sorted(enumerate(sends), key=lambda p: (p[1].time, p[0]))
        for _, send in indexed:
            if isinstance(send, Datagram):
                self._datagram(send)
            elif isinstance(send, StreamSend):
                self._stream(send)
            else:
                self._close(send)
        for conn in self._conns.values():
            for side, peer in ((conn.client, conn.server), (conn.server, conn.client)):
                self._flush_ack(side, peer, conn, float("inf"))

    def finish(self, start_us: int, truncate_at: float | None) -> tuple[list[tuple[float, bytes]],
                                                                       list[Declared], list[Hello]]:
        """Packets in capture order as (epoch time, frame bytes), and the declared messages/hellos."""
        ordered = sorted(self.packets, key=lambda p: (p.time, p.order))
        if truncate_at is not None:
            ordered = [p for p in ordered if p.time <= truncate_at]
        frame_of = {p.order: i + 1 for i, p in enumerate(ordered)}
        times = [(start_us + round(p.time * 1_000_000)) / 1_000_000 for p in ordered]
        declared = sorted(
            (Declared(frame_of[m.order], times[frame_of[m.order] - 1], m.info.proto, m.info.method,
                      m.info.status, m.info.call_id, m.src, m.dst, m.transport)
             for m in self.pending if m.order in frame_of),
            key=lambda d: d.frame)
        hellos = sorted((Hello(frame_of[o], s, d, n) for o, s, d, n in self.hellos if o in frame_of),
                        key=lambda h: h.frame)
        return [(t, p.frame) for t, p in zip(times, ordered, strict=True)], declared, hellos

    # -- IP ------------------------------------------------------------------------------------------
    def _addr(self, ip: str) -> bytes:
        raw = self._raw.get(ip)
        if raw is None:
            raw = self._raw[ip] = ipaddress.ip_address(ip).packed
        return raw

    def _emit(self, time: float, src: str, dst: str, l3: bytes) -> int:
        v6 = ":" in src
        smac = _mac(src) if src in self.local else GATEWAY_MAC
        dmac = _mac(dst) if dst in self.local else GATEWAY_MAC
        frame = dmac + smac + struct.pack("!H", ETH_IP6 if v6 else ETH_IP4) + l3
        order = len(self.packets)
        self.packets.append(_Packet(time, order, frame))
        return order

    def _ip_id(self, src: str) -> int:
        ident = self._ip_ids.get(src)
        if ident is None:
            ident = self.rng.randrange(1, 0xFFFF)
        self._ip_ids[src] = (ident + 1) & 0xFFFF
        return ident

    def _ip4(self, src: str, dst: str, proto: int, payload: bytes, ident: int, flags_offset: int) -> bytes:
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_offset, 64, proto, 0,
                             self._addr(src), self._addr(dst))
        return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload

    def _ip_packets(self, src: str, dst: str, proto: int, payload: bytes) -> list[bytes]:
        """One IP packet, or its fragments when it does not fit the MTU."""
        if ":" not in src:
            ident = self._ip_id(src)
            if 20 + len(payload) <= MTU:
                return [self._ip4(src, dst, proto, payload, ident, 0x4000)]  # DF
            size = (MTU - 20) & ~7
            return [self._ip4(src, dst, proto, payload[off:off + size], ident,
                              (off >> 3) | (0x2000 if off + size < len(payload) else 0))
                    for off in range(0, len(payload), size)]
        s, d = self._addr(src), self._addr(dst)
        if 40 + len(payload) <= MTU:
            return [struct.pack("!IHBB", 0x60000000, len(payload), proto, 64) + s + d + payload]
        ident = self.rng.getrandbits(32)
        size = (MTU - 48) & ~7
        out = []
        for off in range(0, len(payload), size):
            piece = payload[off:off + size]
            more = off + size < len(payload)
            frag = struct.pack("!BBHI", proto, 0, off | int(more), ident)
            out.append(struct.pack("!IHBB", 0x60000000, 8 + len(piece), IP6_FRAGMENT, 64) + s + d + frag
                       + piece)
        return out

    # -- UDP -----------------------------------------------------------------------------------------
    def _datagram(self, send: Datagram) -> None:
        src, dst = send.src, send.dst
        header = struct.pack("!HHHH", src.port, dst.port, 8 + len(send.data), 0)
        segment = _l4_with_checksum(header, send.data, self._addr(src.ip), self._addr(dst.ip), UDP, 6)
        proto = UDP
        spi = self.esp.get((str(src), str(dst))) if self.esp else None
        if spi is not None:
            self._esp_seq[spi] = seq = self._esp_seq.get(spi, 0) + 1
            segment, proto = seal(spi, seq, segment, self.esp_key), ESP
        order = -1
        for i, packet in enumerate(self._ip_packets(src.ip, dst.ip, proto, segment)):
            order = self._emit(send.time + i * SEGMENT_GAP, src.ip, dst.ip, packet)
        if send.info is not None:
            self.pending.append(_Pending(order, send.info, str(src), str(dst), "udp"))

    # -- TCP -----------------------------------------------------------------------------------------
    def _ephemeral(self, ip: str) -> int:
        while True:
            port = self.rng.randint(*EPHEMERAL)
            if (ip, port) not in self._ports:
                self._ports.add((ip, port))
                return port

    def _tcp(self, time: float, src: _Side, dst: _Side, flags: int, payload: bytes = b"",
             options: bytes = b"", window: int = 502) -> int:
        offset = (20 + len(options)) // 4
        header = struct.pack("!HHIIBBHHH", src.ep.port, dst.ep.port, src.seq & 0xFFFFFFFF,
                             (src.acked if flags & ACK else 0) & 0xFFFFFFFF, offset << 4, flags, window, 0,
                             0) + options
        segment = _l4_with_checksum(header, payload, self._addr(src.ep.ip), self._addr(dst.ep.ip), TCP, 16)
        (packet,) = self._ip_packets(src.ep.ip, dst.ep.ip, TCP, segment)
        src.seq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        if flags & ACK:
            src.ack_due = None
        return self._emit(time, src.ep.ip, dst.ep.ip, packet)

    def _flush_ack(self, side: _Side, peer: _Side, conn: _Conn, now: float) -> None:
        if side.ack_due is not None and side.ack_due <= now:
            self._tcp(side.ack_due, side, peer, ACK)

    def _open(self, link: Link, from_a: bool, time: float) -> _Conn:
        opener, listener = (link.a, link.b) if from_a else (link.b, link.a)
        client = _Side(Endpoint(opener.ip, self._ephemeral(opener.ip)), self.rng.getrandbits(32), 0)
        server = _Side(listener, self.rng.getrandbits(32), 0)
        conn = _Conn(client, server, from_a)
        mss = MTU - (60 if ":" in opener.ip else 40)
        syn_options = struct.pack("!BBH", 2, 4, mss) + b"\x01\x01\x04\x02" + b"\x01\x03\x03\x07"
        t0 = time - HANDSHAKE_RTT
        self._tcp(t0, client, server, SYN, options=syn_options, window=64240)
        server.acked = client.seq
        self._tcp(t0 + HANDSHAKE_RTT / 2, server, client, SYN | ACK, options=syn_options, window=65160)
        client.acked = server.seq
        self._tcp(t0 + HANDSHAKE_RTT * 0.8, client, server, ACK)
        self._conns[link.key] = conn
        return conn

    def _sides(self, conn: _Conn, from_a: bool) -> tuple[_Side, _Side]:
        if from_a == conn.link_a_is_client:
            return conn.client, conn.server
        return conn.server, conn.client

    def _stream(self, send: StreamSend) -> None:
        conn = self._conns.get(send.link.key)
        if conn is None or conn.closed:
            conn = self._open(send.link, send.from_a, send.time)
        src, dst = self._sides(conn, send.from_a)
        self._flush_ack(src, dst, conn, send.time)
        self._flush_ack(dst, src, conn, send.time)
        mss = MTU - (60 if ":" in src.ep.ip else 40)
        data = send.data
        count = max(send.split, -(-len(data) // mss), 1)
        count = min(count, len(data)) or 1
        bounds = [len(data) * i // count for i in range(count + 1)]
        order = -1
        for i in range(count):
            piece = data[bounds[i]:bounds[i + 1]]
            flags = ACK | (PSH if i == count - 1 else 0)
            order = self._tcp(send.time + i * SEGMENT_GAP, src, dst, flags, piece)
        if send.sni is not None:
            self.hellos.append((order, str(src.ep), str(dst.ep), send.sni))
        dst.acked = src.seq
        dst.ack_due = send.time + (count - 1) * SEGMENT_GAP + ACK_DELAY
        if send.info is not None:
            self.pending.append(_Pending(order, send.info, str(src.ep), str(dst.ep), "tcp"))

    def _close(self, send: StreamClose) -> None:
        conn = self._conns.get(send.link.key)
        if conn is None or conn.closed:
            return
        closer, peer = self._sides(conn, send.from_a)
        self._flush_ack(closer, peer, conn, send.time)
        self._flush_ack(peer, closer, conn, send.time)
        self._tcp(send.time, closer, peer, FIN | ACK)
        peer.acked = closer.seq
        self._tcp(send.time + HANDSHAKE_RTT / 2, peer, closer, FIN | ACK)
        closer.acked = peer.seq
        self._tcp(send.time + HANDSHAKE_RTT * 0.8, closer, peer, ACK)
        conn.closed = True
