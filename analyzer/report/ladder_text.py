"""The ladder for a terminal: every line fits the width, columns headed by role, system and address.

The width is, in this order: the one asked for, ``COLUMNS``, the terminal's, else (a pipe or a file) the
content's natural width — every label, heading (up to ``MAX_NATURAL_LANE``) and step note whole — never
under ``MIN_WIDTH``. A line is ``frame time │lanes│  step notes``: the lanes (one per column, the lifeline
in the middle) share what the frame and time leave with the notes, the notes taking the rest; labels and
headings are cut to their lane with ``…``, notes to what remains, so no line is wider than the width
(unless a capture has so many servers that even ``MIN_LANE``-wide lanes do not fit: then the lanes win).
Times come from ``analyzer.base.times``: a date and zone every row shares go to the title, and the rows
show the time of day.
"""

from __future__ import annotations

import os
from typing import IO

from analyzer.base import times
from analyzer.report.ladder import Ladder, Row, cut, write_svg

#: Narrowest width drawn (a terminal narrower still gets lines this wide).
MIN_WIDTH = 80
#: Narrowest lane: a lifeline, an arrow and a few characters of label.
MIN_LANE = 6
#: Widest lane the content may ask for (a UE seen at many addresses would ask for more): beyond, cut.
MAX_NATURAL_LANE = 48
#: When not everything fits, the step notes keep at most 1/3 of the room beside frame and time...
_NOTES_SHARE = 3
#: ...unless that leaves lanes narrower than this: then the notes go under their rows.
_READABLE = 12

_RICH_STYLE = {"ok": "green", "info": "dim", "warn": "yellow", "bad": "bold red"}


def _headings(ladder: Ladder) -> list[tuple[str, str, str]]:
    """Per column its three heading lines: role (``UE`` for the UE), name (identity or system), address."""
    out = []
    for i, c in enumerate(ladder.columns):
        role = "UE" if i == 0 else (c.role or "server")
        out.append((role, c.name, c.address))
    return out


def _cut_left(text: str, width: int) -> str:
    """A server address cut at its start: ``…db8:b::10`` and ``…db8:b::20`` stay apart."""
    if width <= 0:
        return ""
    return text if len(text) <= width else "…" + text[len(text) - width + 1:]


def _note(row: Row) -> str:
    return ", ".join(s.text for s in row.steps)


def _natural_lane(ladder: Ladder, headings) -> int:
    """A lane wide enough for every heading and for the label of every arrow to a neighbouring lane (or
    to itself)."""
    need = max((len(text) + 1 for h in headings for text in h), default=MIN_LANE)
    for row in ladder.rows:
        span = abs(row.dst - row.src)
        if span <= 1:
            need = max(need, len(row.label) + 3 if span else 2 * (len(row.label) + 2))
    return min(max(need, MIN_LANE), MAX_NATURAL_LANE)


def target_width(out: IO[str], natural: int, width: int | None = None) -> int:
    """The width to draw in (see the module docstring)."""
    if width:
        return max(width, MIN_WIDTH)
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), MIN_WIDTH)
    try:
        if out.isatty():
            return max(os.get_terminal_size(out.fileno()).columns, MIN_WIDTH)
    except (AttributeError, ValueError, OSError):
        pass
    return max(natural, MIN_WIDTH)


