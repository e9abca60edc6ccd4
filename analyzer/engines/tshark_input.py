"""What the tshark engine reads: the capture for tshark, and the same bytes walked by the project's reader.

The walk opens the capture first (so a file that is not one fails before any output, with the dpkt engine's
line), then runs in a thread beside tshark: it counts packets without slicing any and says where reading
stopped, the last packet's time and the bytes read. Bytes that can be read only once (standard input, a
pipe) are copied by another thread to both the walk and tshark's stdin (``tshark -r -``).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import InputError, McxaError
from analyzer.capture import STDIN, open_capture
from analyzer.capture.source import CHUNK


class Walk:
    """The capture as the project's reader sees it, walked in a thread beside tshark (no packet sliced).

    Bytes that can be read only once (standard input, a pipe) are copied by a second thread to both the
    walk and tshark's stdin.
    """

    def __init__(self, path: str):
        self.diagnostics = Diagnostics()
        self.error: BaseException | None = None
        self.tshark_path, self.tshark_stdin = path, subprocess.DEVNULL
        self._rest: int | None = None  # a copy's pipe to the walk, drained once the reader stops
        self._thread: threading.Thread | None = None
        if not _read_once(path):
            self.reader = open_capture(path, self.diagnostics)
        else:
            where = "<stdin>" if path == STDIN else path
            # standard input unbuffered: the copying thread, left reading when the command ends on an
            # error, must hold no lock of sys.stdin's buffer (the interpreter's exit would abort on it)
            stdin = getattr(sys.stdin.buffer, "raw", sys.stdin.buffer)
            try:
                source = stdin if path == STDIN else open(path, "rb", buffering=0)  # noqa: SIM115
            except OSError as exc:
                raise InputError(f"cannot open: {exc.strerror or exc}", where) from None
            walk_r, walk_w = os.pipe()
            tshark_r, tshark_w = os.pipe()
            outs = [open(walk_w, "wb", buffering=0), open(tshark_w, "wb", buffering=0)]  # noqa: SIM115
            threading.Thread(target=_tee, args=(source, outs, source is not stdin), daemon=True).start()
            try:
                self.reader = open_capture(f"/dev/fd/{walk_r}", self.diagnostics)
            except McxaError as exc:
                os.close(walk_r)
                os.close(tshark_r)  # the copy stops at its next write
                raise type(exc)(exc.reason, where) from None
            self._rest, self.tshark_path, self.tshark_stdin = walk_r, STDIN, tshark_r
        self.reader.prefilter = lambda *_: False  # count every packet, slice none

    def start(self) -> None:
        self._thread = threading.Thread(target=self._walk, daemon=True)
        self._thread.start()

    def _walk(self) -> None:
        try:
            with self.reader:
                for _ in self.reader:
                    pass
        except BaseException as exc:  # handed to the decoding thread by ``join``
            self.error = exc
        finally:
            if self._rest is not None:  # stdin: keep the copy to tshark flowing after our reader stopped
                with open(self._rest, "rb", buffering=0) as rest:
                    while rest.read(CHUNK):
                        pass

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error


def _read_once(path: str) -> bool:
    """Standard input, a pipe, a device: bytes that tshark and the walk cannot each read for themselves."""
    if path == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # open_capture says why, as for the dpkt engine
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def _tee(source, outs: list, close: bool) -> None:
    """Copy ``source`` (unbuffered) to every file in ``outs`` until its end; one whose reader has gone is
    dropped. ``close``: close ``source`` then (not standard input)."""
    try:
        while outs and (chunk := source.read(CHUNK)):
            for out in list(outs):
                try:
                    left = memoryview(chunk)
                    while left:  # a raw write may take only part (a signal during a big write)
                        left = left[out.write(left):]
                except OSError:  # BrokenPipeError: tshark or the walk stopped reading
                    out.close()
                    outs.remove(out)
    finally:
        for out in outs:
            out.close()
        if close:
            source.close()
