"""Link-layer decoders: where the IP packet starts for each LINKTYPE; a header cut short is an error."""

import struct

import pytest

from analyzer.capture.link import LINK_DECODERS, BadFrame, CannotFollow, ethernet, nflog, ppp
from tests.encapsulations import nflog as nflog_record
from tests.encapsulations import nflog_tlv
from tests.packets import ether, ip, udp

IP4 = ip("10.0.0.1", "10.0.0.2", 17, udp(5060, 5060, b"OPTIONS"))
IP6 = ip("2001:db8::1", "2001:db8::2", 17, udp(5060, 5060, b"OPTIONS"))


@pytest.mark.parametrize("l3,version", [(IP4, 4), (IP6, 6)])
def test_ethernet_plain_and_vlan_and_qinq(l3, version):
    for vlans in ((), (100,), (100, 200)):
        frame = ether(l3, vlans=vlans)
        assert ethernet(frame) == (version, 14 + 4 * len(vlans))
        assert frame[ethernet(frame)[1]:] == l3


def test_ethernet_qinq_with_8021ad_outer_tag():
    frame = b"\x00" * 12 + b"\x88\xa8\x00\x64" + b"\x81\x00\x00\xc8" + b"\x08\x00" + IP4
    assert ethernet(frame) == (4, 22)


def test_ethernet_non_ip_is_skipped():
    assert ethernet(b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28) is None  # ARP


def test_ethernet_mpls_label_stack():
    labels = (100 << 4).to_bytes(3, "big") + b"\x40" + ((200 << 4) | 1).to_bytes(3, "big") + b"\x40"
    frame = b"\x00" * 12 + b"\x88\x47" + labels + IP6
    assert ethernet(frame) == (6, 22)


def test_linux_sll_and_sll2():
    sll = b"\x00\x00\x00\x01\x00\x06" + b"\x00" * 8 + b"\x08\x00" + IP4
    assert LINK_DECODERS[113](sll) == (4, 16)
    sll2 = b"\x86\xdd\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01\x00\x06" + b"\x00" * 8 + IP6
    assert LINK_DECODERS[276](sll2) == (6, 20)


@pytest.mark.parametrize("family,order", [(2, "little"), (2, "big"), (30, "little"), (24, "big")])
def test_bsd_null_either_byte_order(family, order):
    l3 = IP4 if family == 2 else IP6
    assert LINK_DECODERS[0](family.to_bytes(4, order) + l3) == (4 if family == 2 else 6, 4)


def test_raw_ip_by_version_nibble():
    for linktype in (12, 14, 101, 228, 229):
        assert LINK_DECODERS[linktype](IP4)[0] == 4
        assert LINK_DECODERS[linktype](IP6)[0] == 6
    for bogus in (b"\x20\x00", b""):
        with pytest.raises(BadFrame, match="raw IP frame"):
            LINK_DECODERS[101](bogus)


@pytest.mark.parametrize("linktype,frame", [(1, b"\x00" * 13), (1, b"\x00" * 12 + b"\x81\x00\x00\x64"),
                                            (1, b"\x00" * 12 + b"\x88\x47\x00\x00"), (113, b"\x00" * 15),
                                            (276, b"\x86\xdd"), (0, b"\x02\x00"), (108, b""), (239, b"\x02")],
                         ids=["ethernet", "vlan", "mpls", "sll", "sll2", "null", "loop", "nflog"])
def test_headers_cut_short_are_malformed_not_silently_skipped(linktype, frame):
    with pytest.raises(BadFrame, match=r"cut short|runs past"):
        LINK_DECODERS[linktype](frame)


# -- PPP (RFC 1661/1662): PPPoE, LINKTYPE_PPP, and what enhanced GRE carries -----------------------------

@pytest.mark.parametrize("header,start", [(b"\xff\x03\x00\x21", 4), (b"\x00\x21", 2), (b"\xff\x03\x21", 3),
                                          (b"\x21", 1)],
                         ids=["address-control", "no-address-control", "compressed-protocol",
                              "both-compressed"])
