"""Packets in, application-message payloads out: the dpkt engine's transport stage.

Most packets of a drive-test capture are media. The hot loop therefore looks at a few fixed offsets of
plain Ethernet/IPv4/IPv6 packets and drops, without decoding, every UDP datagram whose payload cannot
start a SIP/HTTP message (RTP begins 0x80..0xBF; a start line begins with an upper-case letter; MC floor
control, RTCP APP packets named "MCP."/"MCV.", passes: ``rtcp``) and every
TCP segment of a flow that is not followed. Anything unusual (fragments, tunnels, other link types,
extension headers, SCTP, IPsec ESP) takes the general path. Flows are selected, not packets: a TCP flow is
followed from its SYN, or from the first segment that starts a SIP/HTTP message or a TLS handshake, so the
continuation segments of split messages are never lost.

Every packet gets one fate (``records.SIGNALLING``, ``MEDIA``, ``OTHER``, ``DIAGNOSTIC``, ``ENCRYPTED``),
counted in
``fates``; ``accounting`` adds them up. The prefilter counts what it drops as other or signalling (rare);
what it drops as media is the rest, so the hot path counts nothing. The general path decides the same fate
for a packet as the prefilter would (``tests/test_accounting.py`` checks it with the prefilter off). A
packet's fate may wait: a TCP connection's packets count when it ends (signalling if it carried SIP, HTTP
or TLS), a fragment's when its datagram completes or expires, an SCTP association's once it carries SIP.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT, Limits
from analyzer.capture.link import LINK_DECODERS, LINKTYPE_NAMES, BadFrame, CannotFollow, ethernet
from analyzer.capture.upper_pdu import LINKTYPE_UPPER_PDU, exported_pdu
from analyzer.transport.esp import ESP, NAT_T_PORT, EspAuthFailed, EspError, EspReader, nat_t_esp
from analyzer.transport.esp_sa import SecurityAssociation
from analyzer.transport.ip import BadIp, FragmentReassembler, IpPacket, ip_text, parse_ip
from analyzer.transport.records import (
    DIAGNOSTIC,
    ENCRYPTED,
    MEDIA,
    OTHER,
    SIGNALLING,
    ControlPayload,
    Payload,
    TlsHello,
    endpoint,
)
from analyzer.transport.rtcp import APP, NAME_PREFIXES, is_control
from analyzer.transport.sctp import SctpAssembler
from analyzer.transport.startline import looks_like_start_line
from analyzer.transport.tcpflows import TCP_IDLE_TIMEOUT, TcpFlows
from analyzer.transport.tunnels import GTPU_PORT, gre, gtpu

UDP, TCP, SCTP, GRE, IPIP, IPV6_IN_IP = 17, 6, 132, 47, 4, 41
SIP_PORTS = frozenset((5060, 5061))
_SYN = 0x02
_TLS_HANDSHAKE = 0x16
_MAX_TUNNEL_DEPTH = 4


_STUN_COOKIE = b"\x21\x12\xa4\x42"


def _is_keepalive(payload: bytes) -> bool:
    """SIP keep-alives over UDP (RFC 5626): CRLF pings, NUL padding, or STUN binding requests/answers."""
    if len(payload) >= 20 and payload[0] < 0x40 and payload[4:8] == _STUN_COOKIE:
        return True
    return not payload.strip(b"\r\n\x00 \t")


class Demux:
    """Holds one capture's fragment, TCP and SCTP state; turns packets into ``Payload``/``TlsHello``.

    Every table it keeps is capped by ``limits`` (``analyzer.base.limits``)."""

    def __init__(self, diagnostics: Diagnostics, sip_ports: Iterable[int] = SIP_PORTS,
                 tcp_idle_timeout: float = TCP_IDLE_TIMEOUT, limits: Limits = DEFAULT,
                 esp_sas: tuple[SecurityAssociation, ...] = ()):
        self.diag = diagnostics
        self.limits = limits
        self.sip_ports = frozenset(sip_ports)
        self._udp_ports = self.sip_ports | {GTPU_PORT, NAT_T_PORT}
        self.esp = EspReader(esp_sas)
        self._fragments = FragmentReassembler(diagnostics, max_pending=limits.ip_fragments,
                                              max_pieces=limits.ip_fragment_pieces)
        self._sctp = SctpAssembler(diagnostics, limits)
        # SCTP association → [packets not yet counted, carried SIP], oldest first (OrderedDict: O(1) eviction)
        self._associations: OrderedDict[bytes, list] = OrderedDict()
        self._names: dict[bytes, str] = {}
        self._warned_linktypes: set[int] = set()
        self._out: list[Payload | TlsHello] = []  # what the packet being decoded completed
        #: fate → packets decided so far (media dropped by the prefilter is not counted: see accounting)
        self.fates: dict[str, int] = dict.fromkeys((SIGNALLING, MEDIA, OTHER, DIAGNOSTIC), 0)
        self.fates[ENCRYPTED] = 0  # ESP not opened: reported only when there was some
        self._tcp_flows = TcpFlows(diagnostics, self.fates, limits, self._name, tcp_idle_timeout)
        # The prefilter reads these two tables of the TCP flows directly (they are never rebound).
        self._tcp = self._tcp_flows.conns
        self._ignored = self._tcp_flows.ignored

    @property
    def followed(self) -> int:
        """TCP connections followed now."""
        return len(self._tcp_flows)

    def accounting(self, packets: int) -> dict[str, int]:
        """Fate → packets, once ``run`` is over; ``packets`` is how many the reader walked. What the
        prefilter dropped as media is the only share not counted one by one: it is the rest."""
        fates = dict(self.fates)
        fates[DIAGNOSTIC] += self._fragments.lost
        fates[MEDIA] += packets - sum(fates.values())
        if not fates[ENCRYPTED]:
            del fates[ENCRYPTED]
        return fates

    # -- the hot path --------------------------------------------------------------------------------
    def prefilter(self, buf: bytes, s: int, e: int, linktype: int) -> bool:
        """Can the packet in ``buf[s:e]`` matter? Called by the capture reader for every packet.

        Reads a few bytes of plain Ethernet + IPv4/IPv6 + UDP/TCP at fixed offsets, without slicing.
        Anything else answers True and takes the general path. A packet dropped here is counted in
        ``fates``, except media (the rest, see ``accounting``).
        """
        if linktype != 1 or e - s < 54:
            return True
        b12 = buf[s + 12]
        if b12 == 0x08 and buf[s + 13] == 0x00:
            if buf[s + 14] != 0x45 or buf[s + 20] & 0x3F or buf[s + 21]:  # IP options, or a fragment
                return True
            proto, l4 = buf[s + 23], s + 34
        elif b12 == 0x86 and buf[s + 13] == 0xDD:
            proto, l4 = buf[s + 20], s + 54
        else:
            return True
        if proto == UDP:
            if l4 + 8 >= e:
                if l4 + 8 > e:
                    return True  # the UDP header is cut short: the general path says so
                self.fates[OTHER] += 1
                return False
            first = buf[l4 + 8]
            # A start line begins with an upper-case letter; RTP/RTCP/SRTP (version 2) with 0x80..0xBF,
            # between ports above 1023 (so not DNS, NetBIOS ...): media stops here, uncounted. Other bytes
            # matter only on SIP ports (reported as malformed), GTP-U and IPsec NAT traversal (port 4500,
            # 0x1194: ESP's SPI may begin with any byte).
            if first >= 0x80:
                if (first < 0xC0 and buf[l4] >= 4 and buf[l4 + 2] >= 4
                        and (buf[l4 + 1] != 0x94 or buf[l4] != 0x11)
                        and (buf[l4 + 3] != 0x94 or buf[l4 + 2] != 0x11)):
                    # ... but for MC media-plane control (``rtcp``): RTCP APP (204) with an MC name.
                    return l4 + 20 <= e and buf[l4 + 9] == APP and buf[l4 + 16:l4 + 19] in NAME_PREFIXES
            elif 65 <= first <= 90:
                return True
            if (((buf[l4] << 8) | buf[l4 + 1]) in self._udp_ports
                    or ((buf[l4 + 2] << 8) | buf[l4 + 3]) in self._udp_ports):
                return True
            self.fates[OTHER] += 1
            return False
        if proto == TCP:
            if l4 + 20 > e or buf[l4 + 12] < 0x50:
                return True  # cut short or malformed: the general path says so
            key = (buf[s + 26:s + 34] if b12 == 0x08 else buf[s + 22:s + 54]) + buf[l4:l4 + 4]
            if key in self._tcp or buf[l4 + 13] & _SYN:
                return True  # (a SYN may reuse the 4-tuple of a flow no longer followed)
            fate = self._ignored.get(key)
            if fate != OTHER:  # a new flow, or an ended signalling flow: is a message starting?
                start = l4 + ((buf[l4 + 12] >> 4) << 2)
                if start < e and (65 <= buf[start] <= 90 or buf[start] == _TLS_HANDSHAKE):
                    return True
            self.fates[fate or OTHER] += 1
            return False
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

    # -- the general path: each step appends what it completes to self._out and counts the fate of the
    # packets it stands for (``weight``: more than one for a datagram reassembled from fragments) ------
    def _general(self, number, time, linktype, data, orig_len):
        if linktype == LINKTYPE_UPPER_PDU:
            self._exported(number, time, data)
            return
        decoder = LINK_DECODERS.get(linktype)
        if decoder is None:
            if linktype not in self._warned_linktypes:
                self._warned_linktypes.add(linktype)
                self.diag.add("unknown-linktype",
                              f"link type {LINKTYPE_NAMES.get(linktype, linktype)} is not decoded by the "
                              "dpkt engine (try --engine tshark)", (number,))
            self.fates[DIAGNOSTIC] += 1
            return
        try:
            found = decoder(data)
        except (BadFrame, CannotFollow) as exc:
            self._undecoded(exc, (number,), 1)
            return
        if found is None:
            self.fates[OTHER] += 1
            return
        if len(data) < orig_len:
            self.diag.add("snaplen-cut", f"frame {number} was captured with {len(data)} of {orig_len} "
                          "bytes; its payload may be incomplete", (number,))
        self._ip(found[0], data, found[1], number, time, 0, 1)

    def _exported(self, number, time, data):
        """A Wireshark exported PDU (``capture.upper_pdu``): a SIP or HTTP one is a message, from and to the
        addresses and ports of its tags (``0.0.0.0:0`` for those it lacks)."""
        try:
            pdu = exported_pdu(data)
        except BadFrame as exc:
            self._undecoded(exc, (number,), 1)
            return
        http = "http" in pdu.proto
        if not pdu.data or not (http or "sip" in pdu.proto):
            self.fates[OTHER] += 1
            return
        src = self._name(pdu.src, pdu.sport) if pdu.src else endpoint("0.0.0.0", pdu.sport)
        dst = self._name(pdu.dst, pdu.dport) if pdu.dst else endpoint("0.0.0.0", pdu.dport)
        transport = pdu.transport or ("tcp" if http else "udp")
        self._out.append(Payload(pdu.data, (number,), time, src, dst, transport))
        self.fates[SIGNALLING] += 1

    def _undecoded(self, exc: Exception, frames: tuple[int, ...], weight: int) -> None:
        code = "unsupported-encapsulation" if isinstance(exc, CannotFollow) else "malformed-packet"
        self.diag.add(code, f"frame {frames[-1]}: {exc}", frames)
        self.fates[DIAGNOSTIC] += weight

    def _ip(self, version, data, off, number, time, depth, weight):
        try:
            pkt = parse_ip(version, data, off)
        except BadIp as exc:
            self.diag.add("malformed-packet", f"frame {number}: {exc}", (number,))
            self.fates[DIAGNOSTIC] += weight
            return
        frames: tuple[int, ...] = (number,)
        if pkt.frag_id is not None:
            done = self._fragments.add_weighted(pkt, number, time, weight)
            if done is None:
                return  # counted when the datagram completes, or expires (``FragmentReassembler.lost``)
            pkt, frames, weight = done
        self._l4(pkt, frames, number, time, depth, weight)

    def _l4(self, pkt: IpPacket, frames, number, time, depth, weight):
        proto, payload = pkt.proto, pkt.payload
        if proto == UDP:
            self._udp(pkt, frames, number, time, depth, weight)
        elif proto == TCP:
            self._tcp_segment(pkt, number, time, weight)
        elif proto == SCTP:
            self._sctp_packet(pkt, frames, number, time, weight)
        elif proto not in (IPIP, IPV6_IN_IP, GRE, ESP):
            self.fates[OTHER] += weight
        elif depth >= _MAX_TUNNEL_DEPTH:
            self._undecoded(CannotFollow(f"tunnels nested deeper than {_MAX_TUNNEL_DEPTH} levels are not "
                                         "followed"), frames, weight)
        elif proto == GRE:
            self._tunnel(gre, payload, frames, number, time, depth, weight)
        elif proto == ESP:
            self._esp(pkt, payload, frames, number, time, depth, weight)
        else:
            self._ip(4 if proto == IPIP else 6, payload, 0, number, time, depth + 1, weight)

    def _tunnel(self, decap, payload, frames, number, time, depth, weight):
        try:
            inner = decap(payload)
            if inner is not None and inner[0] == "ethernet":
                found = ethernet(inner[1])
                inner = None if found is None else ("ip", found[0], inner[1][found[1]:])
        except (BadFrame, CannotFollow) as exc:
            self._undecoded(exc, frames, weight)
            return
        if inner is None:
            self.fates[OTHER] += weight
        else:
            self._ip(inner[1], inner[2], 0, number, time, depth + 1, weight)

    def _esp(self, pkt: IpPacket, data: bytes, frames, number, time, depth, weight):
        """Open an ESP packet (``esp``): its inner segment takes the addresses of the outer packet
        (transport mode), its inner IP packet is decoded as such (tunnel mode)."""
        try:
            opened = self.esp.open(pkt.src, pkt.dst, data)
        except EspError as exc:
            code = "esp-auth-failed" if isinstance(exc, EspAuthFailed) else "malformed-esp"
            self.diag.add(code, f"frame {number}: {exc}", frames)
            self.fates[DIAGNOSTIC] += weight
            return
        if opened is None:
            self.fates[ENCRYPTED] += weight
            return
        next_header, inner = opened
        if next_header in (IPIP, IPV6_IN_IP):
            self._ip(4 if next_header == IPIP else 6, inner, 0, number, time, depth + 1, weight)
        else:
            self._l4(IpPacket(pkt.version, pkt.src, pkt.dst, next_header, inner), frames, number, time,
                     depth + 1, weight)

    def _udp(self, pkt: IpPacket, frames, number, time, depth, weight):
        data = pkt.payload
        if len(data) < 8:
            self.diag.add("malformed-packet", f"frame {number}: UDP header truncated", (number,))
            self.fates[DIAGNOSTIC] += weight
            return
        sport, dport = (data[0] << 8) | data[1], (data[2] << 8) | data[3]
        payload = data[8:]
        # The prefilter's order: nothing, media, then a tunnel, a start line, a SIP port.
        fates = self.fates
        if not payload:
            fates[OTHER] += weight
        elif 0x80 <= payload[0] < 0xC0 and sport > 1023 and dport > 1023 and NAT_T_PORT not in (sport, dport):
            fates[MEDIA] += weight
            if is_control(payload):
                self._out.append(ControlPayload(payload, frames, time, self._name(pkt.src, sport),
                                                self._name(pkt.dst, dport)))
        elif GTPU_PORT in (sport, dport):
            if depth < _MAX_TUNNEL_DEPTH:
                self._tunnel(gtpu, payload, frames, number, time, depth, weight)
            else:
                self._undecoded(CannotFollow(f"tunnels nested deeper than {_MAX_TUNNEL_DEPTH} levels are "
                                             "not followed"), frames, weight)
        elif looks_like_start_line(payload):
            self._out.append(Payload(payload, frames, time, self._name(pkt.src, sport),
                                     self._name(pkt.dst, dport), "udp"))
            fates[SIGNALLING] += weight
        elif NAT_T_PORT in (sport, dport) and nat_t_esp(payload):
            if depth < _MAX_TUNNEL_DEPTH:
                self._esp(pkt, payload, frames, number, time, depth, weight)
            else:
                self._undecoded(CannotFollow(f"tunnels nested deeper than {_MAX_TUNNEL_DEPTH} levels are "
                                             "not followed"), frames, weight)
        elif sport not in self.sip_ports and dport not in self.sip_ports:
            fates[OTHER] += weight
        elif _is_keepalive(payload):
            fates[SIGNALLING] += weight
        else:
            port = dport if dport in self.sip_ports else sport
            self.diag.add("malformed-sip", f"UDP datagram on SIP port {port} is not a SIP message "
                          f"(starts {payload[:8].hex(' ')})", frames)
            fates[DIAGNOSTIC] += weight

    def _tcp_segment(self, pkt: IpPacket, number, time, weight):
        data = pkt.payload
        if len(data) < 20 or (data[12] >> 4) < 5:
            self.diag.add("malformed-packet", f"frame {number}: TCP header truncated", (number,))
            self.fates[DIAGNOSTIC] += weight
            return
        self._tcp_flows.segment(pkt.src, pkt.dst, data, number, time, weight, self._out)

    def _sctp_packet(self, pkt: IpPacket, frames, number, time, weight):
        data = pkt.payload
        if len(data) < 12:
            self.diag.add("malformed-packet", f"frame {number}: SCTP header truncated", (number,))
            self.fates[DIAGNOSTIC] += weight
            return
        sport, dport = (data[0] << 8) | data[1], (data[2] << 8) | data[3]
        found, problem = self._sctp.messages((pkt.src, pkt.dst, sport, dport), data, number)
        if problem is not None:
            self.diag.add("malformed-packet", f"frame {number}: {problem}", frames)
            if not found:
                self.fates[DIAGNOSTIC] += weight
                return
        sip = False
        for message, msg_frames in found:
            if looks_like_start_line(message):
                sip = True
                self._out.append(Payload(message, msg_frames, time, self._name(pkt.src, sport),
                                         self._name(pkt.dst, dport), "sctp"))
        self._association(pkt.src + data[0:2], pkt.dst + data[2:4], weight, sip)

    def _association(self, a: bytes, b: bytes, weight: int, sip: bool) -> None:
        """Count an SCTP packet: signalling once its association has carried SIP (its earlier packets
        too), other if it never does (counted at the end, or when the table is full)."""
        key = a + b if a < b else b + a
        flow = self._associations.get(key)
        if flow is None:
            cap = self.limits.sctp_associations
            if len(self._associations) >= cap:
                self._count_association(self._associations.popitem(last=False)[1])
                self.diag.add("table-full", f"more than {cap} SCTP associations at once: the oldest is "
                              f"counted as it stands and forgotten (--limit sctp_associations={cap} raises "
                              "the cap)")
            flow = self._associations[key] = [0, False]
        if sip and not flow[1]:
            flow[1] = True
            self.fates[SIGNALLING] += flow[0]
            flow[0] = 0
        if flow[1]:
            self.fates[SIGNALLING] += weight
        else:
            flow[0] += weight

    def _count_association(self, flow: list) -> None:
        self.fates[SIGNALLING if flow[1] else OTHER] += flow[0]

    def _name(self, raw: bytes, port: int) -> str:
        text = self._names.get(raw)
        if text is None:
            if len(self._names) > 65536:
                self._names.clear()
            text = self._names[raw] = ip_text(raw)
        return endpoint(text, port)

    def close(self) -> Iterator[Payload | TlsHello]:
        """End of capture: flush TCP streams, report unfinished fragments, count what was waiting."""
        out: list[Payload | TlsHello] = []
        self._tcp_flows.close(out)
        yield from out
        for flow in self._associations.values():
            self._count_association(flow)
        self._associations.clear()
        self._fragments.close()
        self._sctp.close()
