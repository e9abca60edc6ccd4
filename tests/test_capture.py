"""Capture readers: crafted pcap/pcapng bytes (built by the small writers below) and the public corpus."""

from __future__ import annotations

import errno
import gzip
import io
import random
import shutil
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import dpkt
import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import CaptureFormatError, InputError
from analyzer.capture import Packet, open_capture, source

PUBLIC = Path("/work/shared/captures/public")
CAPTURES = sorted(p for p in PUBLIC.glob("*") if p.suffix in (".pcap", ".pcapng")) if PUBLIC.is_dir() else []

# -- writers -------------------------------------------------------------------------------------------------

PCAP_MAGIC = {(">", False): 0xA1B2C3D4, ("<", False): 0xA1B2C3D4, (">", True): 0xA1B23C4D,
              ("<", True): 0xA1B23C4D}


def pcap_bytes(records, order="<", nano=False, linktype=1, snaplen=65535, version=(2, 4)):
    """A classic pcap file; records are (seconds, fraction, data[, orig_len])."""
    out = [struct.pack(order + "IHHiIII", PCAP_MAGIC[order, nano], *version, 0, 0, snaplen, linktype)]
    for sec, frac, data, *orig in records:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig[0] if orig else len(data)) + data)
    return b"".join(out)


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def block(btype: int, body: bytes, order="<") -> bytes:
    body = pad4(body)
    length = 12 + len(body)
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def opts(order="<", **values) -> bytes:
    codes = {"if_tsresol": 9, "if_tsoffset": 14, "comment": 1}
    out = b"".join(struct.pack(order + "HH", codes[k], len(v)) + pad4(v) for k, v in values.items())
    return out + struct.pack(order + "HH", 0, 0) if out else out


def shb(order="<", major=1) -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, major, 0, -1), order)


def idb(linktype=1, snaplen=0, order="<", **options) -> bytes:
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts(order, **options), order)


def epb(ifid, ts, data, orig_len=None, order="<") -> bytes:
    body = struct.pack(order + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data),
                       len(data) if orig_len is None else orig_len)
    return block(6, body + pad4(data), order)


