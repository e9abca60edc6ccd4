"""The report: judged procedure instances in the shape of ../shared/contract (JSON), and as text.

``judge`` applies the rules to an analysed capture; ``capture_report`` and ``report`` build the contract's
JSON document (schema ``mcxa-report/1``; fields are only ever added); ``exit_code`` and ``write_text``
say it to programs and to people.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import replace
from typing import IO

from analyzer import __version__
from analyzer.exitcodes import ExitCode
from analyzer.pipeline import CaptureAnalysis
from analyzer.rules import Rule
from analyzer.rules.matcher import Instance, instances

SCHEMA = "mcxa-report/1"


def capture_end(analysis: CaptureAnalysis) -> float:
    """The last moment the capture shows (its last packet, or event); steps due later cannot be judged."""
    last_event = max((e.end or e.time for e in analysis.events), default=0.0)
    return max(analysis.stats.last_time or 0.0, last_event)


def judge(analysis: CaptureAnalysis, rules: list[Rule], window: float | None = None) -> list[Instance]:
    end = capture_end(analysis)
    found = []
    for session in analysis.sessions:
        for rule in rules:
            found += instances(replace(rule, window=window) if window else rule, session, end)
    found.sort(key=lambda i: (i.anchor.time, i.rule.id))
    return found


def _kpis(inst: Instance) -> dict:
    seen = [s for s in inst.steps if s.event is not None and s.status != "failed"]
    kpis: dict = {"step_seconds": {}}
    previous = inst.anchor.time
    for s in inst.steps:
        if s.event is not None:
            kpis["step_seconds"][s.step.id] = round(s.event.time - previous, 3)
            previous = s.event.time
    complete = len(seen) == len(inst.steps) and all(s.status == "matched" for s in inst.steps)
    if inst.rule.migration is not None and len(seen) >= 2:
        first, last = seen[0].event, seen[-1].event
        kpis["migration_duration"] = round(last.time - first.time, 3)
        if complete:
            kpis["service_interruption"] = round((last.end or last.time) - first.time, 3)
    return kpis


def procedure_dict(inst: Instance) -> dict:
    b, session = inst.bindings, inst.session
    from_system = b.get("from_system", b.get("system"))
    seen = [s.event for s in inst.steps if s.event is not None]
    return {
        "rule": inst.rule.id,
        "title": inst.rule.title,
        "kind": "migration" if inst.rule.migration is not None else "building-block",
        "spec": inst.rule.spec,
        "verdict": inst.verdict,
        "ue": session.mc_id(from_system) or session.id,
        "ue_aliases": [a for a in dict.fromkeys(session.aliases(from_system))],
        "session": session.id,
        "service": b.get("service"),
        "group": b.get("group"),
        "peer": b.get("peer"),
        "from_system": from_system,
        "to_system": b.get("to_system"),
        "start": min((e.time for e in seen), default=inst.migration.time),
        "end": max((e.end or e.time for e in seen), default=inst.migration.time),
        "anchor": {"kind": inst.anchor.kind, "time": inst.anchor.time, "frames": list(inst.anchor.frames)},
        "steps": [{"id": s.step.id, "title": s.step.title, "status": s.status,
                   "frames": list(s.event.frames) if s.event else [],
                   "time": s.event.time if s.event else None,
                   "event": s.event.kind if s.event else None,
                   "spec": s.step.spec} for s in inst.steps],
        "deviations": [{"code": d.code, "step": d.step, "severity": d.severity, "message": d.message,
                        "spec": d.spec, "frames": list(d.frames)} for d in inst.deviations],
        "kpis": _kpis(inst),
    }


def capture_report(analysis: CaptureAnalysis, judged: list[Instance]) -> dict:
    d = analysis.diagnostics
    return {
        "file": analysis.path,
        "stats": {"packets": analysis.stats.packets, "sip_messages": analysis.stats.sip_messages,
                  "http_messages": analysis.stats.http_messages, "decode_errors": d.total,
                  "events": len(analysis.events), "ue_sessions": len(analysis.sessions)},
        "procedures": [procedure_dict(i) for i in judged],
        "diagnostics": [x.as_dict() for x in d.records],
    }


def report(captures: list[dict], rules: list[Rule]) -> dict:
    return {"schema": SCHEMA,
            "tool": {"name": "mcxa", "version": __version__, "rules": [r.id for r in rules]},
            "captures": captures}


def exit_code(doc: dict) -> ExitCode:
    verdicts = {p["verdict"] for c in doc["captures"] for p in c["procedures"]}
    if "deviation" in verdicts:
        return ExitCode.DEVIATION
    if "incomplete" in verdicts:
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def _fit(text: str, width: int) -> str:
    """Cut to ``width`` with an ellipsis, so a procedure stays on one 80-column line; a ``sip:`` scheme
    is dropped first (the JSON report keeps full URIs)."""
    text = text[4:] if text.startswith("sip:") else text
    return text if len(text) <= width else text[:width - 1] + "…"


def write_text(doc: dict, out: IO[str]) -> None:
    """One line per procedure, then its deviations, then where to look next. Fits 80 columns."""
    for cap in doc["captures"]:
        stats = cap["stats"]
        out.write(f"{cap['file']}: {stats['packets']} packets, {stats['sip_messages']} SIP, "
                  f"{stats['http_messages']} HTTP, {stats['ue_sessions']} UE(s)\n")
        if not any(p["kind"] == "migration" for p in cap["procedures"]):
            out.write("  no migration found (no UE left a system during an ongoing call)\n")
        quiet = [p for p in cap["procedures"]
                 if p["kind"] == "building-block" and p["verdict"] == "compliant"]
        for p in cap["procedures"]:
            if p in quiet:
                continue
            subject = p["group"] or p["peer"] or p["from_system"] or ""
            out.write(f"  {p['verdict']:<10} {_fit(p['rule'], 22):<22} {_fit(p['ue'], 23):<23} "
                      f"{_fit(subject, 19)}\n")
            kpis = p["kpis"]
            if "service_interruption" in kpis:
                route = f"{_fit(p['from_system'] or '?', 18)} → {_fit(p['to_system'], 18)}"
                out.write(f"       {route}: migration {kpis['migration_duration']:.1f} s, interruption "
                          f"{kpis['service_interruption']:.1f} s\n")
            for d in p["deviations"]:
                text = f"[{d['severity']}] {d['message']}" + (f" ({d['spec']})" if d.get("spec") else "")
                out.write(textwrap.fill(text, 80, initial_indent=" " * 7, subsequent_indent=" " * 9,
                                        break_on_hyphens=False) + "\n")
        if quiet:
            counts = Counter(p["rule"] for p in quiet)
            out.write("  + compliant building blocks: "
                      + ", ".join(f"{rule} ×{n}" for rule, n in sorted(counts.items())) + "\n")
        sessions = {p["session"] for p in cap["procedures"] if p["verdict"] != "compliant"}
        for session in sorted(sessions):
            out.write(f"  next: mcxa flow {cap['file']} --ue {session}\n")
        if stats["decode_errors"]:
            out.write(f"  {stats['decode_errors']} decode diagnostic(s): "
                      f"mcxa messages {cap['file']} lists them\n")
