"""GRE (plain, TEB, ERSPAN II/III, MPLS, PPTP's enhanced GRE with PPP) and GTP-U decapsulation."""

import pytest

from analyzer.capture.link import BadFrame, CannotFollow
from analyzer.transport.tunnels import gre, gtpu
from tests.encapsulations import PPP_CCP_DATA, PPP_IPV6, PPP_LCP, enhanced_gre, ppp
from tests.packets import ether, ip, udp

INNER = ip("10.1.0.1", "10.1.0.2", 17, udp(5060, 5060, b"OPTIONS sip:x SIP/2.0\r\n\r\n"))


def test_gre_ip_with_key_and_sequence():
    header = b"\x30\x00\x08\x00" + b"\x00\x00\x00\x2a" + b"\x00\x00\x00\x01"
    assert gre(header + INNER) == ("ip", 4, INNER)


def test_gre_transparent_ethernet_bridging():
    frame = ether(INNER)
    assert gre(b"\x00\x00\x65\x58" + frame) == ("ethernet", frame)


def test_erspan_type2_and_type3():
    frame = ether(INNER)
    type2 = b"\x10\x00\x88\xbe" + b"\x00\x00\x00\x05" + b"\x10\x01\x00\x00\x00\x00\x00\x00"
    assert gre(type2 + frame) == ("ethernet", frame)
    type3 = b"\x10\x00\x22\xeb" + b"\x00\x00\x00\x05" + b"\x20\x01\x00\x00" + b"\x00" * 7 + b"\x00"
    assert gre(type3 + frame) == ("ethernet", frame)
    type3_sub = b"\x10\x00\x22\xeb" + b"\x00\x00\x00\x05" + b"\x20\x01\x00\x00" + b"\x00" * 7 + b"\x01" \
        + b"\x00" * 8
    assert gre(type3_sub + frame) == ("ethernet", frame)


def test_gre_mpls():
    label = ((100 << 4) | 1).to_bytes(3, "big") + b"\x40"  # bottom of stack
    assert gre(b"\x00\x00\x88\x47" + label + INNER) == ("ip", 4, INNER)


# -- enhanced GRE (RFC 2637, PPTP) carrying PPP --------------------------------------------------------------

@pytest.mark.parametrize("seq,ack", [(1, None), (7, 6), (None, None)], ids=["seq", "seq-ack", "neither"])
@pytest.mark.parametrize("address_control,compress", [(True, False), (False, True)],
                         ids=["full-ppp-header", "acfc-pfc"])
def test_enhanced_gre_ppp_ipv4(seq, ack, address_control, compress):
    packet = enhanced_gre(ppp(INNER, address_control=address_control, compress=compress), seq=seq, ack=ack)
    assert gre(packet) == ("ip", 4, INNER)


def test_enhanced_gre_ppp_ipv6_and_trailing_bytes_past_the_key_length():
    inner6 = ip("2001:db8::1", "2001:db8::2", 17, udp(5060, 5060, b"OPTIONS sip:x SIP/2.0\r\n\r\n"))
    assert gre(enhanced_gre(ppp(inner6, PPP_IPV6))) == ("ip", 6, inner6)
    assert gre(enhanced_gre(ppp(INNER)) + b"\x00" * 6) == ("ip", 4, INNER)  # e.g. Ethernet padding


def test_enhanced_gre_without_ip_inside():
    assert gre(enhanced_gre(b"", seq=None, ack=3)) is None  # acknowledgement only
    assert gre(enhanced_gre(ppp(b"\x01\x01\x00\x04", PPP_LCP))) is None  # LCP Configure-Request
    assert gre(b"\x30\x01\x08\x00" + b"\x00" * 8 + INNER) is None  # version 1 with another protocol
    assert gre(b"\x00\x02\x08\x00" + INNER) is None  # GRE version 2 does not exist


def test_enhanced_gre_compressed_ppp_cannot_be_followed():
    with pytest.raises(CannotFollow, match="0x00fd"):
        gre(enhanced_gre(ppp(b"\x90\x00" + bytes(40), PPP_CCP_DATA)))


@pytest.mark.parametrize("packet", [b"\x30\x01", b"\x10\x01\x88\x0b" + b"\x00" * 12,
                                    enhanced_gre(ppp(INNER), ack=1)[:14], b"\x30\x00\x08\x00\x00"],
                         ids=["header", "v1-without-key", "v1-ack-cut", "v0-key-cut"])
def test_gre_headers_cut_short_or_without_their_key_are_malformed(packet):
    with pytest.raises(BadFrame):
        gre(packet)


def test_gtpu_plain_and_with_extension_header():
    plain = b"\x30\xff" + len(INNER).to_bytes(2, "big") + b"\x00\x00\x00\x01" + INNER
    assert gtpu(plain) == ("ip", 4, INNER)
    # E flag: seq(2) n-pdu(1) next-ext=0x85 (PDU session container), one 4-byte extension, then none
    ext = b"\x34\xff\x00\x00\x00\x00\x00\x01" + b"\x00\x00\x00\x85" + b"\x01\x10\x05\x00"
    assert gtpu(ext + INNER) == ("ip", 4, INNER)


def test_gtpu_signalling_messages_carry_no_ip():
    echo = b"\x32\x01\x00\x04\x00\x00\x00\x00\x00\x01\x00\x00"
    assert gtpu(echo) is None
