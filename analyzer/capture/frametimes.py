"""The time of any frame by its number, for ``--time-format r`` and ``d`` (seconds since the first, or the
previous, frame of the capture — not only of the frames a list shows, as tshark counts them).

A second pass over the capture's records, none decoded: ``first_time`` stops at frame 1; ``FrameTimes``
reads every record once, on the first question, and keeps 8 bytes per frame (8 MB for a million frames).
"""

from __future__ import annotations

import math
from array import array

from analyzer.base.diagnostics import Diagnostics
from analyzer.capture import open_capture


def first_time(path: str) -> float | None:
    """The capture time of frame 1; None for a capture without packets."""
    with open_capture(path, Diagnostics()) as reader:
        for _number, time, *_ in reader:
            return time
    return None


class FrameTimes:
    """``frame_times(n)``: the time of frame ``n`` (None beyond the frames read, e.g. after damage)."""

    def __init__(self, path: str):
        self.path = path
        self._times: array | None = None

    def __call__(self, frame: int) -> float | None:
        if self._times is None:
            times = array("d")
            with open_capture(self.path, Diagnostics()) as reader:
                for number, time, *_ in reader:
                    while len(times) < number - 1:  # numbers are Wireshark's: 1, 2, 3... with no gaps
                        times.append(math.nan)
                    times.append(time)
            self._times = times
        time = self._times[frame - 1] if 0 < frame <= len(self._times) else math.nan
        return None if math.isnan(time) else time
