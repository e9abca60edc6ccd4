"""GRE (plain, TEB, ERSPAN II/III) and GTP-U decapsulation."""

from analyzer.transport.tunnels import gre, gtpu
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


def test_gre_version_1_is_not_ip():
    assert gre(b"\x30\x01\x88\x0b" + b"\x00" * 8) is None


def test_gtpu_plain_and_with_extension_header():
    plain = b"\x30\xff" + len(INNER).to_bytes(2, "big") + b"\x00\x00\x00\x01" + INNER
    assert gtpu(plain) == ("ip", 4, INNER)
    # E flag: seq(2) n-pdu(1) next-ext=0x85 (PDU session container), one 4-byte extension, then none
    ext = b"\x34\xff\x00\x00\x00\x00\x00\x01" + b"\x00\x00\x00\x85" + b"\x01\x10\x05\x00"
    assert gtpu(ext + INNER) == ("ip", 4, INNER)


def test_gtpu_signalling_messages_carry_no_ip():
    echo = b"\x32\x01\x00\x04\x00\x00\x00\x00\x00\x01\x00\x00"
    assert gtpu(echo) is None