def _layout(total: int, left: int, n: int, lane_natural: int, notes_natural: int,
            natural: int) -> tuple[int, int, bool]:
    """Lane width, note width, and whether the notes go on a line of their own under their row: when
    beside the lanes they would squeeze them under ``_READABLE`` (or the content's own width)."""
    gap = 2 if notes_natural else 0
    room = total - left - gap
    if natural <= total:  # everything fits: the lanes take the width the notes leave
        lane = max(lane_natural, (room - notes_natural) // n)
        return lane, total - left - n * lane - gap, False
    readable = min(lane_natural, _READABLE)
    lane = (room - notes_natural) // n  # the notes whole, the lanes narrower than they would like
    if lane < readable:  # the notes cut to a share of the room
        lane = min(lane_natural, (room - min(notes_natural, room // _NOTES_SHARE)) // n)
    if lane < readable and notes_natural:  # the notes under their rows, the lanes the whole width
        return max(MIN_LANE, min(lane_natural, (total - left) // n)), total - left - 2, True
    lane = max(MIN_LANE, lane)
    return lane, max(total - left - n * lane - gap, 0), False


def write_text(ladder: Ladder, out: IO[str], width: int | None = None, color: bool | None = None) -> None:
    """Draw ``ladder`` on ``out``; ``color``: True forces colour, False none, None colour on a terminal
    unless ``NO_COLOR`` is set (rich decides)."""
    from rich.console import Console
    from rich.text import Text

    fmt, row_zone, shared = times.current().heading(r.time for r in ladder.rows)
    stamp = fmt.rows(zone=row_zone)
    stamps = [stamp(r.time, r.frame) for r in ladder.rows]
    frame_w = max([5, *(len(str(r.frame)) for r in ladder.rows)])
    time_w = max([len(s) for s in stamps] or [0])
    left = frame_w + 2 + time_w + 1
    headings = _headings(ladder)
    n = len(ladder.columns)
    notes = [_note(r) for r in ladder.rows]
    unplaced = [f"{m.rule} / {m.text} (no frames)" for m in ladder.unplaced]
    notes_natural = max([len(t) for t in notes] or [0])
    lane_natural = _natural_lane(ladder, headings)
    if shared is None and not fmt.absolute:  # say what the numbers count
        shared = f"in {times.FORMATS[fmt.kind].split(' (')[0]}"
    title = f"{ladder.title}  ({len(ladder.rows)} messages{', times ' + shared if shared else ''})"
    natural = max(left + n * lane_natural + (2 + notes_natural if notes_natural else 0), len(title),
                  *(left + len(t) for t in unplaced))
    total = target_width(out, natural, width)
    lane, notes_w, below = _layout(total, left, n, lane_natural, notes_natural, natural)
    console = Console(file=out, width=max(total, left + n * lane) + 1, force_terminal=color,
                      no_color=False if color else None, highlight=False, soft_wrap=True)
    centres = [i * lane + lane // 2 for i in range(n)]
    console.print(Text(cut(title, total), style="bold"))
    for part in range(3):
        line = ""
        for i, h in enumerate(headings):
            text = cut(h[part], lane - 1) if part < 2 or i == 0 else _cut_left(h[part], lane - 1)
            start = min(max(left + centres[i] - len(text) // 2, left + i * lane),
                        left + (i + 1) * lane - len(text))  # centred on its lifeline, inside its lane
            line += " " * (start - len(line)) + text
        console.print(Text(line.rstrip(), style="bold cyan" if part < 2 else "cyan"))
    for row, when, note in zip(ladder.rows, stamps, notes, strict=True):
        text = Text()
        text.append(f"{row.frame:>{frame_w}}  {when:<{time_w}} ", style="dim")
        lanes = _lanes(row, centres, lane, n)
        tone = "bad" if row.deviating else (row.steps[0].tone if row.steps else None)
        shown = cut(note, notes_w)
        inline = shown and not below
        text.append(lanes if inline else lanes.rstrip(), style="red" if row.deviating else None)
        if inline:
            text.append("  " + shown, style=_RICH_STYLE.get(tone or "", ""))
        console.print(text)
        if shown and below:
            console.print(Text(" " * left + "↳ " + shown, style=_RICH_STYLE.get(tone or "", "")))
    for mark, line in zip(ladder.unplaced, unplaced, strict=True):
        console.print(Text(" " * left + cut(line, total - left), style=_RICH_STYLE[mark.tone]))


def _lanes(row: Row, centres: list[int], lane: int, n: int) -> str:
    """The lanes of one row: lifelines, the arrow from ``src`` to ``dst`` and its label, ``n * lane`` wide."""
    line = [" "] * (n * lane)
    for x in centres:
        line[x] = "│"
    a, b = sorted((centres[row.src], centres[row.dst]))
    if a == b:
        line[a] = "↺"
        start, room = a + 2, lane - lane // 2 - 2
    else:
        thin = row.proto == "floor"  # media-plane control: a thin arrow beside the signalling
        for x in range(a + 1, b):
            line[x] = "┈" if thin else "─"
        if row.dst > row.src:
            line[b - 1] = "▷" if thin else "▶"
            first = a + 1
        else:
            line[a + 1] = "◁" if thin else "◀"
            first = a + 2
        room = b - a - 3
        start = first + max(0, (room - len(row.label)) // 2)
    for k, ch in enumerate(cut(row.label, room)):
        if start + k < len(line):
            line[start + k] = ch
    return "".join(line)


#: ``mcxa flow --format`` → writer(ladder, out)
WRITERS = {"text": write_text, "svg": write_svg}
