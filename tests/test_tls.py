"""TLS ClientHello → SNI: real hellos from OpenSSL, hand-built edge cases, hostile bytes."""

from __future__ import annotations

import random
import ssl

import pytest

from analyzer.transport.buffer import NEED_DATA
from analyzer.transport.records import TlsHello
from analyzer.transport.tls import (
    ClientHello,
    ClientHelloReader,
    TlsFormatError,
    client_hello_sni,
    is_tls_record,
    parse_client_hello,
)
from tests.feeding import FRAME, TIME, Wire, feed_three_ways

C, S = "10.0.0.1:40000", "10.0.0.2:443"
SNI = "cms.mcptt.example.org"


def openssl_hello(server_name: str | None) -> bytes:
    """The ClientHello this Python's OpenSSL sends (one record), read from a memory BIO."""
    ctx = ssl.create_default_context()
    if server_name is None:
        ctx.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return outgoing.read()


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def built_hello(extensions: bytes | None) -> bytes:
    """A minimal ClientHello handshake message (no record header)."""
    body = b"\x03\x03" + bytes(32) + b"\x00" + u16(2) + b"\x13\x01" + b"\x01\x00"
    if extensions is not None:
        body += u16(len(extensions)) + extensions
    return b"\x01" + len(body).to_bytes(3, "big") + body


def sni_extension(name: bytes, name_type: int = 0) -> bytes:
    entry = bytes([name_type]) + u16(len(name)) + name
    return u16(0) + u16(len(entry) + 2) + u16(len(entry)) + entry


def records(handshake: bytes, size: int = 1 << 14) -> bytes:
    """Wrap handshake bytes in TLS records of at most ``size`` bytes each."""
    out = b""
    for i in range(0, len(handshake), size):
        part = handshake[i:i + size]
        out += b"\x16\x03\x01" + u16(len(part)) + part
    return out


GREASE = u16(0x0A0A) + u16(0)
VERSIONS = u16(43) + u16(3) + b"\x02\x03\x04"


# -- the pure parser ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("hello, sni", [
    (openssl_hello(SNI), SNI),
    (openssl_hello(None), None),
    (records(built_hello(GREASE + sni_extension(b"a.example") + VERSIONS)), "a.example"),
    (records(built_hello(VERSIONS)), None),
    (records(built_hello(None)), None),  # no extensions block at all
    (records(built_hello(sni_extension(b"x", name_type=7))), None),  # not a host_name entry
], ids=["openssl", "openssl-no-sni", "built", "built-no-sni", "no-extensions", "other-name-type"])
def test_sni(hello, sni):
    assert client_hello_sni(hello) == sni
    assert parse_client_hello(hello) == ClientHello(sni, len(hello))
    assert client_hello_sni(hello + b"\x14\x03\x03\x00\x01\x01") == sni  # what follows does not matter
    for cut in range(len(hello)):
        assert client_hello_sni(hello[:cut]) is NEED_DATA


def test_hello_split_over_records():
    handshake = built_hello(sni_extension(SNI.encode()) + VERSIONS)
    data = records(handshake, size=17)
    assert data.count(b"\x16\x03\x01") >= 4
    assert parse_client_hello(data) == ClientHello(SNI, len(data))
    for cut in range(len(data)):
        assert parse_client_hello(data[:cut]) is NEED_DATA


@pytest.mark.parametrize("data, why", [
    (b"\x17\x03\x03\x00\x05hello", "record type 23"),
    (b"\x16\x03\x07\x00\x05hello", "record version 3.7"),
    (b"\x16\x03\x01\x00\x00", "record length 0"),
    (records(b"\x02\x00\x00\x04abcd"), "not ClientHello"),
    (records(built_hello(sni_extension(b"caf\xc3\xa9.example"))), "not ASCII"),
    (records(built_hello(u16(0) + u16(50) + b"short")), "truncated"),
    (records(built_hello(VERSIONS) + b"\x01\x02"), "after the extensions"),
])
def test_malformed_hellos_raise_the_one_error(data, why):
    if why == "after the extensions":  # stretch the handshake length over the two extra bytes
        hs = bytearray(built_hello(VERSIONS) + b"\x01\x02")
        hs[1:4] = (len(hs) - 4).to_bytes(3, "big")
        data = records(bytes(hs))
    with pytest.raises(TlsFormatError, match=why):
        parse_client_hello(data)


