"""Packed runs kept on disk past a budget: what a capture keeps until its end costs disk, not memory.

Pass 1's facts, a streamed pass 2's events and a JSON report's procedures wait, packed, until they are
read in order (``base.runs``): on a core-side capture of 20,000 UEs over 100 MB held only to be read
once. Past ``SPILL_AFTER`` bytes an owner writes its further runs to one unnamed temporary file (in
``$TMPDIR``, as ``sort`` does; gone when closed, even on a crash) and reads each back when it is due.
"""

from __future__ import annotations

import os
import tempfile

from analyzer.base.errors import McxaError

#: Packed bytes an owner keeps in memory before it writes further runs to its temporary file.
SPILL_AFTER = 4 << 20


class Spill:
    """Packed runs of one owner: ``keep`` gives a handle (the bytes themselves while under ``budget``,
    else where they lie in the file), ``read`` the bytes of a handle. Runs are never freed one by one: the
    file goes with the owner."""

    __slots__ = ("budget", "end", "file", "held")

    def __init__(self, budget: int | None = None):
        self.budget, self.held, self.end = SPILL_AFTER if budget is None else budget, 0, 0
        self.file = None

    def keep(self, data: bytes) -> bytes | tuple[int, int]:
        if self.held + len(data) <= self.budget:
            self.held += len(data)
            return data
        try:
            if self.file is None:
                self.file = tempfile.TemporaryFile(prefix="mcxa-runs-")  # noqa: SIM115 (closed by close)
            written = os.pwrite(self.file.fileno(), data, self.end)
            if written != len(data):
                raise OSError(28, "No space left on device")
        except OSError as exc:
            raise McxaError(f"cannot keep what is read so far on disk: {exc.strerror or exc} (set TMPDIR to "
                            "a directory with room)", tempfile.gettempdir()) from None
        handle = (self.end, len(data))
        self.end += len(data)
        return handle

    def read(self, handle: bytes | tuple[int, int]) -> bytes:
        if isinstance(handle, bytes):
            return handle
        offset, size = handle
        return os.pread(self.file.fileno(), size, offset)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    __del__ = close  # (its owner is let go of: so is the file, without a warning that it was left open)

    def __getstate__(self):
        raise TypeError("a Spill stays in the process that wrote it (send what it reads instead)")
