"""``mcxa analyze --format html``: one self-contained HTML page (inline CSS, inline SVG ladders; no script,
font, image or other resource is loaded) with, per capture, the procedures and verdicts, per UE the ladder
diagram, each procedure's step timeline, KPIs and deviations, and the decode diagnostics.

Every string that comes from a capture (or anywhere else) goes through ``html.escape`` — a SIP header
saying ``<script>`` is shown as text, never run.
"""

from __future__ import annotations

import html
from typing import IO

from analyzer.base.times import clock
from analyzer.report.accounting import accounting_text, esp_text, tls_text
from analyzer.report.document import step_label, step_tone, unread_text
from analyzer.report.ladder import Ladder, svg

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
"""


def e(value: object) -> str:
    """Escape any value for HTML text and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def _badge(text: str, tone: str | None = None) -> str:
    """A coloured label; ``tone`` (default: the text itself, a verdict or severity) picks the colour."""
    return f'<span class="badge {e(tone or text)}">{e(text)}</span>'


def _frames(frames) -> str:
    return e(", ".join(map(str, frames))) if frames else "—"


def _frames_label(frames) -> str:
    return f"frame{'s' if len(frames) > 1 else ''} {_frames(frames)}"


def _route(p: dict) -> str:
    return f"{p['from_system']} → {p['to_system']}" if p.get("to_system") else (p.get("from_system") or "")


def _summary(doc: dict) -> list[str]:
    out = ["<h2>Summary</h2>", "<table class=\"summary\"><tr><th>capture</th><th>procedure</th><th>UE</th>"
           "<th>group / peer</th><th>systems</th><th>verdict</th><th>time</th><th>deviations</th></tr>"]
    for ci, cap in enumerate(doc["captures"]):
        damage = unread_text(cap)
        if damage:
            out.append(f"<tr><td>{e(cap['file'])}</td><td colspan=\"4\">{e(damage)}</td>"
                       f"<td>{_badge('incomplete')}</td><td colspan=\"2\"></td></tr>")
        if not cap["procedures"]:
            out.append(f"<tr><td>{e(cap['file'])}</td><td colspan=\"7\" class=\"muted\">no procedure found"
                       "</td></tr>")
        for p in cap["procedures"]:
            errors = sum(1 for d in p["deviations"] if d["severity"] == "error")
            out.append(f"<tr><td>{e(cap['file'])}</td>"
                       f"<td><a href=\"#c{ci}-{e(p['session'])}\">{e(p['rule'])}</a></td>"
                       f"<td>{e(p['ue'])}</td><td>{e(p['group'] or p['peer'] or '')}</td>"
                       f"<td>{e(_route(p))}</td><td>{_badge(p['verdict'])}</td>"
                       f"<td>{e(clock(p['start']))}–{e(clock(p['end']))}</td><td>{errors}</td></tr>")
    out.append("</table>")
    return out


def _kpis(kpis: dict) -> str:
    parts = []
    if "migration_duration" in kpis:
        parts.append(f"migration duration {e(kpis['migration_duration'])} s")
    if "service_interruption" in kpis:
        parts.append(f"service interruption {e(kpis['service_interruption'])} s")
    for key, name in (("media_interruption", "interruption as heard (floor control)"),
                      ("late_entry_time", "late call entry time (KPI 4)")):
        if key in kpis:
            parts.append(f"{name} {e(kpis[key])} s")
    if kpis.get("access_times"):
        times = ", ".join(f"{e(a['seconds'])} s" for a in kpis["access_times"])
        parts.append(f"access times (KPI 1) {times}")
    steps = ", ".join(f"{e(k)} {e(v)} s" for k, v in kpis.get("step_seconds", {}).items())
    if steps:
        parts.append(f"seconds per step: {steps}")
    return "<p class=\"kpis\"><b>KPIs</b>: " + ("; ".join(parts) or "—") + "</p>"


def _procedure(p: dict) -> list[str]:
    subject = p["group"] or p["peer"] or ""
    out = [f"<h4>{e(p['title'])} <code>{e(p['rule'])}</code> {_badge(p['verdict'])}</h4>",
           f"<p class=\"muted\">{e(p['spec'])} — {e(p['ue'])} {e(subject)} {e(_route(p))} "
           f"({e(clock(p['start']))}–{e(clock(p['end']))})</p>",
           "<table class=\"steps\"><tr><th>step</th><th>status</th><th>time</th><th>frames</th><th>event</th>"
           "<th>what</th><th>spec</th></tr>"]
    for s in p["steps"]:
        out.append(f"<tr><td><code>{e(s['id'])}</code></td><td>{_badge(step_label(s), step_tone(s))}</td>"
                   f"<td>{e(clock(s['time'])) if s['time'] is not None else '—'}</td>"
                   f"<td>{_frames(s['frames'])}</td><td>{e(s['event'] or '—')}</td><td>{e(s['title'])}</td>"
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


def render_html(doc: dict, ladders: dict[str, list[Ladder]] | None = None) -> str:
    """The page for a report document; ``ladders``: capture file → the ladders of its UE sessions."""
    ladders = ladders or {}
    tool = doc.get("tool", {})
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
           "<title>mcxa compliance report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>mcxa compliance report</h1>",
           f"<p class=\"muted\">{e(tool.get('name', 'mcxa'))} {e(tool.get('version', ''))} — "
           f"{e(doc.get('schema', ''))} — rules: {e(', '.join(tool.get('rules', [])))}</p>"]
    out += _summary(doc)
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
        shown = ladders.get(cap["file"], [])
        sessions = [ladder.session for ladder in shown] + [s for s in by_session
                                                            if s not in {x.session for x in shown}]
        for sid in sessions:
            ladder = next((x for x in shown if x.session == sid), None)
            title = ladder.title if ladder else sid
            out.append(f"<section class=\"ue\" id=\"c{ci}-{e(sid)}\"><h3>{e(title)}</h3>")
            if ladder is not None:
                drawing = svg(ladder, f"c{ci}-{sid}-ladder", inline=True)
                out.append(f"<div class=\"ladder-box\">{drawing}</div>")
            for p in by_session.get(sid, []):
                out += _procedure(p)
            if not by_session.get(sid):
                out.append("<p class=\"muted\">No procedure instance for this UE.</p>")
            out.append("</section>")
        out += _diagnostics(cap)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_html(doc: dict, out: IO[str], ladders: dict[str, list[Ladder]] | None = None) -> None:
    out.write(render_html(doc, ladders))
