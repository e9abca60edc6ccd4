"""The whole dpkt pipeline (capture → link → IP → transport → messages) on small crafted captures.

Every test writes a pcap to ``tmp_path`` and reads it back through ``dpkt_engine.decode``, so the reader's
prefilter (``Demux.prefilter``), the general path, the reassemblers and the parsers are exercised together,
the way ``mcxa`` runs them. Frame numbers are 1-based as Wireshark counts them.
"""

from __future__ import annotations

import random

import dpkt
import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.capture import open_capture
from analyzer.engines import DecodeOptions, dpkt_engine, parallel
from analyzer.engines.dpkt_engine import decode
from analyzer.messages.decode import to_message
from analyzer.messages.records import Message
from analyzer.transport.demux import Demux
from analyzer.transport.records import TlsHello
from tests.captures import (
    ACK,
    FIN,
    RST,
    SYN,
    Flow,
    gre,
    gtpu,
    linux_sll,
    pcap_bytes,
    time_of,
    udp_ip,
    write_records,
)
from tests.encapsulations import PPP_CCP_DATA, PPP_IPV6, PPP_LCP, enhanced_gre
from tests.encapsulations import nflog as nflog_record
from tests.encapsulations import ppp as ppp_frame
from tests.packets import (
    SIP_REGISTER,
    ether,
    ip,
    ipv4_fragments,
    ipv6_fragments,
    sip_request,
    sip_response,
    udp,
    udp_frame,
    write_pcap,
)
from tests.test_tls import built_hello, records, sni_extension