def pb(ifid, ts, data, order="<") -> bytes:
    body = struct.pack(order + "HHIIII", ifid, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    return block(2, body + pad4(data), order)


def spb(data, orig_len=None, order="<") -> bytes:
    return block(3, struct.pack(order + "I", len(data) if orig_len is None else orig_len) + pad4(data), order)


def frac_time(seconds_num, den=1) -> float:
    """The float nearest the exact timestamp: what the readers promise."""
    return float(Fraction(seconds_num, den))


def read_all(path):
    diag = Diagnostics()
    with open_capture(path, diag) as reader:
        packets = list(reader)
        meta = (reader.format, reader.compressed, reader.bytes_read)
    return packets, diag, meta


def write(tmp_path, name, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def codes(diag: Diagnostics) -> list[str]:
    return [d.code for d in diag.records]


def stop_of(path, chunk: int | None = None, fail_after: int | None = None):
    """Read a damaged capture whole: (packets, where reading stopped). ``fail_after``: the file fails
    with EIO once that many bytes have been read from it."""
    diag = Diagnostics()
    with open_capture(path, diag) as reader:
        if fail_after is not None:
            raw = reader._source._raw
            raw._f = FailingFile(raw._f, fail_after - raw.consumed)
        packets = list(reader)
    return packets, reader.stopped


class FailingFile:
    """A file whose reads fail with an I/O error after ``left`` more bytes (a dying disk, a lost mount)."""

    def __init__(self, f, left: int):
        self._f, self._left = f, left

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise OSError(errno.EIO, "Input/output error")
        data = self._f.read(self._left if n < 0 else min(n, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()


# -- pcap ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path, order, nano):
    unit = 10**9 if nano else 10**6
    recs = [(1_700_000_000, unit - 1, b"A" * 60), (1_700_000_001, 123, b"BB", 1500), (4_000_000_000, 0, b"")]
    p = write(tmp_path, "x.pcap", pcap_bytes(recs, order, nano, linktype=113))
    packets, diag, meta = read_all(p)
    assert meta == ("pcap", False, p.stat().st_size)
    assert not diag.records
    assert packets == [
        (1, frac_time(1_700_000_000 * unit + unit - 1, unit), 113, b"A" * 60, 60),
        (2, frac_time(1_700_000_001 * unit + 123, unit), 113, b"BB", 1500),
        (3, 4_000_000_000.0, 113, b"", 0),
    ]
    assert all(type(x) is tuple and type(x[1]) is float for x in packets)
    assert Packet(*packets[1]).orig_len == 1500


def test_pcap_ns_times_are_the_nearest_float(tmp_path):
    rng = random.Random(7)
    stamps = [(rng.randrange(1 << 32), rng.randrange(10**9)) for _ in range(2000)]
    raw = pcap_bytes([(s, f, b"") for s, f in stamps], nano=True)
    packets, _, _ = read_all(write(tmp_path, "n.pcap", raw))
    assert [p[1] for p in packets] == [frac_time(s * 10**9 + f, 10**9) for s, f in stamps]


def test_pcap_linktype_fcs_bits_are_masked(tmp_path):
    p = write(tmp_path, "fcs.pcap", pcap_bytes([(1, 0, b"x")], linktype=0x1400_0001))
    assert read_all(p)[0][0][2] == 1


def test_modified_pcap_records(tmp_path):
    header = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack("<IIII", 5, 6, 3, 9) + b"\0" * 8 + b"abc"
    packets, diag, _ = read_all(write(tmp_path, "m.pcap", header + rec + rec))
    assert packets == [(1, 5.000006, 1, b"abc", 9), (2, 5.000006, 1, b"abc", 9)] and not diag.records


def test_pcap_old_version_is_refused(tmp_path):
    p = write(tmp_path, "v.pcap", pcap_bytes([(1, 0, b"x")], version=(1, 0)))
    with pytest.raises(CaptureFormatError, match=r"unsupported version 1\.0"):
        open_capture(p, Diagnostics())


# -- pcapng --------------------------------------------------------------------------------------------------

def test_pcapng_sections_interfaces_and_byte_orders(tmp_path):
    data = (shb("<") + idb(1) + idb(113)
            + epb(0, 1_700_000_000_000_001, b"eth") + epb(1, 1_700_000_000_500_000, b"sll", 99)
            + shb(">") + idb(101, order=">")
            + epb(0, 1_700_000_001_000_000, b"raw", order=">"))
    packets, diag, meta = read_all(write(tmp_path, "a.pcapng", data))
    assert meta == ("pcapng", False, len(data))
    assert not diag.records
    assert packets == [
        (1, frac_time(1_700_000_000_000_001, 10**6), 1, b"eth", 3),
        (2, 1_700_000_000.5, 113, b"sll", 99),
        (3, 1_700_000_001.0, 101, b"raw", 3),
    ]


def test_pcapng_new_section_forgets_interfaces(tmp_path):
    data = (shb() + idb(1) + idb(113) + epb(1, 0, b"a")
            + shb(">") + idb(1, order=">") + epb(1, 0, b"b", order=">"))
    packets, diag, _ = read_all(write(tmp_path, "b.pcapng", data))
    assert [p[3] for p in packets] == [b"a"]
    (d,) = diag.records
    assert d.code == "bad-record" and d.frames == (2,)
    assert "interface 1 but the section defines 1" in d.message


def test_pcapng_ending_with_a_new_empty_section(tmp_path):
    """Two pcapng files concatenated, the second with no interface: the last time is read with the
    interfaces of the section its packet belongs to (this used to raise IndexError)."""
    diag = Diagnostics()
    with open_capture(write(tmp_path, "two.pcapng", shb() + idb(1) + epb(0, 5_000_000, b"abc") + shb()),
                      diag) as reader:
        assert list(reader) == [(1, 5.0, 1, b"abc", 3)]
    assert (reader.last_time, reader.packets, diag.records) == (5.0, 1, [])


def test_pcapng_tsresol_tsoffset(tmp_path):
    data = (shb() + idb(1, if_tsresol=b"\x09") + idb(1, if_tsresol=b"\x94")  # 10^-9 and 2^-20
            + idb(1, if_tsresol=b"\x03", if_tsoffset=struct.pack("<q", 1_000_000_000))
            + epb(0, 1_700_000_000_123_456_789, b"n") + epb(1, (1_700_000_000 << 20) + 3, b"p")
            + epb(2, 1_500, b"o"))
    packets, diag, _ = read_all(write(tmp_path, "r.pcapng", data))
    assert not diag.records
    assert [p[1] for p in packets] == [frac_time(1_700_000_000_123_456_789, 10**9),
                                       frac_time((1_700_000_000 << 20) + 3, 1 << 20),
                                       1_000_000_001.5]


def test_pcapng_times_that_are_not_dates_take_the_previous_packets_time(tmp_path):
    """Issue 14: if_tsresol/if_tsoffset may put a time beyond year 9999 (or before year 1); every packet,
    on the fast path (EPB) or not (PB), then takes the previous packet's time and says so."""
    huge = struct.pack("<q", 1 << 62)
    data = (shb() + idb(1) + idb(1, if_tsresol=b"\x00", if_tsoffset=huge)
            + epb(1, 5, b"a") + epb(0, 2_000_000, b"b") + epb(1, 0, b"c") + pb(1, 7, b"d") + spb(b"e")
            + idb(1, if_tsresol=b"\x80", if_tsoffset=struct.pack("<q", -(1 << 62))) + epb(2, 0, b"f"))
    packets, diag, _ = read_all(write(tmp_path, "wild.pcapng", data))
    assert [(p[0], p[1]) for p in packets] == [(1, 0.0), (2, 2.0), (3, 2.0), (4, 2.0), (5, 2.0), (6, 2.0)]
    assert [(d.code, d.frames) for d in diag.records] == [("bad-timestamp", (n,)) for n in (1, 3, 4, 6)]
    assert diag.records[0].message == ("timestamp 4.611686018427388e+18 is not a date in the years 1-9999; "
                                       "the previous packet's time (0.0) is used")
    with open_capture(tmp_path / "wild.pcapng", Diagnostics()) as reader:
        list(reader)
        assert reader.last_time == 2.0  # the progress display's time is never one of them


def test_pcapng_interfaces_per_section_are_capped(tmp_path, monkeypatch):
    """A file of nothing but interface blocks cannot grow the interface table without bound."""
    from analyzer.capture import pcapng

    monkeypatch.setattr(pcapng, "MAX_INTERFACES", 3)
    data = shb() + idb() + epb(0, 5, b"x") + idb() * 3 + epb(0, 6, b"y")
    packets, diag, _ = read_all(write(tmp_path, "idbs.pcapng", data))
    assert [p[3] for p in packets] == [b"x"]
    assert [d.message for d in diag.records] == [
        "block at byte offset 124 (after frame 1): section defines more than 3 interfaces; the rest of the "
        "file was not read"]


def test_pcapng_big_endian_tsresol(tmp_path):
    data = shb(">") + idb(1, order=">", if_tsresol=b"\x09") + epb(0, 10**9 + 7, b"x", order=">")
    packets, _, _ = read_all(write(tmp_path, "be.pcapng", data))
    assert packets == [(1, frac_time(10**9 + 7, 10**9), 1, b"x", 1)]


def test_pcapng_spb_pb_and_skipped_blocks(tmp_path):
    nrb = block(4, struct.pack("<HH", 0, 0))
    isb = block(5, struct.pack("<III", 0, 0, 0))
    custom = block(0x0BAD, struct.pack("<I", 32473) + b"vendor data")
    unknown = block(0x1234_5678, b"whatever")
    data = (shb() + nrb + idb(105, snaplen=4) + custom
            + spb(b"first", 9)  # before any timed packet: time 0.0; cut at snaplen 4
            + epb(0, 2_000_000, b"e") + unknown + spb(b"ab") + isb
            + pb(0, 3_000_000, b"old") + spb(b"xyz"))
    packets, diag, _ = read_all(write(tmp_path, "s.pcapng", data))
    assert not diag.records
    assert packets == [
        (1, 0.0, 105, b"firs", 9),
        (2, 2.0, 105, b"e", 1),
        (3, 2.0, 105, b"ab", 2),  # SPB: time of the previous packet
        (4, 3.0, 105, b"old", 3),
        (5, 3.0, 105, b"xyz", 3),
    ]


def test_pcapng_whole_file_big_endian(tmp_path):
    data = shb(">") + idb(1, order=">") + epb(0, 5, b"abc", order=">") + spb(b"de", order=">")
    packets, _, _ = read_all(write(tmp_path, "be.pcapng", data))
    assert packets == [(1, 5e-6, 1, b"abc", 3), (2, 5e-6, 1, b"de", 2)]


# -- chunking, gzip, magic -----------------------------------------------------------------------------------

def _sample_pcapng() -> bytes:
    return (shb() + idb(1) + b"".join(epb(0, i * 1000, bytes([i]) * (i * 7 % 300)) for i in range(60))
            + spb(b"tail") + pb(0, 99, b"x" * 70) + block(5, b"\0" * 12))


def _sample_pcap() -> bytes:
    return pcap_bytes([(i, i * 17, bytes([i]) * (i * 13 % 400)) for i in range(80)], ">", True)


@pytest.mark.parametrize("make", [_sample_pcap, _sample_pcapng], ids=["pcap", "pcapng"])
@pytest.mark.parametrize("chunk", [1, 3, 29, 1000])
def test_records_split_across_chunks(tmp_path, monkeypatch, make, chunk):
    p = write(tmp_path, "c", make())
    whole, _, _ = read_all(p)
    monkeypatch.setattr(source, "CHUNK", chunk)
    split, diag, _ = read_all(p)
    assert split == whole and len(whole) > 50 and not diag.records


@pytest.mark.parametrize("make", [_sample_pcap, _sample_pcapng], ids=["pcap", "pcapng"])
def test_gzip_and_magic_not_name(tmp_path, monkeypatch, make):
    raw = make()
    plain, _, _ = read_all(write(tmp_path, "plain.pcap", raw))
    for name in ("a.pcapng", "a.txt", "a"):  # names lie; magic decides
        p = write(tmp_path, name, gzip.compress(raw))
        packets, diag, (fmt, compressed, consumed) = read_all(p)
        assert packets == plain and compressed and consumed == p.stat().st_size and not diag.records
        assert fmt == ("pcapng" if raw.startswith(b"\x0a\x0d\x0d\x0a") else "pcap")
    # several gzip members with zero padding between them, read a byte at a time
    half = len(raw) // 2
    p = write(tmp_path, "members", gzip.compress(raw[:half]) + b"\0\0" + gzip.compress(raw[half:]))
    monkeypatch.setattr(source, "CHUNK", 1)
    assert read_all(p)[0] == plain


def test_reads_in_chunks_not_whole_file(tmp_path):
    rng = random.Random(3)
    raw = pcap_bytes([(0, 0, rng.randbytes(1000)) for _ in range(5000)])  # 5 MB that gzip cannot shrink
    plain = write(tmp_path, "big.pcap", raw)
    packed = write(tmp_path, "big.gz", gzip.compress(raw, 1))
    for p, bound in ((plain, source.CHUNK + 24), (packed, source.CHUNK + source.GZIP_INPUT)):
        with open_capture(p, Diagnostics()) as reader:
            next(iter(reader))
            assert reader.bytes_read <= bound < reader.size


def test_stdin(tmp_path, monkeypatch):
    raw = _sample_pcap()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(raw))))
    packets, _, (fmt, compressed, _) = read_all("-")
    assert (fmt, compressed) == ("pcap", True) and packets == read_all(write(tmp_path, "s", raw))[0]


# -- damage after the header: diagnostics, never exceptions -------------------------------------------------

def test_pcap_truncated_last_packet(tmp_path):
    raw = pcap_bytes([(1, 0, b"a" * 100), (2, 0, b"b" * 100), (3, 0, b"c" * 100)])
    packets, diag, _ = read_all(write(tmp_path, "t.pcap", raw[:-40]))
    assert [p[0] for p in packets] == [1, 2]
    (d,) = diag.records
    assert (d.code, d.frames) == ("truncated-packet", (3,))
    assert "frame 3 (byte offset 256) is cut short: 40 of its 100 captured bytes are missing" in d.message
    assert stop_of(tmp_path / "t.pcap")[1] == source.Stop(
        "truncated-packet", 2, 256, "frame 3 is cut short: 40 of its 100 captured bytes are missing")


def test_pcap_cut_inside_record_header(tmp_path):
    raw = pcap_bytes([(1, 0, b"a" * 10), (2, 0, b"b")])
    packets, diag, _ = read_all(write(tmp_path, "t.pcap", raw[:-11]))
    assert len(packets) == 1
    assert "frame 2" in diag.records[0].message and "record header (6 of 16 bytes)" in diag.records[0].message
    assert stop_of(tmp_path / "t.pcap")[1] == source.Stop(
        "truncated-packet", 1, 50,
        "frame 2 is cut short: the file ends inside its record header (6 of 16 bytes)")


def test_pcapng_truncated_last_packet(tmp_path):
    raw = shb() + idb(1) + epb(0, 1, b"a" * 40) + epb(0, 2, b"b" * 40)
    packets, diag, _ = read_all(write(tmp_path, "t.pcapng", raw[:-10]))
    assert len(packets) == 1
    (d,) = diag.records
    assert (d.code, d.frames) == ("truncated-packet", (2,))
    assert "frame 2 (enhanced packet block at byte offset 120) is cut short: 10 of its 72" in d.message
    assert stop_of(tmp_path / "t.pcapng")[1] == source.Stop(
        "truncated-packet", 1, 120,
        "frame 2 (enhanced packet block) is cut short: 10 of its 72 bytes are missing")


def test_pcapng_cut_inside_block_header_and_non_packet_block(tmp_path):
    base = shb() + idb(1) + epb(0, 1, b"a")
    _, diag, _ = read_all(write(tmp_path, "h.pcapng", base + b"\x06\0\0"))
    assert diag.records[0].code == "truncated-packet" and "block header" in diag.records[0].message
    _, diag, _ = read_all(write(tmp_path, "i.pcapng", base + block(5, b"\0" * 20)[:-8]))
    assert ("the file ends inside the interface statistics block at byte offset 84: 8 of its 32 bytes"
            in diag.records[0].message)
    assert stop_of(tmp_path / "i.pcapng")[1] == source.Stop(
        "truncated-packet", 1, 84,
        "the file ends inside the interface statistics block: 8 of its 32 bytes are missing")
    assert stop_of(tmp_path / "h.pcapng")[1] == source.Stop(
        "truncated-packet", 1, 84, "the file ends inside a block header (3 of 8 bytes)")


def test_pcap_garbage_length_mid_file(tmp_path):
    raw = pcap_bytes([(1, 0, b"a" * 50), (2, 0, b"b" * 50)])
    raw += struct.pack("<IIII", 3, 0, 0xFFFF_FFF0, 60) + b"c" * 200 + pcap_bytes([(4, 0, b"d")])[24:]
    packets, diag, _ = read_all(write(tmp_path, "g.pcap", raw))
    assert [p[0] for p in packets] == [1, 2]
    (d,) = diag.records
    assert (d.code, d.frames) == ("bad-record", (3,))
    assert "record at byte offset 156 claims 4294967280 captured bytes (limit 262144)" in d.message
    assert stop_of(tmp_path / "g.pcap")[1] == source.Stop(
        "bad-record", 2, 156, "the record of frame 3 claims 4294967280 captured bytes (limit 262144)")
    with open_capture(tmp_path / "g.pcap", Diagnostics()) as reader:
        list(reader)
    assert (reader.packets, reader.last_time) == (2, 2.0)  # counted up to the damage, not to the last chunk


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda b: b[:4] + struct.pack("<I", 34) + b[8:], "length 34 is not a multiple of 4"),
    (lambda b: b[:4] + struct.pack("<I", 24) + b[8:], "length 24 is below its minimum of 32"),
    (lambda b: b[:-4] + struct.pack("<I", 40), "length is 36 at its start but 40 at its end"),
    (lambda b: b[:4] + struct.pack("<I", 1 << 30) + b[8:], "exceeds the limit"),
    (lambda b: b[:8] + struct.pack("<I", 7) + b[12:], "names interface 7 but the section defines 1"),
    (lambda b: b[:20] + struct.pack("<I", 5) + b[24:], "captured length 5 does not fit in a block of 36"),
])
def test_pcapng_garbage_block_mid_file(tmp_path, damage, reason):
    good = epb(0, 1, b"good")
    raw = shb() + idb(1) + good + damage(epb(0, 2, b"bad!")) + good
    packets, diag, _ = read_all(write(tmp_path, "g.pcapng", raw))
    assert len(packets) == 1
    (d,) = diag.records
    assert d.code == "bad-record" and d.frames == (2,) and reason in d.message
    assert "byte offset 84" in d.message
    stopped = stop_of(tmp_path / "g.pcapng")[1]
    assert stopped[:3] == ("bad-record", 1, 84)
    with open_capture(tmp_path / "g.pcapng", Diagnostics()) as reader:
        assert len(list(reader)) == reader.packets == 1
    assert stopped.reason.startswith("frame 2 (enhanced packet block) is malformed: ")
    assert reason in stopped.reason


