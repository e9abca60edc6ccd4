"""Ladder (sequence) diagrams of one UE session: who sent what to whom, and which migration step it was.

``build_ladder`` makes the model: columns are the UE, then the servers of each MC system merged by host
(an IP address, whatever the port); rows are the SIP and HTTP messages (and TLS ClientHellos) of the
session in time order — the messages whose frames are the evidence of its events, every message sharing
the Call-ID of one of its events, and the HTTP answers to selected requests. Steps of the judged
procedures (the report's procedure dicts) are attached to the frames of each step's event; a step with an
error deviation is marked deviating; each step is coloured and labelled as in every other report format
(``report.step_tone``/``step_label``). ``ladder_text.write_text`` draws it for a terminal (rich), ``svg``
as standalone SVG text (every string XML-escaped; no fonts, scripts or other resources loaded).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO
from xml.sax.saxutils import escape as _xml_escape

from analyzer.base import times
from analyzer.engines import DecodeOptions, get_engine
from analyzer.meaning.analysis import CaptureAnalysis
from analyzer.meaning.lookup import find_sessions
from analyzer.meaning.roles import server_roles
from analyzer.meaning.sessions import UeSession
from analyzer.meaning.systems import server_ip
from analyzer.messages.floor import FloorMessage
from analyzer.messages.records import Message
from analyzer.report.document import step_label, step_tone
from analyzer.report.messages import floor_summary, floor_title
from analyzer.transport.records import TlsHello

UE = "ue"


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # "ue" or the server's IP address
    system: str | None
    address: str  # the IP (or the UE's addresses, comma-separated)
    name: str  # the UE's identity, or the server's system
    role: str | None = None  # the server's role(s) for this UE (``analyzer.meaning.roles``), None unknown

    @property
    def label(self) -> str:
        return " ".join(filter(None, (self.role, self.name, self.address)))


@dataclass(frozen=True, slots=True)
class StepMark:
    rule: str
    step: str
    status: str
    tone: str  # ok | info | warn | bad, as every report format colours the step (report.step_tone)
    label: str  # the status with its qualifying words (report.step_label)
    migration: bool  # the step belongs to a migration procedure (not a building block)

    @property
    def deviating(self) -> bool:
        return self.tone == "bad"

    @property
    def text(self) -> str:
        return f"{self.step}: {self.label}"


@dataclass(frozen=True, slots=True)
class Row:
    frame: int
    time: float
    src: int  # column index
    dst: int
    label: str  # "METHOD" or "STATUS reason"
    proto: str  # sip | http | tls | floor (MC media-plane control: drawn as a thin arrow)
    call_id: str | None
    detail: str  # for tooltips: CSeq, URI, SNI ...
    steps: tuple[StepMark, ...] = ()
    frames: tuple[int, ...] = ()  # every frame that carried bytes of the message (TCP segments...)

    @property
    def deviating(self) -> bool:
        return any(s.deviating for s in self.steps)


@dataclass(slots=True)
class Ladder:
    session: str
    title: str
    columns: list[Column]
    rows: list[Row]
    unplaced: list[StepMark] = field(default_factory=list)  # steps without evidence (missing ...)


# -- model ---------------------------------------------------------------------------------------------------

def session_frames(session: UeSession) -> tuple[set[int], set[str]]:
    frames = {f for e in session.events for f in e.frames}
    call_ids = {e.call_id for e in session.events if e.call_id}
    return frames, call_ids


def collect_messages(analysis: CaptureAnalysis, engine: str = "dpkt", options: DecodeOptions | None = None,
                     sessions: Iterable[UeSession] | None = None) -> list[Message | FloorMessage | TlsHello]:
    """The messages the ladders of ``sessions`` (default: all) can show: from the analysis when it kept
    its messages, else by decoding the capture again."""
    frames: set[int] = set()
    call_ids: set[str] = set()
    for s in analysis.sessions if sessions is None else sessions:
        f, c = session_frames(s)
        frames |= f
        call_ids |= c
    kept: list[Message | FloorMessage | TlsHello] = []
    items = analysis.messages if analysis.messages is not None \
        else get_engine(engine)(analysis.path, options or DecodeOptions()).items
    for item in items:
        if isinstance(item, (TlsHello, FloorMessage)):
            if item.frame in frames:  # a floor message: the evidence of a floor event of the session
                kept.append(item)
        elif frames.intersection(item.frames) or (item.call_id and item.call_id in call_ids) \
                or item.reply_to in frames:
            kept.append(item)
    return kept


def _select(session: UeSession, messages: Iterable[Message | TlsHello],
            call_id: str | None) -> list[Message | TlsHello]:
    frames, call_ids = session_frames(session)
    call_frames = {f for e in session.events if e.call_id == call_id for f in e.frames}
    chosen: list = []
    picked: set[int] = set()
    for m in messages:
        if isinstance(m, FloorMessage):  # shown when a floor event of the session (or the call) cites it
            ok = m.frame in (frames if call_id is None else call_frames)
        elif isinstance(m, TlsHello):
            ok = m.frame in frames and call_id is None
        elif call_id is not None:
            ok = m.call_id == call_id
        else:
            ok = bool(frames.intersection(m.frames)) or (m.call_id in call_ids if m.call_id else False) \
                or (m.proto == "http" and m.reply_to in picked)
        if ok:
            chosen.append(m)
            picked.add(m.frame if isinstance(m, TlsHello) else m.frames[0])
            if isinstance(m, Message):
                picked.update(m.frames)
    chosen.sort(key=lambda m: (m.time, m.frame))
    return chosen


def _marks(procedures: Iterable[dict], session: str) -> tuple[dict[int, list[StepMark]], list[StepMark]]:
    by_frame: dict[int, list[StepMark]] = {}
    unplaced: list[StepMark] = []
    for p in procedures:
        if p.get("session") != session:
            continue
        for s in p["steps"]:
            mark = StepMark(p["rule"], s["id"], s["status"], step_tone(s), step_label(s),
                            p.get("kind") == "migration")
            if not s["frames"]:
                unplaced.append(mark)
            for f in s["frames"]:
                by_frame.setdefault(f, []).append(mark)
            if "retry" in s:  # (a refused step's request asked again and accepted, too late: its deviation)
                late = StepMark(p["rule"], s["id"], s["status"], step_tone(s), "accepted too late",
                                p.get("kind") == "migration")
                for f in s["retry"]["frames"]:
                    by_frame.setdefault(f, []).append(late)
    return by_frame, unplaced


def build_ladder(analysis: CaptureAnalysis, session: UeSession, messages: Iterable[Message | TlsHello],
                 procedures: Iterable[dict] = (), call_id: str | None = None) -> Ladder:
    """The ladder model of ``session`` from decoded ``messages`` and the report's procedure dicts."""
    chosen = _select(session, messages, call_id)
    ue_ips = set(session.addresses)
    systems = [name for name, *_ in session.systems]
    servers: dict[str, tuple[int, int]] = {}  # ip → (system order, first appearance)
    for m in chosen:
        for ip in (server_ip(m.src), server_ip(m.dst)):
            if ip not in ue_ips and ip not in servers:
                system = analysis.systems.of_address(ip)
                order = systems.index(system) if system in systems else len(systems) + (system is None)
                servers[ip] = (order, len(servers))
    columns = [Column(UE, None, ", ".join(session.addresses), session.mc_id() or session.id)]
    roles = server_roles(session.events, analysis.systems)
    for ip in sorted(servers, key=lambda ip: servers[ip]):
        system = analysis.systems.of_address(ip)
        columns.append(Column(ip, system, ip, system or "unknown system", roles.get(ip)))
    index = {c.key: i for i, c in enumerate(columns)}

    def col(address: str) -> int:
        ip = server_ip(address)
        return 0 if ip in ue_ips else index[ip]

    marks, unplaced = _marks(procedures, session.id)
    procedures = list(procedures)
    rows = []
    for m in chosen:
        frames = (m.frame,) if isinstance(m, TlsHello) else m.frames
        found: list[StepMark] = []
        for f in frames:
            for mark in marks.get(f, ()):
                if mark not in found:
                    found.append(mark)
        found.sort(key=lambda s: not s.migration)
        if isinstance(m, FloorMessage):
            rows.append(Row(m.frame, m.time, col(m.src), col(m.dst), floor_title(m), "floor", None,
                            floor_summary(m), tuple(found), frames))
            continue
        if isinstance(m, TlsHello):
            rows.append(Row(m.frame, m.time, col(m.src), col(m.dst), "TLS ClientHello", "tls", None,
                            f"SNI {m.sni or '(none)'}", tuple(found), frames))
            continue
        if m.kind == "request":
            label = m.method or "?"
            detail = f"{m.method} {m.uri or ''}".strip()
        else:
            label = f"{m.status} {m.reason or ''}".strip()
            detail = f"{label} ({m.cseq})" if m.cseq else label
        rows.append(Row(m.frame, m.time, col(m.src), col(m.dst), label, m.proto, m.call_id, detail,
                        tuple(found), frames))
    title = f"{session.id} {session.mc_id() or ''}".strip()
    return Ladder(session.id, title, columns, rows, unplaced)