UE, SRV = "10.0.0.1", "10.0.0.2"
UE6, SRV6 = "2001:db8::1", "2001:db8::2"
INVITE = sip_request("INVITE", "call-1", body=b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n" * 12)
OK = sip_response(200, "OK", "call-1")
BYE = sip_request("BYE", "call-1", cseq=2)


def run(tmp_path, frames, linktype: int = 1, options: DecodeOptions | None = None):
    """Write ``frames`` as a pcap, decode it fully; (items, decoded) — stats/diagnostics are final."""
    path = tmp_path / "crafted.pcap"
    write_pcap(path, frames, linktype=linktype)
    return run_file(path, options)


def run_file(path, options: DecodeOptions | None = None):
    decoded = decode(str(path), options)
    return list(decoded.items), decoded


def summary(items) -> list[tuple]:
    """What a reader of ``mcxa messages`` sees first: frame, method or status, Call-ID."""
    return [(m.frame, m.method or m.status, m.call_id) for m in items]


def codes(decoded) -> dict[str, int]:
    return decoded.diagnostics.summary()


# -- TCP ----------------------------------------------------------------------------------------------------

def test_two_sip_messages_in_one_tcp_segment(tmp_path):
    flow = Flow((UE, 40000), (SRV, 5060))
    ack = sip_request("ACK", "call-1")
    items, decoded = run(tmp_path, [*flow.handshake(), flow.frame("a", ack + BYE), flow.frame("b", OK)])
    assert summary(items) == [(4, "ACK", "call-1"), (4, "BYE", "call-1"), (5, 200, "call-1")]
    assert [m.frames for m in items] == [(4,), (4,), (5,)]
    assert items[0].body == b"" and items[1].cseq == "2 BYE"
    assert decoded.stats.sip_messages == 3 and codes(decoded) == {}


@pytest.mark.parametrize("arrival", [(2, 0, 1), (1, 2, 0), (0, 2, 1), (2, 1, 0)],
                         ids=lambda a: "arrival-" + "".join(str(i + 1) for i in a))
def test_one_sip_message_over_three_out_of_order_segments(tmp_path, arrival):
    flow = Flow((UE, 40000), (SRV, 5060))
    handshake = flow.handshake()
    pieces = flow.pieces("a", INVITE, [200, 400])
    frames = [*handshake, *(pieces[i] for i in arrival), flow.frame("b", OK)]
    items, decoded = run(tmp_path, frames)
    invite = items[0]
    assert invite.body == INVITE.split(b"\r\n\r\n", 1)[1]
    # frames in capture order; numbered and timed by frame 6, the one that completed it, as Wireshark does
    assert invite.frames == (4, 5, 6) and invite.frame == 6
    assert invite.time == pytest.approx(time_of(6))
    assert summary(items) == [(6, "INVITE", "call-1"), (7, 200, "call-1")]
    assert codes(decoded) == {}


def test_tcp_flow_from_its_syn_and_flows_picked_up_mid_connection(tmp_path):
    from_syn = Flow((UE, 40000), (SRV, 5060))
    mid = Flow((UE, 40001), (SRV, 5060))  # capture started while this connection was up
    mid_response = Flow((UE, 40002), (SRV, 5060))  # ... and this one's first captured bytes are a response
    tail = Flow((UE, 40003), (SRV, 5060))  # ... and this one's start in the middle of a message
    reg = sip_request("REGISTER", "reg-1", uri="sip:mcx.example")
    frames = [
        *from_syn.handshake(),  # 1-3
        from_syn.frame("a", INVITE),  # 4
        mid.frame("a", reg),  # 5
        mid_response.frame("b", sip_response(200, "OK", "reg-2", method="REGISTER")),  # 6
        tail.frame("a", INVITE[40:]),  # 7: the rest of a message whose start was not captured
        from_syn.frame("b", OK),  # 8
        mid.frame("b", sip_response(401, "Unauthorized", "reg-1", method="REGISTER")),  # 9
        tail.frame("a", BYE),  # 10
    ]
    items, decoded = run(tmp_path, frames)
    assert summary(items) == [(4, "INVITE", "call-1"), (5, "REGISTER", "reg-1"), (6, 200, "reg-2"),
                              (8, 200, "call-1"), (9, 401, "reg-1"), (10, "BYE", "call-1")]
    assert [(m.src, m.dst) for m in items[:3]] == [
        ("10.0.0.1:40000", "10.0.0.2:5060"), ("10.0.0.1:40001", "10.0.0.2:5060"),
        ("10.0.0.2:5060", "10.0.0.1:40002")]
    assert {m.transport for m in items} == {"tcp"}
    assert codes(decoded) == {}  # a capture that starts mid-connection is normal, not an anomaly


@pytest.mark.parametrize("first", ["refused", "empty"])
def test_new_connection_on_the_ports_of_a_refused_or_empty_one_is_decoded(tmp_path, first):
    """A UA bound to a fixed port (SIPp ``-p 5060 -t t1``) retries on the same 4-tuple after a refused
    or empty connection; the retry's SIP must not be dropped with the old, ignored flow (tshark shows it)."""
    old = Flow((UE, 5060), (SRV, 5060))
    if first == "refused":
        earlier = [old.frame("a", flags=SYN), old.frame("b", flags=RST | ACK)]
    else:
        earlier = [*old.handshake(), old.frame("a", flags=FIN | ACK), old.frame("b", flags=FIN | ACK)]
    retry = Flow((UE, 5060), (SRV, 5060), isn=(90000, 70000))
    items, _ = run(tmp_path, [*earlier, *retry.handshake(), retry.frame("a", INVITE)])
    assert summary(items) == [(len(earlier) + 4, "INVITE", "call-1")]


def test_ethernet_padding_of_short_segments_is_not_stream_data(tmp_path):
    flow = Flow((UE, 40000), (SRV, 5060))
    handshake = flow.handshake()
    head, tail = flow.pieces("a", INVITE, [len(INVITE) - 2])
    padded = tail + bytes(60 - len(tail))  # 56-byte frame: the NIC pads it to the 60-byte minimum
    items, decoded = run(tmp_path, [*handshake, head, padded, flow.frame("a", BYE)])
    assert summary(items) == [(5, "INVITE", "call-1"), (6, "BYE", "call-1")]
    assert codes(decoded) == {}  # no junk-before-message from the padding


def test_random_tcp_bytes_give_nothing_and_no_diagnostics(tmp_path):
    rnd = random.Random(20240607)
    noise = [bytes(rnd.randrange(256) for _ in range(400)) for _ in range(4)]
    with_syn = Flow((UE, 33000), (SRV, 7000))
    without_syn = Flow((UE, 33001), (SRV, 7001))
    frames = [*with_syn.handshake(), *(with_syn.frame("a", n) for n in noise),
              # first byte an upper-case letter: looks like a start line until the line is read
              *(without_syn.frame("a", b"Q" + n) for n in noise),
              with_syn.frame("a", flags=FIN | ACK), with_syn.frame("b", flags=FIN | ACK)]
    items, decoded = run(tmp_path, frames)
    assert items == []
    assert codes(decoded) == {}
    assert decoded.stats.packets == len(frames)


# -- UDP ----------------------------------------------------------------------------------------------------

def test_sip_over_udp_on_a_non_standard_port_is_found(tmp_path):
    items, decoded = run(tmp_path, [udp_frame(UE, SRV, 6070, 6070, INVITE),
                                    udp_frame(SRV, UE, 6070, 6070, OK)])
    assert summary(items) == [(1, "INVITE", "call-1"), (2, 200, "call-1")]
    assert (items[0].src, items[0].dst, items[0].transport) == ("10.0.0.1:6070", "10.0.0.2:6070", "udp")
    assert codes(decoded) == {}


def test_non_sip_datagrams_are_malformed_sip_only_on_sip_ports(tmp_path):
    frames = [udp_frame(UE, SRV, 6070, 6070, b"\x00\x01\x00\x00 not sip")]
    _, plain = run(tmp_path, frames)
    assert codes(plain) == {}
    _, told = run(tmp_path, frames, options=DecodeOptions(sip_ports=frozenset({5060, 5061, 6070})))
    assert codes(told) == {"malformed-sip": 1}
    assert told.diagnostics.records[0].frames == (1,)


def test_rtp_looking_udp_gives_nothing_and_no_diagnostics(tmp_path):
    rtp = [udp_frame(UE, SRV, 40000 + 2 * (i % 3), 50000, bytes([0x80, 0x08]) + i.to_bytes(2, "big")
                     + bytes(168)) for i in range(30)]
    rtcp = udp_frame(UE, SRV, 40001, 50001, b"\x81\xc8\x00\x0c" + bytes(48))
    keepalive = udp_frame(UE, SRV, 5060, 5060, b"\r\n\r\n")  # RFC 5626 CRLF ping: no message, no anomaly
    items, decoded = run(tmp_path, [*rtp, rtcp, keepalive])
    assert items == []
    assert codes(decoded) == {}
    assert decoded.stats.packets == 32


def test_non_sip_datagram_on_5060_is_reported_and_the_next_message_decoded(tmp_path):
    frames = [udp_frame(UE, SRV, 5060, 5060, INVITE),
              udp_frame(SRV, UE, 5060, 5060, b"\x01\x02\x03\x04 this is not SIP"),
              udp_frame(SRV, UE, 5060, 5060, OK)]
    items, decoded = run(tmp_path, frames)
    assert summary(items) == [(1, "INVITE", "call-1"), (3, 200, "call-1")]
    assert codes(decoded) == {"malformed-sip": 1}
    (bad,) = decoded.diagnostics.records
    assert bad.frames == (2,) and "5060" in bad.message


# -- IP fragments -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("order", ["in-order", "reversed"])
def test_fragmented_sip_over_udp_is_numbered_by_its_last_fragment(tmp_path, version, order):
    src, dst = (UE, SRV) if version == 4 else (UE6, SRV6)
    datagram = udp(5060, 5060, INVITE)
    split = ipv4_fragments if version == 4 else ipv6_fragments
    fragments = [ether(f) for f in split(src, dst, 17, datagram, 232)]
    assert len(fragments) == 3
    if order == "reversed":
        fragments.reverse()
    reply = udp_frame(dst, src, 5060, 5060, OK)
    items, decoded = run(tmp_path, [*fragments, reply])
    assert summary(items) == [(3, "INVITE", "call-1"), (4, 200, "call-1")]
    invite = items[0]
    assert invite.frames == (1, 2, 3) and invite.time == pytest.approx(time_of(3))
    assert invite.body == INVITE.split(b"\r\n\r\n", 1)[1]
    expected_src = "10.0.0.1:5060" if version == 4 else "[2001:db8::1]:5060"
    assert invite.src == expected_src
    assert codes(decoded) == {}


def test_ipv6_extension_header_before_udp(tmp_path):
    datagram = udp(5060, 5060, INVITE)
    dest_opts = bytes([17, 0]) + bytes(6)  # next header UDP, 8 bytes of padding options
    fixed = ip(UE6, SRV6, 17, b"")  # only its addresses are reused
    header = (b"\x60\x00\x00\x00" + (len(dest_opts) + len(datagram)).to_bytes(2, "big") + bytes((60, 64))
              + fixed[8:40])
    items, decoded = run(tmp_path, [ether(header + dest_opts + datagram)])
    assert summary(items) == [(1, "INVITE", "call-1")] and items[0].src == "[2001:db8::1]:5060"
    assert codes(decoded) == {}


def test_missing_fragment_is_reported_not_decoded(tmp_path):
    fragments = [ether(f) for f in ipv4_fragments(UE, SRV, 17, udp(5060, 5060, INVITE), 232)]
    items, decoded = run(tmp_path, [fragments[0], fragments[2], udp_frame(SRV, UE, 5060, 5060, OK)])
    assert summary(items) == [(3, 200, "call-1")]
    assert codes(decoded) == {"fragment-incomplete": 1}
    assert decoded.diagnostics.records[0].frames == (1, 2)


# -- tunnels and link layers --------------------------------------------------------------------------------

INNER = udp_ip("10.9.0.1", "10.9.0.2", 5060, 5060, INVITE)
INNER6 = udp_ip("fd00:9::1", "fd00:9::2", 5060, 5060, INVITE)


@pytest.mark.parametrize("outer, src", [
    (udp_frame("192.0.2.1", "192.0.2.2", 2152, 2152, gtpu(INNER)), "10.9.0.1:5060"),
    (udp_frame("192.0.2.1", "192.0.2.2", 40123, 2152, gtpu(INNER6)), "[fd00:9::1]:5060"),
    (ether(ip("192.0.2.1", "192.0.2.2", 47, gre(INNER))), "10.9.0.1:5060"),
    (ether(ip("2001:db8::a", "2001:db8::b", 47, gre(INNER))), "10.9.0.1:5060"),
    (ether(ip("192.0.2.1", "192.0.2.2", 4, INNER)), "10.9.0.1:5060"),
    (ether(ip("192.0.2.1", "192.0.2.2", 41, INNER6)), "[fd00:9::1]:5060"),
    (ether(INNER, vlans=(100,)), "10.9.0.1:5060"),
    (ether(INNER6, vlans=(100, 200)), "[fd00:9::1]:5060"),  # QinQ
], ids=["gtpu", "gtpu-ipv6-inner", "gre", "gre-over-ipv6", "ipip", "ipv6-in-ipv4", "vlan", "qinq"])
def test_sip_inside_tunnels_and_vlans_is_found_with_its_inner_addresses(tmp_path, outer, src):
    items, decoded = run(tmp_path, [outer])
    assert summary(items) == [(1, "INVITE", "call-1")]
    assert items[0].src == src and items[0].transport == "udp"
    assert codes(decoded) == {}


def test_sip_100_trying_inside_pptp_enhanced_gre_over_ppp(tmp_path):
    """Issue 13: a 100 Trying in GRE version 1 (RFC 2637) over PPP used to vanish without a word."""
    trying = sip_response(100, "Trying", "call-1")
    tunnel = ("203.0.113.1", "198.51.100.7")
    frames = [ether(ip(*tunnel, 47, enhanced_gre(ppp_frame(INNER), seq=1))),
              ether(ip(*tunnel[::-1], 47, enhanced_gre(
                  ppp_frame(udp_ip("10.9.0.2", "10.9.0.1", 5060, 5060, trying), address_control=False,
                            compress=True), seq=1, ack=1))),
              ether(ip(*tunnel, 47, enhanced_gre(b"", seq=None, ack=1)))]  # acknowledgement only
    items, decoded = run(tmp_path, frames)
    assert summary(items) == [(1, "INVITE", "call-1"), (2, 100, "call-1")]
    assert (items[1].src, items[1].dst) == ("10.9.0.2:5060", "10.9.0.1:5060")
    assert codes(decoded) == {}
    assert decoded.stats.accounting == {"signalling": 2, "media": 0, "other": 1, "diagnostic": 0}


def test_what_pptp_cannot_show_is_other_or_a_diagnostic_naming_it(tmp_path):
    tunnel = ("203.0.113.1", "198.51.100.7")
    lcp = ether(ip(*tunnel, 47, enhanced_gre(ppp_frame(b"\x01\x01\x00\x04", PPP_LCP))))
    mppe = ether(ip(*tunnel, 47, enhanced_gre(ppp_frame(b"\x90\x00" + bytes(60), PPP_CCP_DATA))))
    items, decoded = run(tmp_path, [lcp, mppe])
    assert items == [] and codes(decoded) == {"unsupported-encapsulation": 1}
    (diag,) = decoded.diagnostics.records
    assert diag.frames == (2,) and "PPP protocol 0x00fd (compressed" in diag.message
    assert decoded.stats.accounting == {"signalling": 0, "media": 0, "other": 1, "diagnostic": 1}


def test_ppp_link_type(tmp_path):
    items, decoded = run(tmp_path, [ppp_frame(INNER), ppp_frame(INNER6, PPP_IPV6, address_control=False)],
                         linktype=9)
    assert summary(items) == [(1, "INVITE", "call-1"), (2, "INVITE", "call-1")]
    assert codes(decoded) == {}


def test_linux_nflog(tmp_path):
    """LINKTYPE 239, as `tcpdump -i nflog:N` writes it; the frames tshark shows (test_accounting.py)."""
    reply = udp_ip(SRV6, UE6, 5060, 5060, OK)
    frames = [nflog_record(INNER), nflog_record(reply), nflog_record(b"\x00" * 28, family=7),
              nflog_record(INNER)[:30]]  # a log entry whose payload TLV runs past the (snapped) frame
    items, decoded = run(tmp_path, frames, linktype=239)
    assert summary(items) == [(1, "INVITE", "call-1"), (2, 200, "call-1")]
    assert items[1].src == "[2001:db8::2]:5060"
    assert codes(decoded) == {"malformed-packet": 1}
    assert decoded.stats.accounting == {"signalling": 2, "media": 0, "other": 1, "diagnostic": 1}


def test_tcp_over_vlan_is_reassembled(tmp_path):
    flow = Flow((UE, 40000), (SRV, 5060))
    frames = [flow.frame("a", flags=SYN, vlans=(7,)), flow.frame("b", flags=SYN | ACK, vlans=(7,))]
    frames += [flow.frame("a", INVITE[:200], vlans=(7,)), flow.frame("a", INVITE[200:], vlans=(7,))]
    items, decoded = run(tmp_path, frames)
    assert summary(items) == [(4, "INVITE", "call-1")] and items[0].frames == (3, 4)
    assert codes(decoded) == {}


def test_linux_cooked_capture(tmp_path):
    reply = udp_ip(SRV6, UE6, 5060, 5060, OK)
    items, decoded = run(tmp_path, [linux_sll(INNER), linux_sll(reply), linux_sll(b"\x00" * 28, 0x0806)],
                         linktype=113)
    assert summary(items) == [(1, "INVITE", "call-1"), (2, 200, "call-1")]
    assert items[1].src == "[2001:db8::2]:5060"
    assert codes(decoded) == {} and decoded.stats.packets == 3


def test_unknown_linktype_is_reported_once(tmp_path):
    items, decoded = run(tmp_path, [udp_frame(UE, SRV, 5060, 5060, INVITE)] * 3, linktype=147)
    assert items == []
    assert codes(decoded) == {"unknown-linktype": 1}
    (diag,) = decoded.diagnostics.records
    assert diag.frames == (1,) and "147" in diag.message
    assert decoded.stats.packets == 3


# -- damaged captures ---------------------------------------------------------------------------------------

def test_snap_length_cut_packet_is_reported(tmp_path):
    cut = udp_frame(UE, SRV, 5060, 5060, INVITE)
    path = tmp_path / "snaplen.pcap"
    write_records(path, [udp_frame(UE, SRV, 5060, 5060, BYE), (cut[:120], len(cut)),
                         udp_frame(SRV, UE, 5060, 5060, OK)], snaplen=120)
    items, decoded = run_file(path)
    assert [(m.frame, m.method or m.status) for m in items if m.frame != 2] == [(1, "BYE"), (3, 200)]
    snap = [d for d in decoded.diagnostics.records if d.code == "snaplen-cut"]
    assert len(snap) == 1 and snap[0].frames == (2,)
    assert f"120 of {len(cut)}" in snap[0].message
    assert decoded.stats.packets == 3


def test_truncated_last_packet_is_reported_after_all_earlier_messages(tmp_path):
    frames = [udp_frame(UE, SRV, 5060, 5060, INVITE), udp_frame(SRV, UE, 5060, 5060, OK),
              udp_frame(UE, SRV, 5060, 5060, BYE)]
    path = tmp_path / "truncated.pcap"
    path.write_bytes(pcap_bytes(frames)[:-40])
    items, decoded = run_file(path)
    assert summary(items) == [(1, "INVITE", "call-1"), (2, 200, "call-1")]
    assert codes(decoded) == {"truncated-packet": 1}
    assert decoded.diagnostics.records[0].frames == (3,)
    assert decoded.stats.packets == 2


# -- TLS and HTTP -------------------------------------------------------------------------------------------

def test_tls_client_hello_gives_its_server_name(tmp_path):
    flow = Flow((UE, 40100), (SRV, 443))
    hello = records(built_hello(sni_extension(b"cms.mcx.example")))
    frames = [*flow.handshake(), flow.frame("a", hello),
              flow.frame("b", b"\x16\x03\x03\x00\x30" + bytes(48)),  # ServerHello and on: opaque
              flow.frame("a", b"\x17\x03\x03\x00\x20" + bytes(32))]
    items, decoded = run(tmp_path, frames)
    assert items == [TlsHello(4, time_of(4), "10.0.0.1:40100", "10.0.0.2:443", "cms.mcx.example")]
    assert decoded.stats.tls_hellos == 1 and decoded.stats.sip_messages == 0
    assert codes(decoded) == {}


GET = b"GET /xcap-root/users/sip:alice@mcx.example/profile.xml HTTP/1.1\r\nHost: cms.mcx.example\r\n\r\n"
PROFILE = b"<mcptt-user-profile/>\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.3gpp.mcptt-user-profile+xml\r\n"
            b"Content-Length: " + str(len(PROFILE)).encode() + b"\r\n\r\n" + PROFILE)


