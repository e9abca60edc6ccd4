"""``mcxa analyze --format html``: one self-contained HTML page (inline CSS, inline SVG ladders; no script,
font, image or other resource is loaded). First the migrations and their verdicts, then the building blocks
counted per rule and verdict, then per capture the UEs in a migration or a deviation (``--ladders``), each
with its ladder diagram (one legend per page), each procedure's step timeline, KPIs and deviations, every
frame list also as a Wireshark display filter; and the decode diagnostics. A 2 000-UE capture without a
migration is a page of a few hundred KB, not one ladder per UE.

Every string that comes from a capture (or anywhere else) goes through ``html.escape`` — a SIP header
saying ``<script>`` is shown as text, never run.
"""

from __future__ import annotations

from typing import IO

from analyzer.base.times import clock
from analyzer.report.accounting import accounting_text, esp_text, tls_text
from analyzer.report.document import step_label, step_tone, unread_text
from analyzer.report.html_summary import badge as _badge
from analyzer.report.html_summary import building_blocks, e, headline, shown_sessions
from analyzer.report.html_summary import route as _route
from analyzer.report.ladder import LEGEND, Ladder, svg
from analyzer.report.wireshark import frame_filter, procedure_frames

__all__ = ["render_html", "shown_sessions", "write_html"]

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #24292f;
       background: #ffffff; font-size: 14px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 16px; margin-top: 24px; } h4 { font-size: 14px; margin: 16px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.muted { color: #57606a; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
