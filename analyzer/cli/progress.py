"""A progress line on stderr while a capture is read: bytes read (tshark: its frame), packets/s, SIP/HTTP
messages found; then, until the output is written, the stage at work (``phase``: events, sessions, rules,
report).

Only on a terminal: ``decode_progress`` gives ``None`` (so ``DecodeOptions.progress`` stays unset and reading
costs nothing extra) when stderr is not a TTY, with ``--quiet``, for files under one read chunk, or when the
command streams rows to the same terminal. Otherwise ``DecodeProgress`` shows a transient rich bar after
``DELAY`` seconds of reading (quick captures never see it) and removes it before any output is written
(``close``). It never touches stdout: rich's stdout/stderr redirection is off.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO

from analyzer.capture.source import CHUNK, STDIN
from analyzer.engines import DecodeStats

#: Seconds of reading before the bar appears.
DELAY = 1.0
#: Seconds between two redraws (the callback comes once per 1 MiB read, hundreds of times a second).
REFRESH = 0.1


class DecodeProgress:
    """``DecodeOptions.progress`` callback drawing a transient bar on ``console`` (a rich Console)."""

    def __init__(self, path: str, size: int | None, console, delay: float | None = None,
                 clock: Callable[[], float] = time.monotonic, by_frame: bool = False):
        self.path, self.size, self.console, self.clock = path, size, console, clock
        self.by_frame = by_frame  # tshark's position is a frame number, not a byte offset
        self.delay = DELAY if delay is None else delay
        self.start = clock()
        self._next = self.start + self.delay  # no drawing, and almost no work, before this moment
        self._bar = None
        self._task = None
        self._stats: DecodeStats | None = None
        self._label: str | None = None

    def __call__(self, stats: DecodeStats) -> None:
        self._stats = stats
        now = self.clock()
        if now < self._next:
            return
        self._next = now + REFRESH
        self._draw(now)

    def phase(self, label: str) -> None:
        """Reading has ended and the next stage works on: the line says which (``events``, ``sessions``,
        ``rules``, ``report``), with the reading's last figures; still nothing before the delay."""
        self._label = label
        now = self.clock()
        if now >= self.start + self.delay:
            self._draw(now)

    def _draw(self, now: float) -> None:
        opening = self._bar is None
        if opening:
            self._open()
        stats = self._stats or DecodeStats()
        elapsed = max(now - self.start, 1e-9)
        name = os.path.basename(self.path) or self.path
        if self.by_frame:
            read = f"frame {stats.packets:,}"
        else:
            read = _size(stats.bytes_read) + (f"/{_size(self.size)}" if self.size else "")
        self._bar.update(self._task, completed=stats.bytes_read, read=read,
                         description=f"{name}: {self._label}" if self._label else name,
                         rate="" if self._label else f"{stats.packets / elapsed:,.0f} packets/s",
                         state="read" if self._label else "reading",
                         found=f"{stats.sip_messages:,} SIP + {stats.http_messages:,} HTTP messages")
        if opening:
            self._bar.start()  # draws the first line, with the figures above
        else:
            self._bar.refresh()

    def _open(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        columns = [TextColumn("[bold]{task.description}"),
                   BarColumn() if self.size else TextColumn("{task.fields[state]}"),
                   TextColumn("{task.fields[read]}"), TextColumn("{task.fields[rate]}"),
                   TextColumn("{task.fields[found]}")]
        self._bar = Progress(*columns, console=self.console, transient=True, auto_refresh=False,
                             redirect_stdout=False, redirect_stderr=False)
        self._task = self._bar.add_task(os.path.basename(self.path) or self.path, total=self.size,
                                        read="", rate="", found="", state="reading")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _size(n: int | None) -> str:
    from rich.filesize import decimal

    return decimal(n or 0)


def enabled(path: str, quiet: bool, stderr: IO[str] | None = None, streams_to_stdout: bool = False) -> bool:
    """Whether reading ``path`` may show a bar: a person is watching (stdout and stderr are terminals; a
    pipe, a redirect or CI means silence), not quiet, and a capture worth it."""
    stderr = stderr if stderr is not None else sys.stderr
    if quiet or stderr is None or not _isatty(stderr) or not _isatty(sys.stdout):
        return False
    if streams_to_stdout and _isatty(sys.stdout):
        return False  # rows stream to the same terminal: they show progress, and a bar would tear them
    if path != STDIN:
        try:
            if os.stat(path).st_size < CHUNK:
                return False
        except OSError:
            return False  # the reader says why, in its own words
    return True


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def decode_progress(path: str, quiet: bool = False, streams_to_stdout: bool = False,
                    stderr: IO[str] | None = None, by_frame: bool = False,
                    color: bool | None = None) -> Iterator[DecodeProgress | None]:
    """``with decode_progress(capture, quiet) as progress: ... DecodeOptions(progress=progress)``.

    Gives ``None`` when no bar may be shown; otherwise the bar is gone when the block ends.
    """
    if not enabled(path, quiet, stderr, streams_to_stdout):
        yield None
        return
    from rich.console import Console

    stream = stderr if stderr is not None else sys.stderr
    size = None if path == STDIN else os.stat(path).st_size
    console = Console(file=stream, stderr=True, no_color=None if color is None else not color)
    progress = DecodeProgress(path, None if by_frame else size, console, by_frame=by_frame)
    try:
        yield progress
    finally:
        progress.close()