def test_http_on_8080_pairs_keep_alive_responses_with_their_requests(tmp_path):
    flow = Flow((UE, 40200), (SRV, 8080))
    frames = [*flow.handshake(),
              flow.frame("a", GET),  # 4
              flow.frame("b", RESPONSE),  # 5
              flow.frame("a", GET.replace(b"\r\n\r\n", b"\r\nIf-None-Match: \"1\"\r\n\r\n")),  # 6
              flow.frame("b", RESPONSE[:50]),  # 7
              flow.frame("b", RESPONSE[50:])]  # 8
    items, decoded = run(tmp_path, frames)
    assert [(m.frame, m.kind, m.method or m.status, m.reply_to) for m in items] == [
        (4, "request", "GET", None), (5, "response", 200, 4), (6, "request", "GET", None),
        (8, "response", 200, 6)]
    assert {m.proto for m in items} == {"http"}
    assert items[0].uri == "/xcap-root/users/sip:alice@mcx.example/profile.xml"
    assert items[3].frames == (7, 8) and items[3].body == PROFILE
    assert items[3].content_type == "application/vnd.3gpp.mcptt-user-profile+xml"
    assert (items[1].src, items[1].dst) == ("10.0.0.2:8080", "10.0.0.1:40200")
    assert decoded.stats.http_messages == 4 and decoded.stats.sip_messages == 0
    assert codes(decoded) == {}