def pick_session(analysis: CaptureAnalysis, procedures: Iterable[dict], ue: str | None = None,
                 call_id: str | None = None) -> UeSession | None:
    """``--ue``: the first session ``meaning.lookup.find_sessions`` finds; else the one with this Call-ID;
    else the first session with a procedure instance; else the first session."""
    sessions = analysis.sessions
    if ue:
        return next(iter(find_sessions(sessions, ue)), None)
    if call_id:
        return next((s for s in sessions if any(e.call_id == call_id for e in s.events)), None)
    with_procedure = {p["session"] for p in procedures}
    return next((s for s in sessions if s.id in with_procedure), sessions[0] if sessions else None)


# -- SVG -----------------------------------------------------------------------------------------------------

_FILL = {"ok": "#1a7f37", "info": "#57606a", "warn": "#9a6700", "bad": "#cf222e"}
_LANE, _LEFT, _NOTES, _TOP, _ROW = 170, 150, 330, 78, 30


def esc(text: object) -> str:
    """XML-escape for text and attribute values (quotes too)."""
    return _xml_escape(str(text), {'"': "&quot;", "'": "&#39;"})


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, ``…`` marking a cut."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[:width - 1] + "…"


def _svg_cut(text: str, chars: int) -> str:
    return cut(text, max(chars, 3))


