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


def _is_keepalive(payload: bytes) -> bool:
    """SIP keep-alives over UDP: CRLF pings (RFC 5626) or NUL padding, carrying no message."""
    return not payload.strip(b"\r\n\x00 \t")


class Demux:
    """Holds one capture's fragment, TCP and SCTP state; turns packets into ``Payload``/``TlsHello``."""

    def __init__(self, diagnostics: Diagnostics, sip_ports: Iterable[int] = SIP_PORTS):
        self.diag = diagnostics
        self.sip_ports = frozenset(sip_ports)
        self.packets = 0
        self._fragments = FragmentReassembler(diagnostics)
        self._sctp = SctpAssembler()
        # Both directions' 4-tuple keys (src ip, dst ip, sport, dport as raw bytes) map to one connection.
        self._tcp: dict[bytes, TcpConnection] = {}
        self._ignored: dict[bytes, None] = {}
        self._names: dict[bytes, str] = {}
        self._warned_linktypes: set[int] = set()

    # -- the hot loop ------------------------------------------------------------------------------
    def run(self, packets: Iterable[tuple]) -> Iterator[Payload | TlsHello]:
        """Feed every captured packet; yield payloads in capture order, then what ``close`` flushes."""
        sip_ports, tcp_flows, ignored = self.sip_ports, self._tcp, self._ignored
        general = self._general
        number = 0
        for number, time, linktype, data, orig_len in packets:
            # Fast path: Ethernet (no VLAN) carrying IPv4 without options-fragmentation, or plain IPv6.
            if linktype != 1 or len(data) < 54:
                yield from general(number, time, linktype, data, orig_len)
                continue
            etype = data[12:14]
            if etype == b"\x08\x00":
                if data[20] & 0x3F or data[21]:  # fragment
                    yield from general(number, time, linktype, data, orig_len)
                    continue
                proto, l4 = data[23], 14 + ((data[14] & 0x0F) << 2)
                addrs = data[26:34]
            elif etype == b"\x86\xdd":
                proto, l4 = data[20], 54
                addrs = data[22:54]
            else:
                yield from general(number, time, linktype, data, orig_len)
                continue
            if proto == UDP:
                if len(data) <= l4 + 8:
                    continue
                first = data[l4 + 8]
                if 65 <= first <= 90 or (
                        ((data[l4] << 8) | data[l4 + 1]) in sip_ports
                        or ((data[l4 + 2] << 8) | data[l4 + 3]) in sip_ports
                        or data[l4:l4 + 2] == b"\x08\x68" or data[l4 + 2:l4 + 4] == b"\x08\x68"):
                    yield from general(number, time, linktype, data, orig_len)
            elif proto == TCP:
                key = addrs + data[l4:l4 + 4]
                if key in tcp_flows:
                    yield from general(number, time, linktype, data, orig_len)
                elif key in ignored or len(data) < l4 + 20:
                    continue
                else:
                    flags = data[l4 + 13]
                    start = l4 + ((data[l4 + 12] >> 4) << 2)
                    if flags & _SYN or (len(data) > start and (
                            65 <= data[start] <= 90 or data[start] == _TLS_HANDSHAKE)):
                        yield from general(number, time, linktype, data, orig_len)
            else:
                yield from general(number, time, linktype, data, orig_len)
        self.packets = number
        yield from self.close()

    # -- the general path --------------------------------------------------------------------------
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
        yield from self._ip(found[0], data, found[1], number, time, 0)

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
        yield from self._l4(pkt, frames, number, time, depth)

    def _l4(self, pkt: IpPacket, frames, number, time, depth):
        proto, payload = pkt.proto, pkt.payload
        if proto == UDP:
            yield from self._udp(pkt, frames, number, time, depth)
        elif proto == TCP:
            yield from self._tcp_segment(pkt, number, time)
        elif proto == SCTP:
            yield from self._sctp_packet(pkt, frames, number, time)
        elif depth >= _MAX_TUNNEL_DEPTH:
            return
        elif proto in (IPIP, IPV6_IN_IP) and payload:
            yield from self._ip(4 if proto == IPIP else 6, payload, 0, number, time, depth + 1)
        elif proto == GRE:
            yield from self._tunnel(gre(payload), number, time, depth)

    def _tunnel(self, inner, number, time, depth):
        if inner is None:
            return
        if inner[0] == "ip":
            yield from self._ip(inner[1], inner[2], 0, number, time, depth + 1)
        else:
            found = ethernet(inner[1])
            if found:
                yield from self._ip(found[0], inner[1], found[1], number, time, depth + 1)

    def _udp(self, pkt: IpPacket, frames, number, time, depth):
        data = pkt.payload
        if len(data) < 8:
            self.diag.add("malformed-packet", f"frame {number}: UDP header truncated", (number,))
            return
        sport, dport = (data[0] << 8) | data[1], (data[2] << 8) | data[3]
        payload = data[8:]
        if GTPU_PORT in (sport, dport) and depth < _MAX_TUNNEL_DEPTH:
            yield from self._tunnel(gtpu(payload), number, time, depth)
            return
        if not payload:
            return
        if looks_like_start_line(payload):
            yield Payload(payload, frames, time, self._name(pkt.src, sport), self._name(pkt.dst, dport),
                          "udp")
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
                return
            if not (flags & _SYN or (payload and (looks_like_start_line(payload)
                                                  or payload[0] == _TLS_HANDSHAKE))):
                return
            sport, dport = (data[0] << 8) | data[1], (data[2] << 8) | data[3]
            conn = TcpConnection(self._name(pkt.src, sport), self._name(pkt.dst, dport), self.diag)
            self._tcp[key] = self._tcp[pkt.dst + pkt.src + ports[2:] + ports[:2]] = conn
        src = self._name(pkt.src, (data[0] << 8) | data[1])
        yield from conn.segment(src, int.from_bytes(data[4:8], "big"), flags, payload, number, time)
        if conn.finished:
            self._forget(key, ports, pkt, conn)

    def _forget(self, key, ports, pkt, conn) -> None:
        """Drop a closed or uninteresting connection so state stays bounded."""
        reverse = pkt.dst + pkt.src + ports[2:] + ports[:2]
        self._tcp.pop(key, None)
        self._tcp.pop(reverse, None)
        if not conn.interesting:
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
                yield Payload(message, msg_frames, time, self._name(pkt.src, sport),
                              self._name(pkt.dst, dport), "sctp")

    def _name(self, raw: bytes, port: int) -> str:
        text = self._names.get(raw)
        if text is None:
            if len(self._names) > 65536:
                self._names.clear()
            text = self._names[raw] = ip_text(raw)
        return endpoint(text, port)

    def close(self) -> Iterator[Payload | TlsHello]:
        """End of capture: flush TCP streams and report unfinished fragments."""
        seen = set()
        for conn in self._tcp.values():
            if id(conn) not in seen:
                seen.add(id(conn))
                yield from conn.close()
        self._tcp.clear()
        self._fragments.close()