def test_stats_count_every_packet_and_each_kind_of_item(tmp_path):
    sip = Flow((UE, 40000), (SRV, 5060))
    web = Flow((UE, 40200), (SRV, 80))
    tls = Flow((UE, 40100), (SRV, 443))
    frames = [
        *sip.handshake(), *web.handshake(), *tls.handshake(),  # 9 packets, no payload
        sip.frame("a", INVITE + BYE),  # two SIP messages
        udp_frame(UE, SRV, 5060, 5060, sip_request("OPTIONS", "opt-1")),
        *(udp_frame(UE, SRV, 40000, 50000, b"\x80\x08" + bytes(170)) for _ in range(20)),  # RTP
        web.frame("a", GET), web.frame("b", RESPONSE),
        tls.frame("a", records(built_hello(sni_extension(b"idms.mcx.example")))),
        sip.frame("b", OK),
    ]
    items, decoded = run(tmp_path, frames)
    stats = decoded.stats
    assert (stats.packets, stats.sip_messages, stats.http_messages, stats.tls_hellos) == (
        len(frames), 4, 2, 1)
    assert stats.bytes_read == (tmp_path / "crafted.pcap").stat().st_size
    assert sum(isinstance(i, Message) for i in items) == 6
    assert [i.frame for i in items] == sorted(i.frame for i in items)  # capture order
    assert codes(decoded) == {}