#: What the colours of a drawing mean (one legend per page in the HTML report).
LEGEND = (("#24292f", "message (arrow: sender → receiver; hover for details)"), (_FILL["ok"], "step matched"),
          (_FILL["info"], "optional step not seen"),
          (_FILL["warn"], "step cannot be judged (encrypted, capture ended)"),
          (_FILL["bad"], "deviating step and its messages"))


def svg(ladder: Ladder, id_prefix: str = "ladder", inline: bool = False, legend: bool = True) -> str:
    """SVG text of ``ladder``: a standalone document, or (``inline``) an element for an HTML page, whose
    legend (``legend=False``) the page then gives once."""
    n = len(ladder.columns)
    xs = [_LEFT + _LANE // 2 + i * _LANE for i in range(n)]
    width = _LEFT + n * _LANE + _NOTES
    extra = len(ladder.unplaced)
    height = _TOP + (len(ladder.rows) + 1) * _ROW + extra * 20 + (120 if legend else 20)
    pid = esc(id_prefix)
    xmlns = "" if inline else ' xmlns="http://www.w3.org/2000/svg"'
    out = [f'<svg{xmlns} class="ladder" id="{pid}" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f"<title>{esc('Ladder of ' + ladder.title)}</title>",
           "<defs>"]
    for tone, colour in (("n", "#24292f"), *_FILL.items()):
        out.append(f'<marker id="{pid}-arrow-{tone}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
                   f'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
                   f'fill="{colour}"/></marker>')
    out.append("</defs>")
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    fmt, row_zone, shared = times.current().heading(r.time for r in ladder.rows)
    stamp = fmt.rows(zone=row_zone)
    title = f"{ladder.title}{'  (times ' + shared + ')' if shared else ''}"
    out.append(f'<text x="10" y="18" font-size="14" font-weight="bold">{esc(title)}</text>')
    bottom = _TOP + (len(ladder.rows) + 0.5) * _ROW
    for x, c in zip(xs, ladder.columns, strict=True):
        out.append(f'<g class="column"><rect x="{x - _LANE // 2 + 6}" y="28" width="{_LANE - 12}" '
                   f'height="36" rx="4" fill="#f6f8fa" stroke="#57606a"/>'
                   f'<text x="{x}" y="43" text-anchor="middle" font-weight="bold">'
                   f'{esc(_svg_cut(" · ".join(filter(None, (c.role, c.name))), 24))}</text>'
                   f'<text x="{x}" y="58" text-anchor="middle" fill="#57606a">{esc(_svg_cut(c.address, 26))}'
                   f'</text><title>{esc(c.label)}</title></g>')
        out.append(f'<line x1="{x}" y1="64" x2="{x}" y2="{bottom}" stroke="#8c959f" stroke-dasharray="4 3"/>')
    out.append(f'<text x="10" y="{_TOP - 4}" fill="#57606a">frame  time</text>')
    out.append(f'<text x="{_LEFT + n * _LANE + 10}" y="{_TOP - 4}" fill="#57606a">migration step</text>')
    for i, row in enumerate(ladder.rows):
        y = _TOP + (i + 0.5) * _ROW + 6
        tone = "bad" if row.deviating else "n"
        colour = _FILL["bad"] if row.deviating else "#24292f"
        cls = "row deviating" if row.deviating else "row"
        out.append(f'<g class="{cls}" data-frame="{row.frame}">')
        when = stamp(row.time, row.frame)
        out.append(f"<title>{esc(f'frame {row.frame} {when} {row.detail}')}"
                   f"{esc(f' Call-ID {row.call_id}') if row.call_id else ''}</title>")
        out.append(f'<text x="10" y="{y}" fill="#57606a">{row.frame}  {esc(when)}</text>')
        x1, x2 = xs[row.src], xs[row.dst]
        if x1 == x2:
            out.append(f'<path d="M{x1},{y - 6} h30 v10 h-30" fill="none" stroke="{colour}" '
                       f'marker-end="url(#{pid}-arrow-{tone})"/>')
            lx, room = x1 + 36, _LANE - 40
            anchor = "start"
        else:
            width = '0.8" stroke-dasharray="3 2' if row.proto == "floor" else "1.5"  # floor control: thin
            out.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" '
                       f'stroke-width="{width}" marker-end="url(#{pid}-arrow-{tone})"/>')
            lx, room, anchor = (x1 + x2) / 2, abs(x2 - x1) - 16, "middle"
        weight = ' font-weight="bold"' if row.deviating else ""
        out.append(f'<text x="{lx}" y="{y - 5}" text-anchor="{anchor}" fill="{colour}"{weight}>'
                   f'{esc(_svg_cut(row.label, int(room / 7)))}</text>')
        if row.steps:
            nx = _LEFT + n * _LANE + 10
            text = ", ".join(s.text for s in row.steps)
            stone = "bad" if row.deviating else row.steps[0].tone
            out.append(f'<rect x="{nx - 4}" y="{y - 14}" width="{_NOTES - 14}" height="20" rx="3" '
                       f'fill="{_FILL[stone]}" fill-opacity="0.12" stroke="{_FILL[stone]}"/>'
                       f'<text class="step {stone}" x="{nx}" y="{y}" fill="{_FILL[stone]}">'
                       f'{esc(_svg_cut(text, (_NOTES - 20) // 7))}</text>')
        out.append("</g>")
    y = bottom + 20
    for mark in ladder.unplaced:
        out.append(f'<text class="step {mark.tone}" x="10" y="{y}" fill="{_FILL[mark.tone]}">'
                   f'{esc(f"{mark.rule} / {mark.text}: no message in the capture")}</text>')
        y += 20
    if legend:
        y += 8
        out.append(f'<g class="legend"><text x="10" y="{y}" font-weight="bold">Legend</text>')
        for colour, text in LEGEND:
            y += 18
            out.append(f'<rect x="14" y="{y - 10}" width="12" height="12" fill="{colour}"/>'
                       f'<text x="32" y="{y}">{esc(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(ladder: Ladder, out: IO[str]) -> None:
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n' + svg(ladder))