.compliant, .ok { background: #dafbe1; color: #1a7f37; }
.deviation, .error, .bad { background: #ffebe9; color: #cf222e; }
.incomplete, .warning, .warn { background: #fff8c5; color: #9a6700; }
.info { background: #eaeef2; color: #57606a; }
.ladder-box { overflow-x: auto; border: 1px solid #d0d7de; border-radius: 6px; padding: 4px; }
.ladder-box svg { max-width: 100%; height: auto; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
ul.deviations li { margin-bottom: 6px; }
table.summary td:nth-child(2) { white-space: nowrap; }
code.filter { color: #0550ae; user-select: all; }
.legend ul { list-style: none; padding: 0; margin: 4px 0 12px; display: flex; flex-wrap: wrap;
             gap: 4px 18px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: -1px; }
"""


def _frames(frames) -> str:
    """A frame list, and under it the same as a Wireshark display filter (to paste)."""
    if not frames:
        return "—"
    return f"{e(', '.join(map(str, frames)))}<br><code class=\"filter\">{e(frame_filter(frames))}</code>"


def _frames_label(frames) -> str:
    return f"frame{'s' if len(frames) > 1 else ''} {_frames(frames)}"


def _legend() -> str:
    items = "".join(f"<li><span class=\"swatch\" style=\"background:{colour}\"></span>{e(text)}</li>"
                    for colour, text in LEGEND)
    return f"<div class=\"legend\"><b>Ladder legend</b><ul>{items}</ul></div>"


def _detail(step: dict) -> str:
    """The kind of evidence a step matched (``evidence implicit-chat``, ``via pre-established``)."""
    return f" <span class=\"muted\">({e(step['detail'])})</span>" if step.get("detail") else ""


def _kpis(kpis: dict) -> str:
    parts = []
    if "migration_duration" in kpis:
        parts.append(f"migration duration {e(kpis['migration_duration'])} s")
    if "service_interruption" in kpis:
        parts.append(f"service interruption {e(kpis['service_interruption'])} s")
    for key, name in (("media_interruption", "interruption as heard (floor control)"),
                      ("rtp_interruption", "RTP gap (last in the old call → first in the new)"),
                      ("late_entry_time", "late call entry time (KPI 4)")):
        if key in kpis:
            parts.append(f"{name} {e(kpis[key])} s")
    if kpis.get("access_times"):
        times = ", ".join(f"{e(a['seconds'])} s" for a in kpis["access_times"])
        parts.append(f"access times (KPI 1) {times}")
    if kpis.get("rtp_received"):
        streams = ", ".join(f"{e(r['packets'])} to {e(r['to'])} ({e(r['call'])} call)"
                            for r in kpis["rtp_received"])
        parts.append(f"RTP received {streams}")
    steps = ", ".join(f"{e(k)} {e(v)} s" for k, v in kpis.get("step_seconds", {}).items())
    if steps:
        parts.append(f"seconds per step: {steps}")
    return "<p class=\"kpis\"><b>KPIs</b>: " + ("; ".join(parts) or "—") + "</p>"


def _procedure(p: dict) -> list[str]:
    subject = p["group"] or p["peer"] or ""
    out = [f"<h4>{e(p['title'])} <code>{e(p['rule'])}</code> {_badge(p['verdict'])}</h4>",
           f"<p class=\"muted\">{e(p['spec'])} — {e(p['ue'])} {e(subject)} {e(_route(p))} "
           f"({e(clock(p['start']))}–{e(clock(p['end']))}) — Wireshark: "
           f"<code class=\"filter\">{e(frame_filter(procedure_frames(p)))}</code></p>",
           "<table class=\"steps\"><tr><th>step</th><th>status</th><th>time</th><th>frames</th><th>event</th>"
           "<th>what</th><th>spec</th></tr>"]
    for s in p["steps"]:
        out.append(f"<tr><td><code>{e(s['id'])}</code></td><td>{_badge(step_label(s), step_tone(s))}</td>"
                   f"<td>{e(clock(s['time'])) if s['time'] is not None else '—'}</td>"
                   f"<td>{_frames(s['frames'])}</td><td>{e(s['event'] or '—')}{_detail(s)}</td>"
                   f"<td>{e(s['title'])}</td>"
                   f"<td>{e(s.get('spec') or '')}</td></tr>")
    out.append("</table>")
    out.append(_kpis(p.get("kpis", {})))
    if p["deviations"]:
        out.append("<ul class=\"deviations\">")
        for d in p["deviations"]:
            spec = f" <span class=\"muted\">({e(d['spec'])})</span>" if d.get("spec") else ""
            frames = f" — {_frames_label(d['frames'])}" if d["frames"] else ""
            out.append(f"<li>{_badge(d['severity'])} {e(d['message'])}{spec}{frames}</li>")
        out.append("</ul>")
    return out


def _diagnostics(cap: dict) -> list[str]:
    records = cap.get("diagnostics", [])
    if not records:
        return ["<p class=\"muted\">No decode diagnostics.</p>"]
    out = [f"<h3>Diagnostics ({len(records)})</h3>",
           "<table class=\"diagnostics\"><tr><th>code</th><th>frames</th><th>message</th></tr>"]
    for d in records:
        out.append(f"<tr><td><code>{e(d.get('code'))}</code></td><td>{_frames(d.get('frames', []))}</td>"
                   f"<td>{e(d.get('message'))}</td></tr>")
    out.append("</table>")
    return out


def render_html(doc: dict, ladders: dict[str, list[Ladder]] | None = None, mode: str = "auto") -> str:
    """The page for a report document: the migrations first, the building blocks folded, then per capture
    the UEs ``shown_sessions(mode)`` picks, each with its ladder (``ladders``: capture file → the ladders
    drawn) and procedures."""
    ladders = ladders or {}
    tool = doc.get("tool", {})
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
           "<title>mcxa compliance report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>mcxa compliance report</h1>",
           f"<p class=\"muted\">{e(tool.get('name', 'mcxa'))} {e(tool.get('version', ''))} — "
           f"{e(doc.get('schema', ''))} — rules: {e(', '.join(tool.get('rules', [])))}</p>"]
    shown: dict[str, set[str]] = {}
    for cap in doc["captures"]:
        picked = shown_sessions(cap["procedures"], mode)
        shown[cap["file"]] = {p["session"] for p in cap["procedures"]} if picked is None else picked
    out += headline(doc, shown)
    out += building_blocks(doc, shown)
    legend = False
    for ci, cap in enumerate(doc["captures"]):
        stats = cap["stats"]
        out.append(f"<h2 id=\"c{ci}\">{e(cap['file'])}</h2>")
        damage = unread_text(cap)
        if damage:
            out.append(f"<p class=\"damage\">{_badge('incomplete')} {e(damage)}</p>")
        if "accounting" in cap:  # where every packet went, then the TLS flows and ESP nobody could read
            acc = cap["accounting"]
            lines = filter(None, (accounting_text(acc), tls_text(acc), esp_text(acc)))
            out.append("<p class=\"accounting\">" + "<br>".join(map(e, lines)) + "</p>")
        out.append(f"<p class=\"muted\">{e(stats['events'])} events, {e(stats['ue_sessions'])} UE "
                   f"session(s), {e(stats['decode_errors'])} decode diagnostic(s)</p>")
        by_session: dict[str, list[dict]] = {}
        for p in cap["procedures"]:
            by_session.setdefault(p["session"], []).append(p)
        drawn = {ladder.session: ladder for ladder in ladders.get(cap["file"], [])}
        sessions = [*drawn, *(s for s in by_session if s in shown[cap["file"]] and s not in drawn)]
        if drawn and not legend:
            out.append(_legend())
            legend = True
        for sid in sessions:
            ladder = drawn.get(sid)
            title = ladder.title if ladder else sid
            out.append(f"<section class=\"ue\" id=\"c{ci}-{e(sid)}\"><h3>{e(title)}</h3>")
            if ladder is not None:
                drawing = svg(ladder, f"c{ci}-{sid}-ladder", inline=True, legend=False)
                out.append(f"<div class=\"ladder-box\">{drawing}</div>")
            for p in by_session.get(sid, []):
                out += _procedure(p)
            if not by_session.get(sid):
                out.append("<p class=\"muted\">No procedure instance for this UE.</p>")
            out.append("</section>")
        rest = stats["ue_sessions"] - len(sessions)
        if rest > 0:
            out.append(f"<p class=\"muted not-drawn\">{rest} other UE session(s) not detailed: the tables "
                       "above count them ('--ladders all' details and draws every UE).</p>")
        out += _diagnostics(cap)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_html(doc: dict, out: IO[str], ladders: dict[str, list[Ladder]] | None = None,
               mode: str = "auto") -> None:
    out.write(render_html(doc, ladders, mode))