@pytest.mark.skipif(not parallel.available(), reason="the worker process needs fork (Linux)")
@pytest.mark.parametrize("damage", ["intact", "truncated"])
def test_worker_process_gives_what_one_process_gives(tmp_path, monkeypatch, damage):
    """Big captures decode their transport stage in a forked worker: same items, stats and diagnostics."""
    flow = Flow((UE, 40000), (SRV, 5060))
    web = Flow((UE, 40200), (SRV, 8080))
    handshake = flow.handshake()
    pieces = flow.pieces("a", INVITE, [200, 400])
    frames = [*handshake, pieces[2], pieces[0], pieces[1], *web.handshake(), web.frame("a", GET),
              udp_frame(UE, SRV, 5060, 5060, b"\x01not sip"),
              *(udp_frame(UE, SRV, 40000, 50000, b"\x80\x08" + bytes(170)) for _ in range(300)),
              *(udp_frame(UE, SRV, 5060, 5060, sip_request("OPTIONS", f"o-{i}")) for i in range(300)),
              *(ether(f) for f in ipv4_fragments(UE, SRV, 17, udp(5060, 5060, INVITE), 232)),
              web.frame("b", RESPONSE), flow.frame("b", OK)]
    path = tmp_path / "big.pcap"
    data = pcap_bytes(frames)
    path.write_bytes(data[:-30] if damage == "truncated" else data)

    def full(workers):
        result = decode(str(path), DecodeOptions(workers=workers))
        items = list(result.items)
        return items, result.stats, result.diagnostics

    alone = full(1)
    monkeypatch.setattr(dpkt_engine, "PARALLEL_MIN_BYTES", 0)
    forked = full(2)
    assert forked[0] == alone[0] and len(alone[0]) == (304 if damage == "truncated" else 305)
    assert forked[1] == alone[1]
    assert forked[2].summary() == alone[2].summary() != {}
    assert sorted(forked[2].records, key=repr) == sorted(alone[2].records, key=repr)