def test_hostile_bytes_never_raise_anything_else():
    rng = random.Random(1)
    good = openssl_hello(SNI)
    for i in range(3000):
        if i % 2:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
            data = b"\x16\x03\x01" + data if i % 4 == 1 else data
        else:
            data = bytearray(good)
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            data = bytes(data[:rng.randrange(len(data) + 1)])
        try:
            result = parse_client_hello(data)
        except TlsFormatError:
            continue
        assert result is NEED_DATA or isinstance(result, ClientHello)


def test_is_tls_record():
    assert is_tls_record(b"\x16\x03\x01") and is_tls_record(b"\x17\x03\x03")
    assert not is_tls_record(b"\x16\x03") and not is_tls_record(b"INV") and not is_tls_record(b"\x16\x02\x00")


# -- the incremental reader ---------------------------------------------------------------------------------

def reader(diag):
    return ClientHelloReader(diag, C, S)


def test_reader_three_ways():
    hello = openssl_hello(SNI)
    diag = feed_three_ways(reader, hello, [TlsHello(FRAME, TIME, C, S, SNI)],
                           follow=b"\x14\x03\x03\x00\x01\x01" + b"\x17" * 5000)
    assert diag.total == 0


def test_reader_on_garbage_still_says_tls():
    garbage = b"\x16\x03\x01\x00\x10" + b"\xee" * 16
    diag = feed_three_ways(reader, garbage, [TlsHello(FRAME, TIME, C, S, None)])
    assert diag.summary() == {"malformed-tls": 1}


# -- over a connection -------------------------------------------------------------------------------------

def test_client_hello_in_one_segment():
    w = Wire(C, S)
    w.send(C, openssl_hello(SNI))
    assert w.out == [TlsHello(4, 0.4, C, S, SNI)]
    for _ in range(50):  # the rest of the connection is ignored, without buffering
        assert w.send(S, b"\x16\x03\x03" + bytes(1400)) == []
        assert w.send(C, b"\x17\x03\x03" + bytes(1400), seq=w.seq[C] + 5000) == []
    assert w.conn._sides[C].stream.held == (0, 0)
    w.send(C, flags=0x11)
    w.send(S, flags=0x11)
    assert w.conn.finished and w.conn.interesting
    assert w.codes() == {}


def test_client_hello_split_over_two_segments():
    hello = openssl_hello(SNI)
    w = Wire(C, S)
    w.send(C, hello[:300])
    assert w.out == []
    w.send(C, hello[300:])
    assert w.out == [TlsHello(5, 0.5, C, S, SNI)]


def test_client_hello_out_of_order_names_the_frame_that_completed_it():
    hello = openssl_hello(SNI)
    w = Wire(C, S)
    w.send_pieces(C, [hello[:3], hello[3:300], hello[300:]], order=[0, 2, 1])
    assert w.out == [TlsHello(6, 0.6, C, S, SNI)]  # the last byte came in frame 5, frame 6 completed it


def test_client_hello_without_sni():
    w = Wire(C, S)
    w.send(C, openssl_hello(None))
    assert w.out == [TlsHello(4, 0.4, C, S, None)] and w.codes() == {}


def test_random_bytes_as_tls():
    rng = random.Random(7)
    w = Wire(C, S)
    w.send(C, b"\x16\x03\x01\x02\x00\xee" + bytes(rng.getrandbits(8) for _ in range(200)))
    w.send(C, bytes(rng.getrandbits(8) for _ in range(400)))
    assert w.out == [TlsHello(4, 0.4, C, S, None)]  # handshake type 0xee: known bad at once
    assert w.codes() == {"malformed-tls": 1}


def test_tls_seen_from_the_middle():
    w = Wire(C, S, handshake=False)
    w.send(S, b"\x17\x03\x03\x00\x20" + bytes(32))
    assert w.out == [] and w.codes() == {"malformed-tls": 1}


def test_connection_ends_inside_the_hello():
    w = Wire(C, S)
    w.send(C, openssl_hello(SNI)[:100])
    w.close()
    assert w.out == [TlsHello(4, 0.4, C, S, None)]
    assert w.codes() == {"malformed-tls": 1}
