"""Capture times as people read them: one formatter for every report and table.

A time comes from the capture, so it may be anything a reader let through; formatting it must never fail
(the readers turn impossible timestamps into diagnostics, this is the second line of defence).
"""

from __future__ import annotations

import math
import time as _time

#: Seconds since the epoch that ``time.gmtime`` turns into a date on every platform (years 1970-9999).
_LAST = 253_402_300_799.0


def clock(t: float | None) -> str:
    """``HH:MM:SS.mmm`` (UTC); ``?`` for a time that is absent, and the number itself for one that is not a
    date."""
    if t is None:
        return "?"
    if not (isinstance(t, int | float) and math.isfinite(t) and 0 <= t <= _LAST):
        return f"{t!r}"
    return _time.strftime("%H:%M:%S", _time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"