def test_pcapng_bad_later_section_header(tmp_path):
    raw = shb() + idb(1) + epb(0, 1, b"a") + shb(major=2) + epb(0, 1, b"b")
    packets, diag, _ = read_all(write(tmp_path, "v.pcapng", raw))
    assert len(packets) == 1 and "unsupported version 2.0" in diag.records[0].message
    raw = shb() + idb(1) + epb(0, 1, b"a") + shb()[:8] + b"XXXX" + shb()[12:]
    _, diag, _ = read_all(write(tmp_path, "m.pcapng", raw))
    assert "unknown byte-order magic (58 58 58 58)" in diag.records[0].message
    raw = shb() + idb(1, if_tsresol=b"\x06\x06")
    _, diag, _ = read_all(write(tmp_path, "o.pcapng", raw))
    assert "if_tsresol option has 2 bytes instead of 1" in diag.records[0].message


def test_gzip_cut_short_keeps_earlier_packets(tmp_path):
    raw = pcap_bytes([(i, 0, bytes([i % 256]) * 500) for i in range(2000)])
    packed = gzip.compress(raw)
    packets, diag, _ = read_all(write(tmp_path, "cut.gz", packed[: len(packed) // 2]))
    assert 0 < len(packets) < 2000 and [p[0] for p in packets] == list(range(1, len(packets) + 1))
    assert "bad-compression" in codes(diag)
    assert "gzip stream is cut short" in diag.records[0].message
    assert_gzip_stop(tmp_path / "cut.gz", len(packets), 516, "gzip stream is cut short")


def assert_gzip_stop(path, read: int, record: int, reason: str) -> None:
    """Reading a broken gzip capture stops after the ``read`` whole frames, at the decompressed offset
    where the next record (each ``record`` bytes long), cut short, starts."""
    packets, stopped = stop_of(path)
    assert (len(packets), stopped.code, stopped.frame) == (read, "bad-compression", read)
    assert stopped.offset == 24 + record * read
    assert stopped.reason.startswith(reason)
    assert stopped.reason.endswith("(the offset counts decompressed bytes)")


def test_gzip_corrupt_mid_stream(tmp_path):
    raw = pcap_bytes([(i, 0, bytes(range(256)) * 2) for i in range(1000)])
    plain, _, _ = read_all(write(tmp_path, "plain", raw))
    packed = bytearray(gzip.compress(raw, 0))  # stored blocks: a flipped data byte is caught by the CRC only
    packed[len(packed) - 100] ^= 0xFF
    packets, diag, _ = read_all(write(tmp_path, "crc.gz", bytes(packed)))
    # the input piece holding the fault is lost with it; everything before it is delivered
    assert 300 < len(packets) < 1000 and packets == plain[:len(packets)]
    assert codes(diag)[0] == "bad-compression" and "incorrect data check" in diag.records[0].message
    assert_gzip_stop(tmp_path / "crc.gz", len(packets), 16 + 512, "gzip stream is corrupt")


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_an_io_error_while_reading_stops_reading_it_does_not_raise(tmp_path, compress):
    """A dying disk or a vanished network mount after the header: every packet before the failure is kept
    and reading stops with a ``read-error`` (it is not an output error, nor a crash)."""
    noise = random.Random(13)  # incompressible: half the gzip file holds about half the packets
    raw = pcap_bytes([(i, 0, noise.randbytes(500)) for i in range(3000)])
    path = write(tmp_path, "eio.pcap.gz" if compress else "eio.pcap", gzip.compress(raw) if compress else raw)
    fail_after = path.stat().st_size // 2
    packets, stopped = stop_of(path, fail_after=fail_after)
    assert 0 < len(packets) < 3000 and [p[0] for p in packets] == list(range(1, len(packets) + 1))
    assert (stopped.code, stopped.frame) == ("read-error", len(packets))
    assert stopped.reason.startswith("read failed: Input/output error")
    assert stopped.offset == 24 + (16 + 500) * len(packets)  # where the record cut short starts


# -- refusals: one-line errors from open_capture -----------------------------------------------------------

@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"PK\x03\x04" + b"\0" * 40, "not a pcap or pcapng file (starts with 50 4b 03 04: a zip archive)"),
    (bytes(range(7, 200)), "not a pcap or pcapng file (starts with 07 08 09 0a)"),
    (b"\xd4\xc3", "file header is truncated (the file holds only 2 bytes)"),
    (pcap_bytes([])[:10], "pcap file header is truncated (10 of 24 bytes)"),
    (shb()[:10], "pcapng section header block is truncated (10 of at least 28 bytes)"),
    (shb()[:20], "pcapng section header block is truncated (20 of 28 bytes)"),
    (shb()[:8] + b"\1\2\3\4" + shb()[12:],
     "pcapng section header has an unknown byte-order magic (01 02 03 04)"),
    (shb()[:-4] + b"\0\0\0\0", "section header block is garbled: section header block length is 28 at its "
                               "start but 0 at its end"),
    (shb()[:4] + b"\x1e\0\0\0" + shb()[8:], "garbled: section header block length 30 is not a multiple of 4"),
    (shb(major=2), "garbled: section header has unsupported version 2.0"),
    (gzip.compress(b""), "empty file (gzip stream holds no data)"),
    (gzip.compress(b"hello world"),
     "not a pcap or pcapng file inside the gzip layer (starts with 68 65 6c 6c)"),
    (b"\x1f\x8b" + b"\xff" * 30, "gzip stream is corrupt"),
    (gzip.compress(_sample_pcap())[:15], "gzip stream is cut short"),
])
def test_not_a_capture(tmp_path, content, message):
    p = write(tmp_path, "x.pcap", content)
    with pytest.raises(CaptureFormatError) as info:
        open_capture(p, Diagnostics())
    assert message in str(info.value) and str(info.value).startswith(f"{p}: ")
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(InputError, match="cannot open: No such file or directory"):
        open_capture(tmp_path / "missing.pcap", Diagnostics())
    with pytest.raises(InputError, match="Is a directory"):
        open_capture(tmp_path, Diagnostics())


