"""Wireshark's language: frame lists as display filters, and the frames of a UE session or of a procedure
written to a small pcapng whose frame comments say what mcxa saw in each.

The packets are read again from the original capture, so each keeps its link type, bytes, length on the
wire and timestamp (to the microsecond, the precision every report keeps); frame numbers change in the new
file, so each written frame's first comment names its original frame.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import UsageError
from analyzer.capture import STDIN, open_capture
from analyzer.capture.writer import OutPacket, pcapng_blocks
from analyzer.meaning.sessions import UeSession
from analyzer.report.ladder import Ladder, Row


def frame_filter(frames: Iterable[int]) -> str:
    """``frame.number == 63``, or ``frame.number in {62..64, 70}``: runs of three or more consecutive
    frames become ranges, so a long list stays short. Commas, because tshark 4 refuses blank-separated
    sets. No frames: the empty text."""
    numbers = sorted(set(frames))
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f"frame.number == {numbers[0]}"
    parts, i = [], 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{numbers[i]}..{numbers[j]}")
        else:
            parts.extend(map(str, numbers[i:j + 1]))
        i = j + 1
    return "frame.number in {" + ", ".join(parts) + "}"


def procedure_frames(p: dict) -> set[int]:
    """Every frame a procedure of the report cites: its anchor's, its steps' and its deviations'."""
    return {*p["anchor"]["frames"], *(f for s in p["steps"] for f in s["frames"]),
            *(f for d in p["deviations"] for f in d["frames"])}


def procedure_rows(ladder: Ladder, p: dict) -> list[Row]:
    """The messages of one procedure in its UE's ladder: those carrying a frame it cites, and every other
    message of their SIP dialogs (the INVITE's ACK and BYE, the 401 before a REGISTER...)."""
    cited = procedure_frames(p)
    call_ids = {r.call_id for r in ladder.rows if r.call_id and cited.intersection(r.frames or (r.frame,))}
    return [r for r in ladder.rows if cited.intersection(r.frames or (r.frame,)) or r.call_id in call_ids]


def frame_comments(rows: Iterable[Row], procedures: Iterable[dict], session: UeSession | None = None,
                   file: str = "") -> dict[int, list[str]]:
    """Original frame → its comments: the message (and Call-ID), each step it is evidence of, each
    deviation citing it; an earlier segment of a message points to the frame that completed it. With
    ``session``: the frames of its events no message row holds (TLS records...) too."""
    name = os.path.basename(file)
    notes: dict[int, list[str]] = {}

    def note(frame: int, text: str) -> None:
        notes.setdefault(frame, [f"mcxa: frame {frame} of {name}" if name else f"mcxa: frame {frame}"]) \
            .append(text)

    deviations: dict[int, list[str]] = {}
    for p in procedures:
        for d in p["deviations"]:
            for f in d["frames"]:
                text = f"deviation [{d['severity']}] {p['rule']}: {d['message']}"
                deviations.setdefault(f, []).append(text)
    for r in rows:
        call = f" (Call-ID {r.call_id})" if r.call_id else ""
        note(r.frame, f"{r.proto.upper()} {r.detail}{call}")
        for mark in r.steps:
            note(r.frame, f"step {mark.rule}/{mark.step}: {mark.label}")
        for f in r.frames or (r.frame,):
            if f != r.frame:
                note(f, f"segment of {r.proto.upper()} {r.label} completed in frame {r.frame}")
    if session is not None:
        for e in session.events:
            for f in e.all_frames or e.frames:
                if f not in notes:
                    note(f, f"part of {e.kind} ({e.system or 'system unknown'})")
    for f, texts in deviations.items():
        if f in notes:
            notes[f].extend(t for t in texts if t not in notes[f])
    return notes


def write_frames(capture: str, comments: dict[int, list[str]], out_path: str,
                 about: Iterable[str] = ()) -> int:
    """Copy the frames of ``comments`` from ``capture`` into a new pcapng at ``out_path``, each with its
    comments, and ``about`` as comments on the whole file; the number written (fewer when the capture ends,
    or is damaged, before one of them)."""
    if capture == STDIN:
        raise UsageError("the capture was read from standard input and cannot be read again for its frames; "
                         "save it to a file first", capture)
    wanted, last, written = comments, max(comments, default=0), 0

    def packets():
        nonlocal written
        with open_capture(capture, Diagnostics()) as reader:
            for number, time, linktype, data, orig_len in reader:
                if number > last:
                    break
                if number in wanted:
                    written += 1
                    yield OutPacket(time, linktype, data, orig_len, tuple(wanted[number]))

    tmp = f"{out_path}.part"
    with open(tmp, "wb") as out:
        for block in pcapng_blocks(packets(), "mcxa", comments=about):
            out.write(block)
    os.replace(tmp, out_path)
    return written


def procedure_about(p: dict, file: str) -> list[str]:
    """The file comments of a procedure's capture: what was judged, the verdict, every deviation (those
    of steps without a frame too)."""
    head = (f"mcxa: {p['rule']} of {p['ue']} ({p['session']}) in {os.path.basename(file)}: {p['verdict']}; "
            f"original frames: {frame_filter(procedure_frames(p))}")
    return [head, *(f"deviation [{d['severity']}] {d['message']}" for d in p["deviations"])]


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".gz", ".pcapng", ".pcap", ".cap"):
        name = name.removesuffix(suffix)
    return name


def write_procedure_captures(capture: str, procedures: list[dict], ladders: dict[str, Ladder], directory: str,
                             taken: set[str]) -> list[tuple[str, int, dict]]:
    """``analyze --pcap-dir``: one pcapng per procedure with a deviation, named
    ``<capture>-<session>-<rule>.pcapng`` (a number added when taken); (path, packets, procedure) of
    each written."""
    written = []
    for p in procedures:
        ladder = ladders.get(p["session"])
        if p["verdict"] != "deviation" or ladder is None:
            continue
        base = re.sub(r"[^\w.+-]", "_", f"{_stem(capture)}-{p['session']}-{p['rule']}")
        name, n = f"{base}.pcapng", 1
        while name in taken:
            n += 1
            name = f"{base}-{n}.pcapng"
        taken.add(name)
        path = os.path.join(directory, name)
        os.makedirs(directory, exist_ok=True)
        notes = frame_comments(procedure_rows(ladder, p), [p], file=capture)
        written.append((path, write_frames(capture, notes, path, procedure_about(p, capture)), p))
    return written
