"""IPv4/IPv6 headers, extension headers and fragment reassembly."""

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.ip import BadIp, FragmentReassembler, parse_ip
from tests.packets import ip, ipv4_fragments, ipv6_fragments, udp

PAYLOAD = udp(5060, 5060, b"INVITE sip:bob@x SIP/2.0\r\n" + b"a" * 3000)


def test_ipv4_trims_ethernet_padding():
    pkt = ip("10.0.0.1", "10.0.0.2", 17, b"abcd") + b"\x00" * 10
    parsed = parse_ip(4, pkt, 0)
    assert parsed.payload == b"abcd" and parsed.proto == 17 and parsed.frag_id is None


def test_ipv6_extension_headers_are_skipped():
    inner = b"xyz!"
    hop = bytes((60, 0)) + b"\x00" * 6  # hop-by-hop → destination options
    dst = bytes((17, 0)) + b"\x00" * 6  # destination options → UDP
    body = hop + dst + inner
    pkt = b"\x60\x00\x00\x00" + len(body).to_bytes(2, "big") + bytes((0, 64)) + b"\x20" + b"\x00" * 15 \
        + b"\x20" + b"\x00" * 14 + b"\x01" + body
    parsed = parse_ip(6, pkt, 0)
    assert parsed.proto == 17 and parsed.payload == inner


def test_truncated_headers_raise():
    with pytest.raises(BadIp):
        parse_ip(4, b"\x45\x00\x00", 0)
    with pytest.raises(BadIp):
        parse_ip(6, b"\x60" + b"\x00" * 20, 0)


@pytest.mark.parametrize("split", [ipv4_fragments, ipv6_fragments])
@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_fragments_reassemble_in_any_order(split, order):
    src, dst = ("10.0.0.1", "10.0.0.2") if split is ipv4_fragments else ("2001:db8::1", "2001:db8::2")
    pieces = split(src, dst, 17, PAYLOAD, 1232)
    assert len(pieces) == 3
    diag = Diagnostics()
    reasm = FragmentReassembler(diag)
    results = []
    for frame, index in enumerate(order, start=10):
        pkt = parse_ip(4 if ":" not in src else 6, pieces[index], 0)
        assert pkt.frag_id is not None
        results.append(reasm.add(pkt, frame, 1.0 + frame))
    assert results[:2] == [None, None]
    whole, frames = results[2]
    assert whole.payload == PAYLOAD and whole.proto == 17 and whole.frag_id is None
    assert frames == (10, 11, 12)
    reasm.close()
    assert diag.total == 0


def test_incomplete_fragments_are_reported_at_close_and_timeout():
    diag = Diagnostics()
    reasm = FragmentReassembler(diag, timeout=5)
    first = ipv4_fragments("10.0.0.1", "10.0.0.2", 17, PAYLOAD, 1232, ident=1)[0]
    other = ipv4_fragments("10.0.0.1", "10.0.0.2", 17, PAYLOAD, 1232, ident=2)[0]
    assert reasm.add(parse_ip(4, first, 0), 1, 0.0) is None
    assert reasm.add(parse_ip(4, other, 0), 2, 100.0) is None  # ident 1 is now long expired
    assert diag.counts["fragment-incomplete"] == 1 and diag.records[0].frames == (1,)
    reasm.close()
    assert diag.counts["fragment-incomplete"] == 2