def test_close_midway(tmp_path):
    reader = open_capture(write(tmp_path, "c.pcap", _sample_pcap()), Diagnostics())
    it = iter(reader)
    next(it)
    reader.close()
    assert list(it) == []


# -- the public corpus against dpkt and tshark ---------------------------------------------------------------

def _dpkt_packets(path: Path):
    with path.open("rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        return [bytes(buf) for _ts, buf in reader]


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_public_captures_match_dpkt(path):
    packets, diag, _ = read_all(path)
    assert not diag.records
    assert [p[3] for p in packets] == _dpkt_packets(path)
    assert [p[0] for p in packets] == list(range(1, len(packets) + 1))


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_public_captures_match_tshark(path):
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch",
         "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.interface_id"],
        capture_output=True, text=True, check=True).stdout
    expected = [(int(n), float(t), int(length), int(cap)) for n, t, length, cap, *_ in
                (line.split("\t") for line in out.splitlines())]
    packets, _, _ = read_all(path)
    assert [(n, t, orig, len(data)) for n, t, _lt, data, orig in packets] == expected


@pytest.mark.parametrize("path", CAPTURES[:4], ids=[p.name for p in CAPTURES[:4]])
def test_public_captures_gzipped_match_plain(tmp_path, path):
    packed = write(tmp_path, path.name, gzip.compress(path.read_bytes()))
    assert read_all(packed)[0] == read_all(path)[0]


@pytest.mark.parametrize("name", ["sngrep__aaa.pcap", "sipnab__b2bua-asterisk.pcapng"])
def test_last_time_is_the_last_packets_even_when_the_prefilter_keeps_none(name):
    """Rules need to know how long the capture went on, media included, not just the last message."""
    import dpkt

    path = Path(__file__).resolve().parents[2] / "shared" / "captures" / "public" / name
    if not path.exists():
        pytest.skip("../shared/captures/public is not beside the repository")
    with open(path, "rb") as fh:
        reader = dpkt.pcapng.Reader(fh) if name.endswith("ng") else dpkt.pcap.Reader(fh)
        last = [ts for ts, _ in reader][-1]
    capture = open_capture(path, Diagnostics())
    capture.prefilter = lambda *args: False
    assert list(capture) == [] and capture.last_time == pytest.approx(last, abs=1e-6)
