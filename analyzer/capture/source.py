"""What capture readers stand on: a chunked byte source (plain, gzip or stdin) and the reader base class.

Readers never hold the file: they ask the source for ``CHUNK`` bytes at a time and walk records inside each
chunk with ``struct.unpack_from``, carrying a partial record over to the next chunk. Memory therefore stays at
about two chunks plus the largest record, whatever the capture size. Compression is recognised by its magic
number, never by the file name, and is undone as a stream.
"""

from __future__ import annotations

import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import CaptureFormatError, InputError

#: Bytes asked of the source per read. 256 KiB to 4 MiB walk equally fast (measured on the 200 MB bench
#: capture); with 1 MiB peak RSS stays about 5 MiB above the bare interpreter's, whatever the file size.
CHUNK = 1 << 20

#: Path that means "read the capture from standard input".
STDIN = "-"

#: Packet times a reader hands on: from 2 January of year 1 to 31 December 9999 (a day inside the years
#: ``datetime`` and ``time.gmtime`` take, so a local-time shift cannot leave them). A recorded timestamp
#: outside (or not finite) is a ``bad-timestamp`` diagnostic and the packet takes the previous one's time,
#: so no later stage ever sees a time it cannot format.
FIRST_TIME, LAST_TIME = -62_135_510_400.0, 253_402_214_400.0

GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib parses the gzip header and checks CRC-32 and length itself
#: Compressed bytes fed to the decompressor at a time. When zlib finds corrupt data it drops the output of
#: the whole piece, so smaller pieces lose less; 16 to 256 KiB measured equally fast on the bench capture.
GZIP_INPUT = 64 << 10


class Packet(NamedTuple):
    """The layout of what iterating a reader yields. Readers yield plain tuples in this order.

    A NamedTuple per packet costs 35 % more than a plain tuple over a bare walk (measured), so this class
    exists for documentation and typing: ``number, time, linktype, data, orig_len = packet``.
    """

    number: int  # 1-based frame number, counted as Wireshark counts frames
    time: float  # seconds since the epoch, the float nearest the exact recorded timestamp
    linktype: int  # LINKTYPE_* of the interface the packet was captured on
    data: bytes  # captured bytes; shorter than orig_len when the snap length cut the packet
    orig_len: int  # length of the packet on the wire


class Stop(NamedTuple):
    """Where and why reading ended before the end of the file (``analyzer.engines.ReadStop`` takes these
    fields in this order): the last frame read whole, the byte offset where the damage starts (counted in
    decompressed bytes for a gzip file), the diagnostic code and one line for people."""

    code: str  # truncated-packet | bad-record | bad-compression | read-error
    frame: int
    offset: int | None
    reason: str


class CompressedStreamError(InputError):
    """The gzip stream under a capture is corrupt or cut short.

    Raised by ``ByteSource.read``; before the capture header it becomes a ``CaptureFormatError``, after it the
    reader records a ``bad-compression`` diagnostic and stops, keeping the packets already read.
    """


class _Raw:
    """The file as seen past the bytes already peeked at for magic numbers; counts bytes consumed."""

    __slots__ = ("_f", "_pending", "_where", "consumed")

    def __init__(self, f, pending: bytes, where: str):
        self._f = f
        self._pending = pending
        self._where = where
        self.consumed = 0

    def read(self, n: int = -1) -> bytes:
        if self._pending:
            # gzip reads its 2-byte magic with read(2): hand back no more than asked.
            cut = len(self._pending) if n < 0 else n
            data, self._pending = self._pending[:cut], self._pending[cut:]
        else:
            try:
                data = self._f.read(n)
            except OSError as exc:
                raise InputError(f"read failed: {exc.strerror or exc}", where=self._where) from None
        self.consumed += len(data)
        return data