def test_stun_keepalive_on_the_sip_port_is_not_malformed_sip(tmp_path):
    """RFC 5626 keep-alives over UDP may be STUN binding requests: they carry no SIP and are no error."""
    stun = b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"\x01" * 12
    path = tmp_path / "stun.pcap"
    write_pcap(path, [udp_frame("10.0.0.1", "10.0.0.2", 5060, 5060, stun),
                      udp_frame("10.0.0.1", "10.0.0.2", 5060, 5060, SIP_REGISTER)])
    decoded = decode(str(path))
    assert [m.method for m in decoded.items] == ["REGISTER"]
    assert decoded.diagnostics.total == 0


def test_idle_tcp_connection_is_flushed_and_its_next_message_still_decoded(tmp_path):
    """Connections idle past the timeout are forgotten (flat memory); the flow is picked up again at
    its next start line, and nothing complete is lost."""
    idle, busy = Flow((UE, 40000), (SRV, 5060)), Flow((UE, 40001), (SRV, 5060))
    timed = [(0.0, f) for f in idle.handshake()]
    timed += [(0.1, idle.frame("a", INVITE)), (0.2, idle.frame("b", OK)),
              (200.0, busy.frame("a", sip_request("OPTIONS", "opt-1"))),  # the sweep now forgets `idle`
              (300.0, idle.frame("a", BYE))]
    path = tmp_path / "idle.pcap"
    with open(path, "wb") as fh:
        writer = dpkt.pcap.Writer(fh)
        for when, frame in timed:
            writer.writepkt(frame, ts=1_700_000_000 + when)
    demux = Demux(Diagnostics(), tcp_idle_timeout=120)
    reader = open_capture(path, demux.diag)
    items, live = [], []
    for payload in demux.run(reader):
        items.append(to_message(payload)[0])
        live.append(demux.followed)
    assert [(m.method or m.status, m.call_id) for m in items] == [
        ("INVITE", "call-1"), (200, "call-1"), ("OPTIONS", "opt-1"), ("BYE", "call-1")]
    assert live == [1, 1, 1, 2]  # `idle` was forgotten when OPTIONS came, then picked up again at BYE
    assert demux.diag.total == 0


