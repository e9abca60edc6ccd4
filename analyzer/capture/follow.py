"""Reading a capture that is still being written: a file growing at its end (``tcpdump -U -w FILE``), a ring
of files (``tcpdump -C/-G/-W``, ``dumpcap -b``) or a pipe (``-w -``, a capture tool's standard output).

Each follower is a binary file object whose ``read(n)`` hands back what is there (at least one byte) and,
at the end of what is written so far, waits for more instead of returning ``b''``; so the pcap and pcapng
readers walk it unchanged, carrying a record cut at the current end over to the next read as they do
across chunks. ``b''`` (the end of the capture) comes only when the pipe closes, or once ``Control.stop``
was called and what was written before it has been read. While waiting, ``Control.idle`` runs every
``POLL`` seconds (``mcxa watch`` judges then).

A ring is the files of one pattern, read oldest first by (modification time, name); the next file is
taken once the current one is read to its end and a newer one exists (the writer has moved on, so the
current one is complete once read again). A later pcap file's 24-byte header is skipped (the stream is
one pcap file); a later pcapng file starts with its own section header, which the reader takes as a new
section. Every byte handed out can also be copied to ``save`` (``--save``), making one valid capture.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import select
import stat
import threading
import time
from collections.abc import Callable

from analyzer.base.errors import InputError

#: Seconds between two looks at a file (or a pipe) that has nothing new.
POLL = 0.2
#: Files a ring may hold that are remembered as read (a ring of more files is read, but a file beyond
#: this many that reappears unchanged may be read twice).
MAX_RING = 10_000
_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")
_PCAP_HEADER = 24


class Control:
    """What the watcher tells a follower: stop (after reading what is written), and what to run while
    waiting. ``stop`` may be called from a signal handler or another thread."""

    def __init__(self, idle: Callable[[], None] | None = None):
        self.idle = idle
        self._stop = threading.Event()
        self.stopped_at: float | None = None  # wall time of the first ``stop``

    def stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = time.time()
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float = POLL) -> None:
        """Run ``idle``, then sleep until ``seconds`` pass or ``stop`` is called."""
        if self.idle is not None:
            self.idle()
        self._stop.wait(seconds)


class _Follower:
    """What the followers share: the copy to ``save`` and the count of bytes handed out."""

    def __init__(self, control: Control, save=None):
        self.control = control
        self.save = save
        self.handed = 0

    def _out(self, data: bytes) -> bytes:
        if self.save is not None and data:
            self.save.write(data)
        self.handed += len(data)
        return data

    def readable(self) -> bool:
        return True


class FollowedFiles(_Follower):
    """One growing file, or a ring of them (``members`` lists the ring's files now; None: one file)."""

    def __init__(self, path: str, control: Control, save=None,
                 members: Callable[[], list[str]] | None = None):
        super().__init__(control, save)
        self.where = path
        self._members = members
        self._done: dict[str, tuple[int, int]] = {}  # ring file → (inode, mtime) when it was left
        self._file = None
        self._path: str | None = None
        self._skip = 0  # header bytes of a later pcap file still to skip
        self._first = b""  # the start of the ring's first file (its pcap header, if it is pcap)
        self.files = 0  # files opened so far
        if os.path.isfile(path):  # the file named is read first, whatever older files of its ring exist
            self._open(path)
        while self._file is None and not self._open_next() and not control.stopping:
            control.wait()  # nothing written yet: the capture tool may just be starting

    def read(self, n: int = -1) -> bytes:
        n = n if n and n > 0 else 1 << 20
        while True:
            if self._file is not None:
                data = self._file.read(n)
                # at the end of what is written: a newer ring file means this one is complete once what
                # was written between that read and the look is read too
                if not data and self._members is not None and self._newer():
                    data = self._file.read(n)
                    if not data:
                        self._open_next()
                        continue
                if data:
                    data = self._past_header(data)
                    if data:
                        return self._out(data)
                    continue
            elif self._open_next():
                continue
            if self.control.stopping:  # the read above found nothing more
                return b""
            self.control.wait()

    def _past_header(self, data: bytes) -> bytes:
        """``data`` without what remains of a later pcap file's header (the stream must not repeat it)."""
        cut = min(self._skip, len(data))
        self._skip -= cut
        return data[cut:] if cut else data

    def _candidates(self) -> list[tuple[int, str, int]]:
        """(mtime, name, inode) of the ring files not read yet, oldest first."""
        found = []
        for name in (self._members() if self._members else [self.where]):
            try:
                info = os.stat(name)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode) or name == self._path:
                continue
            if self._done.get(name) == (info.st_ino, info.st_mtime_ns):
                continue
            found.append((info.st_mtime_ns, name, info.st_ino))
        found.sort()
        return found

    def _newer(self) -> bool:
        try:
            now = os.fstat(self._file.fileno()).st_mtime_ns
        except OSError:
            return True
        return any(mtime >= now for mtime, _, _ in self._candidates())

    def _open_next(self) -> bool:
        """Leave the current file (remembered as read) and open the oldest unread one; False if none."""
        candidates = self._candidates()
        if self._file is not None:
            try:
                info = os.fstat(self._file.fileno())
                now = info.st_mtime_ns
                if len(self._done) < MAX_RING:
                    self._done[self._path] = (info.st_ino, info.st_mtime_ns)
            except OSError:
                now = 0
            candidates = [c for c in candidates if c[0] >= now]
        if not candidates:
            return False
        if self._file is not None:
            self._file.close()
        self._open(candidates[0][1])
        return True

    def _open(self, name: str) -> None:
        try:
            self._file = open(name, "rb", buffering=0)  # noqa: SIM115 - closed by close() or the next file
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror or exc}", where=name) from None
        self._path = name
        self.files += 1
        head = self._head(_PCAP_HEADER if self.files == 1 else 4)
        if self.files == 1:
            self._first = head
        elif head[:4] in _PCAP_MAGICS:
            head = self._head(_PCAP_HEADER)
            if (head[:4], head[20:]) != (self._first[:4], self._first[20:_PCAP_HEADER]):
                raise InputError(f"ring file {name}: its pcap header (byte order, time unit or link type) "
                                 "differs from the first file's, so its records cannot follow those",
                                 where=name)
            self._skip = _PCAP_HEADER

    def _head(self, n: int) -> bytes:
        """The first ``n`` bytes of the file just opened (waiting for them, unless stopping); position
        kept at 0."""
        while True:
            head = os.pread(self._file.fileno(), n, 0)
            if len(head) == n or self.control.stopping:
                return head
            self.control.wait()

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class FollowedPipe(_Follower):
    """A pipe (a capture tool's standard output, or ours): reads wait with ``select`` so ``idle`` runs;
    the end is the pipe closing. With ``until_closed`` False, ``stop`` ends reading at once (after what is
    already in the pipe); True (the watcher's own capture tool, which it stops) reads on to the close."""

    def __init__(self, fd: int, where: str, control: Control, save=None, until_closed: bool = False):
        super().__init__(control, save)
        self.fd, self.where, self.until_closed = fd, where, until_closed

    def read(self, n: int = -1) -> bytes:
        n = n if n and n > 0 else 1 << 20
        while True:
            stopping = self.control.stopping and not self.until_closed
            ready, _, _ = select.select([self.fd], [], [], 0 if stopping else POLL)
            if ready:
                try:
                    return self._out(os.read(self.fd, n))
                except OSError as exc:
                    raise InputError(f"read failed: {exc.strerror or exc}", where=self.where) from None
            if stopping:
                return b""
            if self.control.idle is not None:
                self.control.idle()

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        pass  # the pipe belongs to whoever made it (the process, or the capture tool's Popen)


def ring_members(path: str) -> Callable[[], list[str]]:
    """How to list the files of the ring PATH names:

    * a directory: every file in it (not hidden);
    * a pattern with ``*``, ``?`` or ``[``: the files it matches;
    * a file name: that file and those named like it followed by digits (``cap.pcap``, ``cap.pcap1`` ...
      as ``tcpdump -C`` and ``-W`` name them); when the file exists it is read first, and only files
      newer than it after it.
    """
    if os.path.isdir(path):
        return lambda: [os.path.join(path, n) for n in sorted(os.listdir(path)) if not n.startswith(".")]
    if glob.has_magic(path):
        return lambda: glob.glob(path)
    folder, base = os.path.split(path)
    folder = folder or "."
    if not os.path.isdir(folder):
        raise InputError("no such directory", where=folder)

    def numbered() -> list[str]:
        pattern = glob.escape(base) + "*"
        return [os.path.join(folder, n) for n in fnmatch.filter(os.listdir(folder), pattern)
                if n == base or n[len(base):].isdigit()]

    return numbered