class _Gunzip:
    """gzip data decompressed as a stream, at most ``n`` bytes per read, as ``gzip.GzipFile`` would.

    zlib directly rather than the gzip module: on Python 3.11 ``GzipFile`` feeds zlib 8 KiB at a time and
    took 0.85 s to inflate the 200 MB bench capture where this takes 0.50 s. Same rules: several members in
    a row, zero padding between members, CRC-32 and length checked. A stream cut short hands out every byte
    before the cut; corrupt data loses the output of the ``GZIP_INPUT`` piece it sits in. A fault met while
    filling a read is held back until the bytes gathered before it have been handed out.
    """

    __slots__ = ("_d", "_error", "_in_member", "_input", "_raw", "_where", "produced")

    def __init__(self, raw: _Raw, where: str):
        self._raw = raw
        self._where = where
        self._d = zlib.decompressobj(GZIP_WBITS)
        self._input = b""  # compressed bytes not yet consumed
        self._in_member = False
        self._error: InputError | None = None
        self.produced = 0  # decompressed bytes handed out

    def read(self, n: int) -> bytes:
        if self._error is not None:
            raise self._error
        parts, have = [], 0
        while have < n:
            try:
                out = self._inflate(n - have)
            except InputError as exc:  # corrupt data, or the file itself failed to read
                if not parts:
                    raise
                self._error = exc
                break
            if not out:
                break
            parts.append(out)
            have += len(out)
        self.produced += have
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _inflate(self, n: int) -> bytes:
        """Output of the next input piece, at most ``n`` bytes; b"" at the end of the last member."""
        while True:
            if not self._input:
                self._input = self._raw.read(GZIP_INPUT)
                if not self._input:
                    if self._in_member:
                        raise CompressedStreamError(
                            "gzip stream is cut short (it ends before its end-of-stream marker)",
                            where=self._where)
                    return b""
            if not self._in_member:
                self._input = self._input.lstrip(b"\0")
                if not self._input:
                    continue
                self._in_member = True
            d = self._d
            try:
                out = d.decompress(self._input, n)
            except zlib.error as exc:
                raise CompressedStreamError(f"gzip stream is corrupt ({exc})", where=self._where) from None
            if d.eof:  # end of this member; what follows may be another one
                self._input = d.unused_data
                self._d = zlib.decompressobj(GZIP_WBITS)
                self._in_member = False
            else:
                self._input = d.unconsumed_tail
            if out:
                return out


