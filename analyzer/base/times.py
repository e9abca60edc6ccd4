"""Capture times as people read them: one formatter for every report and table, in Wireshark's words.

``--time-format`` takes tshark's ``-t`` choices (``FORMATS``) and gives the same text tshark does for the same
frame, to the microsecond; absolute times add their zone (``TZ`` is honoured, as tshark does), since a time
read without one is read wrong. Data files keep the epoch and add ``iso_utc``.

The format in force is a context variable: the command line sets it once (``use``) and every renderer
calls ``clock``/``stamp``; without a command line (libraries, JSON documents) it is ``UTC_DATE``, the
same text on every machine. ``d`` (delta from the previous *captured* frame) needs every frame's time: the
command line hands a lookup in (``TimeFormat.frame_time``); ``dd`` is the delta from the previous row a list
shows. Inside a sentence (a deviation's "at ..."), where there is no previous row, ``d`` and ``dd`` read as
``r``.

A time comes from the capture, so it may be anything a reader let through; formatting it must never fail
(the readers turn impossible timestamps into diagnostics, this is the second line of defence).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time as _time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

#: Seconds since the epoch that ``time.gmtime`` turns into a date on every platform (years 1970-9999).
_LAST = 253_402_300_799.0

#: tshark's ``-t`` choices, with what each shows (``man tshark``).
FORMATS: dict[str, str] = {
    "ad": "local date and time (the default)",
    "a": "local time of day",
    "adoy": "local year/day-of-year and time",
    "r": "seconds since the first frame of the capture",
    "d": "seconds since the previous frame of the capture",
    "dd": "seconds since the previous row shown",
    "u": "UTC time of day",
    "ud": "UTC date and time",
    "udoy": "UTC year/day-of-year and time",
    "e": "seconds since the epoch (1970-01-01 UTC)",
}
#: The part of an absolute format before the time of day (strftime), and whether it is local.
_ABSOLUTE = {"a": ("", True), "ad": ("%Y-%m-%d ", True), "adoy": ("%Y/%j ", True),
             "u": ("", False), "ud": ("%Y-%m-%d ", False), "udoy": ("%Y/%j ", False)}
_RELATIVE = ("r", "d", "dd")


@dataclass(frozen=True, slots=True)
class TimeFormat:
    """One of ``FORMATS``; ``origin`` is the capture's first frame time (``r``), ``frame_time`` the time of
    any frame by number (``d``; None where unknown)."""

    kind: str = "ad"
    origin: float | None = None
    frame_time: Callable[[int], float | None] | None = None

    def __post_init__(self):
        if self.kind not in FORMATS:
            raise ValueError(f"unknown time format {self.kind!r}")

    @property
    def absolute(self) -> bool:
        return self.kind in _ABSOLUTE

    def stamp(self, t: float | None, frame: int | None = None, previous: float | None = None,
              zone: bool = True) -> str:
        """``t`` in this format; ``frame`` is the row's frame (``d``), ``previous`` the time of the row
        shown before it (``dd``; None on the first row, which shows 0 as tshark's does)."""
        if t is None:
            return "?"
        if not (isinstance(t, int | float) and math.isfinite(t) and 0 <= t <= _LAST):
            return f"{t!r}"
        kind = self.kind
        if kind == "e":
            return f"{t:.6f}"
        if kind in _RELATIVE:
            if kind == "d" and frame is not None and self.frame_time is not None:
                before = self.frame_time(frame - 1) if frame > 1 else t
                return "?" if before is None else _seconds(t - before)
            if kind == "dd" and frame is not None:
                return _seconds(0.0 if previous is None else t - previous)
            return "?" if self.origin is None else _seconds(t - self.origin)
        prefix, local = _ABSOLUTE[kind]
        micros = round(t * 1_000_000)
        whole = micros // 1_000_000
        parts = _time.localtime(whole) if local else _time.gmtime(whole)
        text = _time.strftime(f"{prefix}%H:%M:%S", parts) + f".{micros % 1_000_000:06d}"
        return f"{text} {zone_name(parts) if local else 'UTC'}" if zone else text

    def heading(self, ts: Iterable[float | None]) -> tuple[TimeFormat, bool, str | None]:
        """For a list whose rows have times ``ts``: the format of its rows, whether each row shows the zone,
        and the heading saying what every row shares (``2026-05-01 CEST``), so the rows show the time of
        day only. Rows on different dates or zones keep their own."""
        if not self.absolute:
            return self, True, None
        dated = self.kind not in ("a", "u")
        shared = set()
        for t in ts:
            full = self.stamp(t)
            if full.count(" ") == 1 + dated:  # [date] time zone
                shared.add((full.split(" ")[0] if dated else "", full.rsplit(" ", 1)[1]))
            else:
                return self, True, None  # "?" or a number that is no date
        if len(shared) != 1:
            return self, True, None
        date, zone = shared.pop()
        return self.time_of_day(), False, f"{date} {zone}".strip()

    def time_of_day(self) -> TimeFormat:
        """This format without the date (``ad`` → ``a``, ``udoy`` → ``u``); others unchanged."""
        if not self.absolute:
            return self
        return TimeFormat("a" if _ABSOLUTE[self.kind][1] else "u", self.origin, self.frame_time)


    def rows(self, zone: bool = True) -> Callable[[float | None, int | None], str]:
        """A stamper for one list: ``stamp(t, frame)`` per row in the order shown, so ``dd`` counts from the
        row before."""
        previous: list[float | None] = [None]

        def stamp(t: float | None, frame: int | None) -> str:
            text = self.stamp(t, frame, previous[0], zone)
            if t is not None:
                previous[0] = t
            return text

        return stamp

    @property
    def width(self) -> int:
        """Columns a stamp usually takes, to align a table's rows under its heading."""
        return len(self.stamp(1_777_629_600.0)) if self.absolute else 17 if self.kind == "e" else 12


def _seconds(delta: float) -> str:
    return f"{delta:.6f}"


def zone_name(parts: _time.struct_time) -> str:
    """The zone's abbreviation (``CEST``), or its offset where the zone has none (``+0300``)."""
    name = parts.tm_zone or ""
    if name.isalpha():
        return name
    offset = parts.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    return f"{sign}{abs(offset) // 3600:02d}{abs(offset) % 3600 // 60:02d}"


#: What JSON documents and libraries show: the same text on every machine, whatever its TZ.
UTC_DATE = TimeFormat("ud")
_CURRENT: contextvars.ContextVar[TimeFormat] = contextvars.ContextVar("mcxa_time_format", default=UTC_DATE)


def current() -> TimeFormat:
    return _CURRENT.get()


@contextlib.contextmanager
def use(fmt: TimeFormat) -> Iterator[TimeFormat]:
    """``with use(TimeFormat("r", origin=...)):`` every ``clock`` inside renders in ``fmt``."""
    token = _CURRENT.set(fmt)
    try:
        yield fmt
    finally:
        _CURRENT.reset(token)


def select(fmt: TimeFormat) -> None:
    """Put ``fmt`` in force until the enclosing ``use`` ends (the command line's ``--time-format``)."""
    _CURRENT.set(fmt)


def clock(t: float | None) -> str:
    """``t`` in the format in force, as a sentence reads it (``d``/``dd`` as ``r``); ``?`` for a time that
    is absent, and the number itself for one that is not a date."""
    fmt = _CURRENT.get()
    return fmt.stamp(t)


def iso_utc(t: float | None) -> str | None:
    """ISO 8601 in UTC to the microsecond (``2026-05-01T10:00:00.057785Z``): the column data files add
    beside the epoch ``time``; None for a time that is absent or no date."""
    if t is None or not (isinstance(t, int | float) and math.isfinite(t) and 0 <= t <= _LAST):
        return None
    micros = round(t * 1_000_000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(micros // 1_000_000)) \
        + f".{micros % 1_000_000:06d}Z"
