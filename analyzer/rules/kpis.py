"""The TS 22.179 KPI thresholds a rule may set (``kpis:``): which KPIs exist and how a rule file gives
them. ``analyzer.rules.media`` measures them (their definitions are there) and checks the thresholds.

``kpis: {access_time: {max: 0.3, severity: warning}}``: each figure over its ``max`` (seconds) adds a
deviation of that severity — info or warning, never an error, so verdicts are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.base.yamlfile import Locations, check_mapping

#: KPI name → what it is (the rule file's ``kpis:`` keys).
KPIS = {"access_time": "TS 22.179 KPI 1 MCPTT access time (floor request → floor granted)",
        "late_entry_time": "TS 22.179 KPI 4 late call entry time (entry request → first Floor Taken)"}
SEVERITIES = ("info", "warning")


@dataclass(frozen=True, slots=True)
class Threshold:
    kpi: str
    max: float  # seconds
    severity: str  # info | warning


def parse_kpis(value: dict, where: Locations, path: tuple) -> tuple[Threshold, ...]:
    """A rule's ``kpis:`` mapping; errors name file, line and key."""
    out = []
    for name, raw in value.items():
        if name not in KPIS:
            raise where.error((*path, name), f"unknown KPI '{name}' (one of: {', '.join(KPIS)})")
        check_mapping(raw, where, (*path, name), {"max": float, "severity": str}, required=("max",))
        if not 0 < raw["max"] < 3600:
            raise where.error((*path, name, "max"), "must be a number of seconds above 0 (and below 3600)")
        severity = raw.get("severity", "warning")
        if severity not in SEVERITIES:
            raise where.error((*path, name, "severity"), f"must be one of: {', '.join(SEVERITIES)} (a KPI "
                                                          "never makes a procedure deviate)")
        out.append(Threshold(name, float(raw["max"]), severity))
    return tuple(out)
