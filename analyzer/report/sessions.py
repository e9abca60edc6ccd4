"""``mcxa sessions`` output: per UE, its identities and why they are linked, the systems it used, its
registration/affiliation timeline and its calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import IO

from analyzer.base import times
from analyzer.base.times import clock
from analyzer.meaning.analysis import CaptureAnalysis
from analyzer.meaning.sessions import UeSession
from analyzer.report.document import write_json

#: Event kinds shown in the timeline of ``mcxa sessions`` (calls and state changes, not every status).
TIMELINE = ("registration", "deregistration", "service-authorisation", "affiliation", "deaffiliation",
            "profile-retrieval", "config-access-encrypted", "token-request", "group-call-originate",
            "group-call-join", "group-call-incoming", "group-call-leave", "private-call-setup",
            "private-call-release", "redirect")


_EVENT_FIELDS = ("frame", "time", "kind", "system", "outcome", "status", "group", "peer", "detail")


def session_dict(s: UeSession) -> dict:
    return {
        "ue": s.id, "mc_id": s.mc_id(),
        "identities": [asdict(i) for i in s.identities],
        "links": [asdict(link) for link in s.links],
        "systems": [{"system": n, "first": f, "last": la} for n, f, la in s.systems],
        "addresses": list(s.addresses),
        "events": [{name: getattr(e, name) for name in _EVENT_FIELDS} for e in s.events],
    }


def write_text(analysis: CaptureAnalysis, out: IO[str]) -> None:
    if not analysis.sessions:
        out.write("no UE sessions: no MC signalling found\n")
    for s in analysis.sessions:
        out.write(f"{s.id}  {s.mc_id() or '(no identity)'}\n")
        out.write("  identities:\n")
        seen = set()
        for i in s.identities:
            if (i.value, i.system) not in seen:
                seen.add((i.value, i.system))
                out.write(f"    {i.kind:<10} {i.value}  ({i.system or 'system unknown'}, from "
                          f"{clock(i.first)})\n")
        if s.links:
            out.write("  linked because:\n")
            for ln in s.links:
                out.write(f"    {ln.a} = {ln.b}: {ln.reason}\n")
        route = " → ".join(f"{n} ({clock(f)}–{clock(la)})" for n, f, la in s.systems)
        out.write(f"  systems: {route or '-'}\n  addresses: {', '.join(s.addresses)}\n  timeline:\n")
        stamp = times.current().rows()
        for e in s.events:
            if e.kind in TIMELINE:
                subject = e.group or e.peer or ""
                status = f" {e.status}" if e.status else ""
                out.write(f"    {stamp(e.time, e.frame)}  frame {e.frame:<6} {e.system or '-':<16} "
                          f"{e.kind:<23} {e.outcome}{status} {subject}\n")
        out.write("\n")


WRITERS: dict[str, Callable] = {
    "text": write_text,
    # indented like ``analyze --format json``: a document people read, not rows a program streams
    "json": lambda analysis, out: write_json(
        {"file": analysis.path, "sessions": [session_dict(s) for s in analysis.sessions]}, out),
}