def test_ppp_ipv4_with_or_without_address_control_and_protocol_compression(header, start):
    assert ppp(header + IP4) == (4, start)
    assert LINK_DECODERS[9](header + IP4) == (4, start)


def test_ppp_ipv6_and_pppoe_session():
    assert ppp(b"\xff\x03\x00\x57" + IP6) == (6, 4)
    pppoe = b"\x00" * 12 + b"\x88\x64" + b"\x11\x00\x00\x01\x00\x40" + b"\x00\x57" + IP6
    assert ethernet(pppoe) == (6, 22)


@pytest.mark.parametrize("proto", [0xC021, 0x8021, 0xC223, 0x80FD, 0x002B])
def test_ppp_control_and_other_network_protocols_carry_no_ip(proto):
    assert ppp(b"\xff\x03" + proto.to_bytes(2, "big") + b"\x01\x01\x00\x04") is None


@pytest.mark.parametrize("proto,what", [(b"\x00\xfd", "compressed"), (b"\xfd", "compressed"),
                                        (b"\x00\x2d", "Van Jacobson"), (b"\x00\x53", "encrypted")])
def test_ppp_compressed_or_encrypted_datagrams_cannot_be_followed(proto, what):
    with pytest.raises(CannotFollow, match=what):
        ppp(b"\xff\x03" + proto + b"\x00" * 20)


@pytest.mark.parametrize("frame", [b"\xff\x03", b"\xff\x03\x00", b"\xff\x03\x00\x20"],
                         ids=["no-protocol", "protocol-cut", "protocol-even"])
def test_ppp_malformed(frame):
    with pytest.raises(BadFrame):
        ppp(frame)


# -- Linux NFLOG (LINKTYPE 239) ----------------------------------------------------------------------------

def test_nflog_payload_after_other_tlvs():
    frame = nflog_record(IP4)
    version, start = nflog(frame)
    assert version == 4 and frame[start:start + len(IP4)] == IP4
    assert LINK_DECODERS[239](nflog_record(IP6))[0] == 6
    odd = bytes((2, 0, 0, 1)) + nflog_tlv(17, b"odd") + nflog_tlv(9, IP4)  # a 3-byte value, padded
    assert nflog(odd) == (4, 16)


@pytest.mark.parametrize("family,hw_protocol,version", [
    (2, 0, 4), (10, 0, 6), (7, 0x0800, 4), (10, 0x0800, 4), (7, 0, None), (0, 0, None), (2, 0x0806, None)],
    ids=["inet", "inet6", "bridge-hw-ipv4", "hw-wins", "bridge", "unspec", "hw-arp"])
def test_nflog_payload_is_what_the_hardware_protocol_or_else_the_family_says(family, hw_protocol, version):
    """tshark's rule, checked against it in test_accounting.py."""
    frame = bytes((family, 0, 0, 1)) + nflog_tlv(1, hw_protocol.to_bytes(2, "big") + b"\x03\x00") \
        + nflog_tlv(9, IP4)
    assert nflog(frame) == ((version, 16) if version else None)


def test_nflog_without_payload_carries_no_ip_and_flag_bits():
    assert nflog(bytes((2, 0, 0, 1)) + nflog_tlv(1, b"\x08\x00\x03\x00")) is None
    assert nflog(bytes((2, 0, 0, 1)) + nflog_tlv(0x8009, IP4)) == (4, 8)  # NLA_F_NESTED is not the type
    assert nflog(bytes((2, 0, 0, 1)) + nflog_tlv(0x4009, IP4)) is None  # as tshark: another type


def test_nflog_bad_tlv_length():
    with pytest.raises(BadFrame, match="length 2"):
        nflog(bytes((2, 0, 0, 1)) + struct.pack("<HH", 2, 9) + IP4)
    with pytest.raises(BadFrame, match="runs past"):
        nflog(bytes((2, 0, 0, 1)) + struct.pack("<HH", 200, 4) + b"\x00" * 8)
