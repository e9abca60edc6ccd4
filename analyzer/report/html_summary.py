"""The top of the HTML report, and which UEs it details: what a reader of a 2 000-UE capture needs first.

Procedures are grouped by *pattern* — rule, verdict and the steps that did not match, with their status —
so two thousand migrations that deviate the same way are one row ("2000 UEs: late-entry missing"), not two
thousand. The page details (and draws) a few example UEs per pattern of the procedures that matter (every
migration, every deviation), at most ``MAX_SHOWN`` per capture; ``--ladders all`` details every UE.
"""

from __future__ import annotations

import html
from collections import Counter

from analyzer.base.times import clock
from analyzer.report.document import unread_text

EXAMPLES = 3  # UEs detailed per pattern
MAX_SHOWN = 60  # UEs detailed per capture, whatever the patterns
_LISTED = 200  # UEs or procedures named in one list, at most (the JSON report has them all)


def e(value: object) -> str:
    """Escape any value for HTML text and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def badge(text: str, tone: str | None = None) -> str:
    """A coloured label; ``tone`` (default: the text itself, a verdict or severity) picks the colour."""
    return f'<span class="badge {e(tone or text)}">{e(text)}</span>'


def route(p: dict) -> str:
    return f"{p['from_system']} → {p['to_system']}" if p.get("to_system") else (p.get("from_system") or "")


def cap_cell(file: str) -> str:
    """A table cell naming a capture by its file name (the path on hover), to keep tables narrow."""
    return f"<td title=\"{e(file)}\">{e(file.rsplit('/', 1)[-1])}</td>"


def pattern(p: dict) -> tuple:
    """What makes two procedures alike for a reader: rule, verdict, and each step not matched with its
    status."""
    return p["rule"], p["verdict"], tuple((s["id"], s["status"]) for s in p["steps"]
                                          if s["status"] != "matched")


def _patterns(procedures) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for p in procedures:
        groups.setdefault(pattern(p), []).append(p)
    return groups


def _notable(procedures: list[dict]) -> list[dict]:
    return [p for p in procedures if p["kind"] == "migration" or p["verdict"] == "deviation"]


def shown_sessions(procedures: list[dict], mode: str) -> set[str] | None:
    """``--ladders``: the UE sessions the page details — with ``all`` every one (None); else up to
    ``EXAMPLES`` per pattern of the migrations and deviations, taken pattern by pattern (every pattern's
    first example before any second one), at most ``MAX_SHOWN``. Drawn unless the mode is ``none``."""
    if mode == "all":
        return None
    columns = [list(dict.fromkeys(p["session"] for p in group))[:EXAMPLES]
               for group in _patterns(_notable(procedures)).values()]
    shown: dict[str, None] = {}
    for rank in range(EXAMPLES):
        for sessions in columns:
            if rank < len(sessions) and len(shown) < MAX_SHOWN:
                shown.setdefault(sessions[rank])
    return set(shown)


def _how(key: tuple) -> str:
    return ", ".join(f"{step}: {status}" for step, status in key[2]) or "every step matched"


def _who(ci: int, group: list[dict], shown: set[str]) -> str:
    """The UE of a one-procedure pattern with its group and route; else how many procedures and UEs, and
    the UEs, folded."""
    def name(p):
        text = e(p["ue"])
        return f"<a href=\"#c{ci}-{e(p['session'])}\">{text}</a>" if p["session"] in shown else text

    if len(group) == 1:
        p = group[0]
        return f"{name(p)} {e(p['group'] or p['peer'] or '')} <span class=\"muted\">{e(route(p))}</span>"
    ues = list({p["session"]: p for p in group}.values())
    names = ", ".join(name(p) for p in ues[:_LISTED])
    more = f" … {len(ues) - _LISTED} more" if len(ues) > _LISTED else ""
    count = f"{len(ues)} UEs" if len(ues) == len(group) else f"{len(group)} procedures, {len(ues)} UEs"
    return f"<details><summary>{count}</summary>{names}{more}</details>"


def _interruption(group: list[dict]) -> str:
    values = sorted(v for p in group if (v := p["kpis"].get("service_interruption")) is not None)
    if not values:
        return "—"
    return f"{values[0]:.1f} s" if values[0] == values[-1] else f"{values[0]:.1f}–{values[-1]:.1f} s"


def headline(doc: dict, shown: dict[str, set[str]]) -> list[str]:
    """The migrations and their verdicts, first (what the report is for), one row per pattern."""
    out = ["<h2 id=\"migrations\">Migrations</h2>", "<table class=\"summary migrations\"><tr><th>capture</th>"
           "<th>procedure</th><th>verdict</th><th>steps not matched</th><th>UE</th><th>interruption</th>"
           "<th>start</th></tr>"]
    for ci, cap in enumerate(doc["captures"]):
        damage = unread_text(cap)
        if damage:
            out.append(f"<tr>{cap_cell(cap['file'])}<td></td><td>{badge('incomplete')}</td>"
                       f"<td colspan=\"4\">{e(damage)}</td></tr>")
        groups = _patterns(p for p in cap["procedures"] if p["kind"] == "migration")
        if not groups:
            why = "in what could be read" if damage else "(no UE left a system during an ongoing call)"
            out.append(f"<tr>{cap_cell(cap['file'])}<td colspan=\"6\" class=\"muted\">no migration found "
                       f"{why}</td></tr>")
        for key, group in groups.items():
            out.append(f"<tr>{cap_cell(cap['file'])}<td><code>{e(key[0])}</code></td><td>{badge(key[1])}</td>"
                       f"<td>{e(_how(key))}</td><td>{_who(ci, group, shown[cap['file']])}</td>"
                       f"<td>{e(_interruption(group))}</td><td>{e(clock(group[0]['start']))}</td></tr>")
    out.append("</table>")
    return out


def building_blocks(doc: dict, shown: dict[str, set[str]]) -> list[str]:
    """Building blocks folded: per capture and rule, how many of each verdict; then those not compliant,
    one row per pattern."""
    out = ["<h2 id=\"building-blocks\">Building blocks</h2>",
           "<table class=\"summary blocks\"><tr><th>capture</th><th>procedure</th><th>compliant</th>"
           "<th>deviation</th><th>incomplete</th></tr>"]
    flagged = []
    for ci, cap in enumerate(doc["captures"]):
        blocks = [p for p in cap["procedures"] if p["kind"] != "migration"]
        counts: dict[str, Counter] = {}
        for p in blocks:
            counts.setdefault(p["rule"], Counter())[p["verdict"]] += 1
        for rule, n in sorted(counts.items()):
            cells = "".join(f"<td>{badge(str(n[v]), v) if n[v] and v != 'compliant' else n[v]}</td>"
                            for v in ("compliant", "deviation", "incomplete"))
            out.append(f"<tr>{cap_cell(cap['file'])}<td><code>{e(rule)}</code></td>{cells}</tr>")
        if not counts:
            out.append(f"<tr>{cap_cell(cap['file'])}<td colspan=\"4\" class=\"muted\">none</td></tr>")
        flagged += [(ci, cap, key, group) for key, group in
                    _patterns(p for p in blocks if p["verdict"] != "compliant").items()]
    out.append("</table>")
    if flagged:
        out.append("<h4>Not compliant, by pattern</h4>"
                   "<table class=\"summary flagged\"><tr><th>capture</th><th>procedure</th><th>verdict</th>"
                   "<th>steps not matched</th><th>UE</th></tr>")
        for ci, cap, key, group in flagged:
            out.append(f"<tr>{cap_cell(cap['file'])}<td><code>{e(key[0])}</code></td><td>{badge(key[1])}</td>"
                       f"<td>{e(_how(key))}</td><td>{_who(ci, group, shown[cap['file']])}</td></tr>")
        out.append("</table>")
    return out