class ByteSource:
    """A capture file's bytes, decompressed if they are gzip, read in chunks; knows how far it has got."""

    def __init__(self, path: str | os.PathLike, file=None):
        self.path = path
        self.where = "<stdin>" if str(path) == STDIN else str(path)
        self.size: int | None = None  # on-disk size, for a progress bar; None for stdin and pipes
        if file is not None:  # a file already open (``analyzer.capture.follow``: a capture still growing)
            f, self._owned = file, True
        elif str(path) == STDIN:
            f, self._owned = sys.stdin.buffer, False
        else:
            try:
                f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
                info = os.fstat(f.fileno())
            except OSError as exc:
                raise InputError(f"cannot open: {exc.strerror or exc}", where=self.where) from None
            self._owned = True
            if stat.S_ISREG(info.st_mode):
                self.size = info.st_size
        self._file = f
        try:
            peek = _read_at_least(_Raw(f, b"", self.where), 2)
        except BaseException:
            self.close()
            raise
        self._raw = _Raw(f, peek, self.where)
        self.compressed = peek[:2] == GZIP_MAGIC
        self._gunzip = _Gunzip(self._raw, self.where) if self.compressed else None
        self.read = self._gunzip.read if self._gunzip else self._raw.read

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the file itself (compressed side), for a progress bar."""
        return self._raw.consumed

    @property
    def offset(self) -> int:
        """Bytes handed out so far: the offset of the next byte of the (decompressed) capture."""
        return self._gunzip.produced if self._gunzip else self._raw.consumed

    def read_at_least(self, n: int) -> bytes:
        """Up to ``n`` bytes or more, fewer only at end of file; for file headers, not for the record walk."""
        return _read_at_least(self, n)

    def close(self) -> None:
        if self._owned:
            self._file.close()


def _read_at_least(src, n: int) -> bytes:
    """Read until at least ``n`` bytes or end of file (pipes and gzip hand back short reads)."""
    parts, have = [], 0
    while have < n:
        data = src.read(n - have)
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


def fill(source: ByteSource, buf: bytes, need: int) -> bytes:
    """``buf`` extended from ``source`` to at least ``need`` bytes, or to end of file."""
    if len(buf) >= need:
        return buf
    return buf + source.read_at_least(need - len(buf))


def hexstart(data: bytes, n: int = 4) -> str:
    """The first bytes of a file as ``50 4b 03 04``, for error messages."""
    return " ".join(f"{b:02x}" for b in data[:n])


class CaptureReader:
    """A capture being read: a context manager whose iteration yields ``Packet``-shaped plain tuples.

    A reader is a single pass over a stream, like a file object: iterating again continues where the last
    loop stopped. Anomalies in the records become diagnostics and end the iteration; they never raise.
    """

    #: 'pcap' or 'pcapng', set by each subclass.
    format = ""

    def __init__(self, source: ByteSource, diagnostics: Diagnostics):
        self._source = source
        self._diagnostics = diagnostics
        self._packets = self._walk()
        #: Packets walked so far (selected or not); exact once iteration has ended.
        self.packets = 0
        #: Capture time of the last packet walked (selected or not), as of the last chunk; None before any.
        self.last_time: float | None = None
        #: Optional ``prefilter(buf, start, end, linktype) -> bool``, like a BPF filter handed to libpcap:
        #: packets it rejects are counted but never sliced out or yielded. It must answer True for any
        #: packet it is not sure about. Set it before iterating.
        self.prefilter: Callable[[bytes, int, int, int], bool] | None = None
        #: Optional callback run before each chunk is read (for progress displays), given the reader.
        self.on_chunk: Callable[[CaptureReader], None] | None = None
        #: Set when reading ended before the end of the file (damage, a broken gzip stream, a failed read).
        self.stopped: Stop | None = None
        #: interface id → packets the capture tool recorded as dropped (pcapng statistics blocks), latest
        self.drops: dict[int, int] = {}

    def _walk(self) -> Iterator[tuple]:
        raise NotImplementedError

    def _bad_time(self, frame: int, recorded: float, previous: float) -> float:
        """The time to give a packet whose recorded one is outside ``FIRST_TIME``..``LAST_TIME``: the
        previous packet's (0.0 for the first), with a ``bad-timestamp`` diagnostic."""
        self._diagnostics.add("bad-timestamp", f"timestamp {recorded!r} is not a date in the years 1-9999; "
                              f"the previous packet's time ({previous!r}) is used", (frame,))
        return previous

    def header_error(self, reason: str) -> CaptureFormatError:
        return CaptureFormatError(reason, where=self._source.where)

    def _offset(self, offset: int) -> str:
        """An offset for messages; in a gzip file it counts decompressed bytes."""
        return f"{'decompressed ' if self.compressed else ''}byte offset {offset}"

    def _read_chunk(self, number: int) -> bytes:
        """The next chunk of the file; b'' at its end, or when a gzip stream breaks or the file cannot be
        read (recorded, then stop: ``number`` frames were read whole)."""
        self.packets = number
        if self.on_chunk is not None:
            self.on_chunk(self)
        try:
            return self._source.read(CHUNK)
        except InputError as exc:  # a CompressedStreamError, or an OSError while reading
            code = "bad-compression" if isinstance(exc, CompressedStreamError) else "read-error"
            self._stop(code, number, self._source.offset, exc.reason,
                       f"{exc.reason}; reading stopped after frame {number}")
            return b""

    def _stop(self, code: str, frame: int, offset: int | None, reason: str, message: str,
              frames: tuple[int, ...] = ()) -> None:
        """Reading ends early: a diagnostic, and the first such end kept in ``stopped`` (``frame`` is the
        last frame read whole, ``offset`` where the unread part starts, ``reason`` one line for people).

        A broken gzip stream or a failed read stops at a chunk's end, often inside a record: the record cut
        short is reported next, and its start is where the unread part starts."""
        self._diagnostics.add(code, message, frames=frames)
        stopped = self.stopped
        if stopped is None:
            if self.compressed and offset is not None:
                reason += " (the offset counts decompressed bytes)"
            self.stopped = Stop(code, frame, offset, reason)
        elif stopped.frame == frame and offset is not None and stopped.offset is not None \
                and offset < stopped.offset:
            self.stopped = stopped._replace(offset=offset)

    @property
    def path(self) -> str | os.PathLike:
        return self._source.path

    @property
    def compressed(self) -> bool:
        return self._source.compressed

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the file so far (compressed side); compare with ``size`` for progress."""
        return self._source.bytes_read

    @property
    def size(self) -> int | None:
        """Size of the file on disk, None when reading standard input."""
        return self._source.size

    def __iter__(self) -> Iterator[tuple]:
        return self._packets

    def close(self) -> None:
        self._packets.close()
        self._source.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