def test_over_the_bytes_cap_retransmission_histories_go_before_any_connection(tmp_path):
    """Complete messages leave only their retransmission history behind: over ``tcp_buffered_bytes`` that
    goes (least recently active connection first), and no connection is evicted."""
    flows = [Flow((UE, 40000 + i), (SRV, 5060)) for i in range(3)]
    frames = [f for flow in flows for f in flow.handshake()]
    for n in range(10):  # each message in two segments, the connections taking turns
        halves = [flow.pieces("a", sip_request("MESSAGE", f"m{i}-{n}", body=b"x" * 3000), [1600])
                  for i, flow in enumerate(flows)]
        frames += [h[0] for h in halves] + [h[1] for h in halves]

    def decoded_with(cap: int):
        limits = DEFAULT_LIMITS.with_overrides([f"tcp_buffered_bytes={cap}"])
        return run(tmp_path, frames, options=DecodeOptions(limits=limits))

    items, decoded = decoded_with(40_000)  # three half messages fit, the histories do not
    assert len(items) == 30 and decoded.diagnostics.total == 0
    items, decoded = decoded_with(4_000)  # not even three half messages: connections go
    assert codes(decoded)["table-full"] > 0 and len(items) < 30
    assert "held over 4000 bytes together (--limit tcp_buffered_bytes=4000 raises the cap)" in \
        decoded.diagnostics.records[0].message
