"""Reading capture files: pcap and pcapng, plain or gzip-compressed, streamed in bounded memory.

    with open_capture(path, diagnostics) as reader:
        for number, time, linktype, data, orig_len in reader:
            ...

Each packet is a plain tuple laid out as ``Packet`` (see ``source.Packet``): plain tuples because this loop
runs a million times per 200 MB. The format is found by magic number, never by file name. A file that is
not a capture, or whose header is broken, raises ``CaptureFormatError`` from ``open_capture``; a file that
cannot be opened raises ``InputError``. Damage after the header (a record cut short at the end, a garbage
length, a broken gzip stream, a failed read) never raises: it becomes a diagnostic (``truncated-packet``,
``bad-record``, ``bad-compression``, ``read-error``) and iteration ends, after every packet before the damage
has been yielded; the reader's ``stopped`` then says where (``source.Stop``: last whole frame, byte offset).
"""

from __future__ import annotations

import os
import stat

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import CaptureFormatError
from analyzer.capture import pcap, pcapng
from analyzer.capture.source import STDIN, ByteSource, CaptureReader, CompressedStreamError, Packet, hexstart

__all__ = ["STDIN", "CaptureReader", "Packet", "open_capture", "rereadable"]

#: First four bytes (after any gzip layer) → reader class.
READERS: dict[bytes, type[CaptureReader]] = {
    **dict.fromkeys(pcap.VARIANTS, pcap.PcapReader),
    pcapng.MAGIC: pcapng.PcapngReader,
}

#: Magic numbers of files that are often mistaken for captures → what they are, for the error message.
OTHER_FORMATS: dict[bytes, str] = {
    b"\x50\x4b\x03\x04": "a zip archive",
    b"\x28\xb5\x2f\xfd": "zstd-compressed; decompress it first",
    b"\x04\x22\x4d\x18": "lz4-compressed; decompress it first",
    b"\xfd\x37\x7a\x58": "xz-compressed; decompress it first",
    b"\x42\x5a\x68": "bzip2-compressed; decompress it first",
    b"\x52\x54\x53\x53": "a Microsoft Network Monitor capture",
    b"\x47\x4d\x42\x55": "a Microsoft Network Monitor capture",
    b"\x58\x43\x50\x00": "a NetXray / Sniffer capture",
}


def open_capture(path: str | os.PathLike, diagnostics: Diagnostics, file=None) -> CaptureReader:
    """Open a capture for one streaming pass; ``path`` may be ``'-'`` for standard input, and ``file`` a
    binary file object already open on it (``follow``: a capture still being written), then closed with
    the reader.

    The file header (and a gzip header) is read here, so a file that is not a usable capture fails now.
    """
    source = ByteSource(path, file)
    try:
        head = source.read_at_least(4)
        reader = READERS.get(head[:4])
        if reader is None:
            raise CaptureFormatError(_not_a_capture(head, source.compressed), where=source.where)
        return reader(source, head, diagnostics)
    except CompressedStreamError as exc:
        source.close()
        raise CaptureFormatError(exc.reason, where=source.where) from None
    except BaseException:
        source.close()
        raise


def _not_a_capture(head: bytes, compressed: bool) -> str:
    inside = " inside the gzip layer" if compressed else ""
    if not head:
        return "empty file (gzip stream holds no data)" if compressed else "empty file"
    if len(head) < 4 and any(magic.startswith(head) for magic in READERS):
        return f"file header is truncated (the file holds only {len(head)} bytes{inside})"
    what = next((name for magic, name in OTHER_FORMATS.items() if head.startswith(magic)), None)
    return (f"not a pcap or pcapng file{inside} (starts with {hexstart(head)}"
            f"{f': {what}' if what else ''})")


def rereadable(path: str) -> bool:
    """Can the capture be read a second time: a regular file (not standard input, a pipe or a device)?"""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
