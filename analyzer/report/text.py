"""The report as text for a terminal: per capture where every packet went, one 80-column line per
procedure, its deviations, and where to look next."""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import IO

from analyzer.report.accounting import accounting_text, esp_text, tls_text
from analyzer.report.document import unread_text
from analyzer.report.wireshark import frame_filter


def _fit(text: str | None, width: int) -> str:
    """Cut to ``width`` with an ellipsis, so a procedure stays on one 80-column line; a ``sip:`` scheme
    is dropped first (the JSON report keeps full URIs). A value a rule did not bind (None) is ``?``."""
    text = "?" if text is None else text
    text = text[4:] if text.startswith("sip:") else text
    return text if len(text) <= width else text[:width - 1] + "…"


#: ANSI styles of the words a reader looks for first, as the ladder colours them (green, amber, red).
_STYLES = {"compliant": "32", "deviation": "1;31", "incomplete": "33", "error": "1;31", "warning": "33",
           "info": "2", "heading": "1", "INCOMPLETE": "1;33", "next": "2"}


def _paint(text: str, style: str, color: bool) -> str:
    """``text`` in ``_STYLES[style]`` when ``color``; the width it takes is unchanged."""
    code = _STYLES.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def write_text(doc: dict, out: IO[str], color: bool = False) -> None:
    """One line per procedure, then its deviations, then where to look next. Fits 80 columns; with
    ``color``, verdicts and severities are coloured (ANSI), as ``mcxa flow`` colours steps. Each deviation
    gives the Wireshark display filter of its frames, on one line that may pass 80 columns (it is pasted
    whole)."""
    for cap in doc["captures"]:
        stats = cap["stats"]
        ues = stats["ue_sessions"]
        out.write(_paint(f"{cap['file']}: {ues} UE{'' if ues == 1 else 's'}" if "accounting" in cap else
                         f"{cap['file']}: {stats['packets']} packets, {stats['sip_messages']} SIP, "
                         f"{stats['http_messages']} HTTP, {ues} UE(s)", "heading", color) + "\n")
        damage = unread_text(cap)
        lines = [f"INCOMPLETE: {damage}" if damage else None]
        if "accounting" in cap:
            acc = cap["accounting"]
            lines += [accounting_text(acc), tls_text(acc), esp_text(acc)]
        for line in filter(None, lines):
            text = textwrap.fill(line, 80, initial_indent="  ", subsequent_indent="    ",
                                 break_on_hyphens=False)
            if text.startswith("  INCOMPLETE:"):
                text = "  " + _paint("INCOMPLETE:", "INCOMPLETE", color) + text[len("  INCOMPLETE:"):]
            out.write(text + "\n")
        if not any(p["kind"] == "migration" for p in cap["procedures"]):
            if damage:
                out.write("  no migration found in what could be read\n")
            else:
                out.write("  no migration found (no UE left a system during an ongoing call)\n")
        quiet = [p for p in cap["procedures"]
                 if p["kind"] == "building-block" and p["verdict"] == "compliant"]
        for p in cap["procedures"]:
            if p in quiet:
                continue
            subject = p["group"] or p["peer"] or p["from_system"] or ""
            verdict = _paint(p["verdict"], p["verdict"], color) + " " * (10 - len(p["verdict"]))
            out.write(f"  {verdict} {_fit(p['rule'], 22):<22} {_fit(p['ue'], 23):<23} "
                      f"{_fit(subject, 19)}\n")
            kpis = p["kpis"]
            if "service_interruption" in kpis:
                route = f"{_fit(p['from_system'] or '?', 18)} → {_fit(p['to_system'], 18)}"
                heard = kpis.get("media_interruption")
                heard = f" (as heard: {heard:.1f} s)" if heard is not None else ""
                out.write(f"       {route}: migration {kpis['migration_duration']:.1f} s, interruption "
                          f"{kpis['service_interruption']:.1f} s{heard}\n")
            for d in p["deviations"]:
                text = f"[{d['severity']}] {d['message']}" + (f" ({d['spec']})" if d.get("spec") else "")
                text = textwrap.fill(text, 80, initial_indent=" " * 7, subsequent_indent=" " * 9,
                                     break_on_hyphens=False)
                tag = f"[{d['severity']}]"
                out.write(" " * 7 + _paint(tag, d["severity"], color) + text[7 + len(tag):] + "\n")
                if d["frames"]:  # one line, never wrapped: it is pasted into Wireshark whole
                    out.write(f"         Wireshark: {frame_filter(d['frames'])}\n")
        if quiet:
            counts = Counter(p["rule"] for p in quiet)
            out.write("  + compliant building blocks: "
                      + ", ".join(f"{rule} ×{n}" for rule, n in sorted(counts.items())) + "\n")
        sessions = {p["session"] for p in cap["procedures"] if p["verdict"] != "compliant"}
        for session in sorted(sessions):
            out.write(f"  {_paint('next:', 'next', color)} mcxa flow {cap['file']} --ue {session}\n")
        if stats["decode_errors"]:
            out.write(f"  {stats['decode_errors']} decode diagnostic(s): "
                      f"mcxa messages {cap['file']} lists them\n")
