"""Link-layer decoders: where the IP packet starts for each LINKTYPE."""

import pytest

from analyzer.capture.link import LINK_DECODERS, ethernet
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
    assert LINK_DECODERS[101](b"\x20\x00") is None
