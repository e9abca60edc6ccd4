"""The report as text for a terminal: per capture where every packet went, one 80-column line per
procedure, its deviations, and where to look next."""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import IO

from analyzer.report.accounting import accounting_text, tls_text
from analyzer.report.document import unread_text
from analyzer.report.wireshark import frame_filter


def _fit(text: str | None, width: int) -> str:
    """Cut to ``width`` with an ellipsis, so a procedure stays on one 80-column line; a ``sip:`` scheme
    is dropped first (the JSON report keeps full URIs). A value a rule did not bind (None) is ``?``."""
    text = "?" if text is None else text
    text = text[4:] if text.startswith("sip:") else text
    return text if len(text) <= width else text[:width - 1] + "…"


def write_text(doc: dict, out: IO[str]) -> None:
    """One line per procedure, then its deviations (with the Wireshark display filter of their frames),
    then where to look next. Fits 80 columns but for a long filter."""
    for cap in doc["captures"]:
        stats = cap["stats"]
        ues = stats["ue_sessions"]
        out.write(f"{cap['file']}: {ues} UE{'' if ues == 1 else 's'}\n" if "accounting" in cap else
                  f"{cap['file']}: {stats['packets']} packets, {stats['sip_messages']} SIP, "
                  f"{stats['http_messages']} HTTP, {ues} UE(s)\n")
        damage = unread_text(cap)
        lines = [f"INCOMPLETE: {damage}" if damage else None]
        if "accounting" in cap:
            lines += [accounting_text(cap["accounting"]), tls_text(cap["accounting"])]
        for line in filter(None, lines):
            out.write(textwrap.fill(line, 80, initial_indent="  ", subsequent_indent="    ",
                                    break_on_hyphens=False) + "\n")
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
                if d["frames"]:  # one line, never wrapped: it is pasted into Wireshark whole
                    out.write(f"         Wireshark: {frame_filter(d['frames'])}\n")
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
