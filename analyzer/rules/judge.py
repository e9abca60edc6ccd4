"""The rules applied to one analysed capture: every procedure instance of every UE session, judged."""

from __future__ import annotations

from dataclasses import replace

from analyzer.capture import rereadable
from analyzer.meaning.analysis import CaptureAnalysis
from analyzer.rules import Rule
from analyzer.rules.matcher import Instance, Timeline, instances
from analyzer.rules.media import floor_events, measure, media_endpoints
from analyzer.transport.rtp import received


def capture_end(analysis: CaptureAnalysis) -> float:
    """The last moment the capture shows (its last packet, or event); steps due later cannot be judged."""
    last_event = max((e.end or e.time for e in analysis.events), default=0.0)
    return max(analysis.stats.last_time or 0.0, last_event)


def judge(analysis: CaptureAnalysis, rules: list[Rule], window: float | None = None,
          count_rtp: bool = True) -> list[Instance]:
    """Every procedure instance of every UE session, judged, with its media figures. ``count_rtp``: walk the
    capture once more for the RTP of the migrations' calls (``mcxa watch`` skips it while watching: each
    of its judgements would walk a growing file)."""
    end = capture_end(analysis)
    found = []
    measured = []  # (instance, the floor events of its calls): media figures and KPIs, once RTP is counted
    for session in analysis.sessions:
        timeline = Timeline(session.events)
        for rule in rules:
            here = instances(replace(rule, window=window) if window else rule, session, end, timeline)
            found += here
            if rule.migration is not None or rule.kpis:
                measured += ((inst, floor_events(inst, timeline)) for inst in here)
    ports = {e for inst, _ in measured if inst.rule.migration is not None for e in media_endpoints(inst)}
    rtp = received(analysis.path, ports) if count_rtp and ports and rereadable(analysis.path) else {}
    for inst, floor in measured:
        inst.figures = measure(inst, floor, rtp)
    found.sort(key=lambda i: (i.anchor.time, i.rule.id))
    return found
