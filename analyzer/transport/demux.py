"""Packets in, application-message payloads out: the dpkt engine's transport stage.

Most packets of a drive-test capture are media. The hot loop therefore looks at a few fixed offsets of
plain Ethernet/IPv4/IPv6 packets and drops, without decoding, every UDP datagram whose payload cannot
start a SIP/HTTP message (RTP begins 0x80..0xBF; a start line begins with an upper-case letter) and every
TCP segment of a flow that is not followed. Anything unusual (fragments, tunnels, other link types,
extension headers, SCTP) takes the general path. Flows are selected, not packets: a TCP flow is followed
from its SYN, or from the first segment that starts a SIP/HTTP message or a TLS handshake, so the
continuation segments of split messages are never lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from analyzer.capture.link import LINK_DECODERS, LINKTYPE_NAMES, ethernet
from analyzer.diagnostics import Diagnostics
from analyzer.messages.parse import looks_like_start_line
from analyzer.transport.connection import TcpConnection
from analyzer.transport.ip import BadIp, FragmentReassembler, IpPacket, ip_text, parse_ip
from analyzer.transport.records import Payload, TlsHello, endpoint
from analyzer.transport.sctp import SctpAssembler
from analyzer.transport.tunnels import GTPU_PORT, gre, gtpu

UDP, TCP, SCTP, GRE, IPIP, IPV6_IN_IP = 17, 6, 132, 47, 4, 41
SIP_PORTS = frozenset((5060, 5061))
_SYN, _FIN, _RST = 0x02, 0x01, 0x04
_TLS_HANDSHAKE = 0x16
_MAX_TUNNEL_DEPTH = 4
_MAX_IGNORED_FLOWS = 65536
#: TCP connections idle this long (capture time) are flushed and forgotten, so memory does not grow with
#: the number of connections a long capture sees; a later message on one is picked up at its start line.
TCP_IDLE_TIMEOUT = 120.0


_STUN_COOKIE = b"\x21\x12\xa4\x42"


def _is_keepalive(payload: bytes) -> bool:
    """SIP keep-alives over UDP (RFC 5626): CRLF pings, NUL padding, or STUN binding requests/answers."""
    if len(payload) >= 20 and payload[0] < 0x40 and payload[4:8] == _STUN_COOKIE:
        return True
    return not payload.strip(b"\r\n\x00 \t")


class Demux:
    """Holds one capture's fragment, TCP and SCTP state; turns packets into ``Payload``/``TlsHello``."""

    def __init__(self, diagnostics: Diagnostics, sip_ports: Iterable[int] = SIP_PORTS,
                 tcp_idle_timeout: float = TCP_IDLE_TIMEOUT):
        self.diag = diagnostics
        self.sip_ports = frozenset(sip_ports)
        self._udp_ports = self.sip_ports | {GTPU_PORT}
        self._fragments = FragmentReassembler(diagnostics)
        self._sctp = SctpAssembler()
        # Both directions' 4-tuple keys (src ip, dst ip, sport, dport as raw bytes) map to one connection.
        self._tcp: dict[bytes, TcpConnection] = {}
        self._ignored: dict[bytes, None] = {}
        # Per live connection: [last activity time, its two keys in _tcp], for the idle sweep.
        self._activity: dict[TcpConnection, list] = {}
        self._idle_timeout = tcp_idle_timeout
        self._next_sweep: float | None = None  # capture time of the next idle sweep
        self._names: dict[bytes, str] = {}
        self._warned_linktypes: set[int] = set()
        self._out: list[Payload | TlsHello] = []  # what the packet being decoded completed

    # -- the hot path --------------------------------------------------------------------------------
    def prefilter(self, buf: bytes, s: int, e: int, linktype: int) -> bool:
        """Can the packet in ``buf[s:e]`` matter? Called by the capture reader for every packet.

        Reads a few bytes of plain Ethernet + IPv4/IPv6 + UDP/TCP at fixed offsets, without slicing.
        Anything else answers True and takes the general path.
        """
        if linktype != 1 or e - s < 54:
            return True
        b12 = buf[s + 12]
        if b12 == 0x08 and buf[s + 13] == 0x00:
            if buf[s + 20] & 0x3F or buf[s + 21]:  # a fragment
                return True
            proto, l4 = buf[s + 23], s + 14 + ((buf[s + 14] & 0x0F) << 2)
        elif b12 == 0x86 and buf[s + 13] == 0xDD:
            proto, l4 = buf[s + 20], s + 54
        else:
            return True
        if proto == UDP:
            if l4 + 8 >= e:
                return False
            first = buf[l4 + 8]
            # A start line begins with an upper-case letter; RTP/RTCP/SRTP with 0x80..0xBF: media stops
            # here. Other bytes matter only on SIP ports (reported as malformed) and GTP-U.
            if first >= 0x80:
                return False
            return (65 <= first <= 90 or ((buf[l4] << 8) | buf[l4 + 1]) in self._udp_ports
                    or ((buf[l4 + 2] << 8) | buf[l4 + 3]) in self._udp_ports)
        if proto == TCP:
            if l4 + 20 > e:
                return True
            key = (buf[s + 26:s + 34] if b12 == 0x08 else buf[s + 22:s + 54]) + buf[l4:l4 + 4]
            if key in self._tcp:
                return True
            if key in self._ignored:
                return bool(buf[l4 + 13] & _SYN)  # a new connection may reuse the 4-tuple
            start = l4 + ((buf[l4 + 12] >> 4) << 2)
            return bool(buf[l4 + 13] & _SYN) or (start < e and (65 <= buf[start] <= 90
                                                                 or buf[start] == _TLS_HANDSHAKE))
        return True

    def run(self, packets: Iterable[tuple]) -> Iterator[Payload | TlsHello]:
        """Decode packets (those a prefilter let through); yield payloads in order, then what ``close``
        flushes."""
        general, out = self._general, self._out
        for number, time, linktype, data, orig_len in packets:
            general(number, time, linktype, data, orig_len)
            if out:
                yield from out
                out.clear()
        yield from self.close()

    # -- the general path: each step appends what it completes to self._out -------------------------
    def _general(self, number, time, linktype, data, orig_len):
        decoder = LINK_DECODERS.get(linktype)
        if decoder is None:
            if linktype not in self._warned_linktypes:
                self._warned_linktypes.add(linktype)
                self.diag.add("unknown-linktype",
                              f"link type {LINKTYPE_NAMES.get(linktype, linktype)} is not decoded by the "
                              "dpkt engine (try --engine tshark)", (number,))
            return
        found = decoder(data)
        if found is None:
            return
        if len(data) < orig_len:
            self.diag.add("snaplen-cut", f"frame {number} was captured with {len(data)} of {orig_len} "
                          "bytes; its payload may be incomplete", (number,))
        self._ip(found[0], data, found[1], number, time, 0)

    def _ip(self, version, data, off, number, time, depth):
        try:
            pkt = parse_ip(version, data, off)
        except BadIp as exc:
            self.diag.add("malformed-packet", f"frame {number}: {exc}", (number,))
            return
        frames: tuple[int, ...] = (number,)
        if pkt.frag_id is not None:
            done = self._fragments.add(pkt, number, time)
            if done is None:
                return
            pkt, frames = done
        self._l4(pkt, frames, number, time, depth)

    def _l4(self, pkt: IpPacket, frames, number, time, depth):
        proto, payload = pkt.proto, pkt.payload
        if proto == UDP:
            self._udp(pkt, frames, number, time, depth)
        elif proto == TCP:
            self._tcp_segment(pkt, number, time)
        elif proto == SCTP:
            self._sctp_packet(pkt, frames, number, time)
        elif depth >= _MAX_TUNNEL_DEPTH:
            return
        elif proto in (IPIP, IPV6_IN_IP) and payload:
            self._ip(4 if proto == IPIP else 6, payload, 0, number, time, depth + 1)
        elif proto == GRE:
            self._tunnel(gre(payload), number, time, depth)

    def _tunnel(self, inner, number, time, depth):
        if inner is None:
            return
        if inner[0] == "ip":
            self._ip(inner[1], inner[2], 0, number, time, depth + 1)
        else:
            found = ethernet(inner[1])
            if found:
                self._ip(found[0], inner[1], found[1], number, time, depth + 1)

    def _udp(self, pkt: IpPacket, frames, number, time, depth):
        data = pkt.payload
        if len(data) < 8:
            self.diag.add("malformed-packet", f"frame {number}: UDP header truncated", (number,))
            return
        sport, dport = (data[0] << 8) | data[1], (data[2] << 8) | data[3]
        payload = data[8:]
        if GTPU_PORT in (sport, dport) and depth < _MAX_TUNNEL_DEPTH:
            self._tunnel(gtpu(payload), number, time, depth)
            return
        if not payload:
            return
        if looks_like_start_line(payload):
            self._out.append(Payload(payload, frames, time, self._name(pkt.src, sport),
                                     self._name(pkt.dst, dport), "udp"))
        elif (sport in self.sip_ports or dport in self.sip_ports) and not _is_keepalive(payload):
            port = dport if dport in self.sip_ports else sport
            self.diag.add("malformed-sip", f"UDP datagram on SIP port {port} is not a SIP message "
                          f"(starts {payload[:8].hex(' ')})", frames)

    def _tcp_segment(self, pkt: IpPacket, number, time):
        data = pkt.payload
        if len(data) < 20 or (data[12] >> 4) < 5:
            self.diag.add("malformed-packet", f"frame {number}: TCP header truncated", (number,))
            return
        ports = data[0:4]
        key = pkt.src + pkt.dst + ports
        conn = self._tcp.get(key)
        flags, payload = data[13], data[(data[12] >> 4) << 2:]
        if conn is None:
            if key in self._ignored:
                if not flags & _SYN:
                    return
                self._unignore(key, ports, pkt)
            if not (flags & _SYN or (payload and (looks_like_start_line(payload)
                                                  or payload[0] == _TLS_HANDSHAKE))):
                return
            sport, dport = (data[0] << 8) | data[1], (data[2] << 8) | data[3]
            conn = TcpConnection(self._name(pkt.src, sport), self._name(pkt.dst, dport), self.diag)
            reverse = pkt.dst + pkt.src + ports[2:] + ports[:2]
            self._tcp[key] = self._tcp[reverse] = conn
            self._activity[conn] = [time, key, reverse]
        else:
            self._activity[conn][0] = time
        src = self._name(pkt.src, (data[0] << 8) | data[1])
        self._out.extend(conn.segment(src, int.from_bytes(data[4:8], "big"), flags, payload, number, time))
        if conn.finished:
            self._forget(conn)
        if self._next_sweep is None or time >= self._next_sweep:
            self._sweep(time)
            self._next_sweep = time + self._idle_timeout / 4

    def _sweep(self, now: float) -> None:
        """Flush and forget connections idle longer than the timeout."""
        for conn, (last, _, _) in list(self._activity.items()):
            if now - last > self._idle_timeout:
                self._out.extend(conn.close())
                self._forget(conn, ignore=False)

    def _unignore(self, key, ports, pkt) -> None:
        self._ignored.pop(key, None)
        self._ignored.pop(pkt.dst + pkt.src + ports[2:] + ports[:2], None)

    def _forget(self, conn: TcpConnection, ignore: bool = True) -> None:
        """Drop a closed or uninteresting connection so state stays bounded."""
        _, key, reverse = self._activity.pop(conn)
        self._tcp.pop(key, None)
        self._tcp.pop(reverse, None)
        if ignore and not conn.interesting:
            if len(self._ignored) >= _MAX_IGNORED_FLOWS:
                self._ignored.pop(next(iter(self._ignored)))
            self._ignored[key] = self._ignored[reverse] = None

    def _sctp_packet(self, pkt: IpPacket, frames, number, time):
        data = pkt.payload
        if len(data) < 12:
            self.diag.add("malformed-packet", f"frame {number}: SCTP header truncated", (number,))
            return
        sport, dport = (data[0] << 8) | data[1], (data[2] << 8) | data[3]
        try:
            found = self._sctp.messages((pkt.src, pkt.dst, sport, dport), data, number)
        except ValueError as exc:
            self.diag.add("malformed-packet", f"frame {number}: {exc}", frames)
            return
        for message, msg_frames in found:
            if looks_like_start_line(message):
                self._out.append(Payload(message, msg_frames, time, self._name(pkt.src, sport),
                                         self._name(pkt.dst, dport), "sctp"))

    def _name(self, raw: bytes, port: int) -> str:
        text = self._names.get(raw)
        if text is None:
            if len(self._names) > 65536:
                self._names.clear()
            text = self._names[raw] = ip_text(raw)
        return endpoint(text, port)

    def close(self) -> Iterator[Payload | TlsHello]:
        """End of capture: flush TCP streams and report unfinished fragments."""
        for conn in self._activity:
            yield from conn.close()
        self._activity.clear()
        self._tcp.clear()
        self._fragments.close()
