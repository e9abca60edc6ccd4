"""The rules applied to one analysed capture: every procedure instance of every UE session, judged."""

from __future__ import annotations

from collections.abc import Iterator
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
    """Every procedure instance of every UE session, judged, with its media figures, in report order (by
    anchor time, then rule). ``count_rtp``: walk the capture once more for the RTP of the migrations'
    calls (``mcxa watch`` skips it while watching: each of its judgements would walk a growing file)."""
    found = sorted(judgements(analysis, rules, window, count_rtp), key=report_order)
    return [inst for _, inst in found]


def report_order(judged: tuple[int, Instance]) -> tuple:
    """The order of the report: by anchor time, then rule, then as ``judgements`` gives them."""
    seq, inst = judged
    return inst.anchor.time, inst.rule.id, seq


def judgements(analysis: CaptureAnalysis, rules: list[Rule], window: float | None = None,
               count_rtp: bool = True, release: bool = False) -> Iterator[tuple[int, Instance]]:
    """(sequence number, instance) of every procedure instance, session by session and rule by rule (the
    sequence numbers count in that order); those with media figures come last, once the RTP is counted.
    ``release``: the analysis lets go of its events and sessions (``CaptureAnalysis.release``), and each
    session goes as soon as it is judged: what an instance cites stays, while it is held."""
    end = capture_end(analysis)
    sessions = analysis.sessions
    if release:
        analysis.release()
    measured = []  # (seq, instance, the floor events of its calls): figures and KPIs, once RTP is counted
    seq = 0
    for index, session in enumerate(sessions):
        if release:
            sessions[index] = None
        timeline = Timeline(session.events)
        named = replace(session, events=(), links=()) if release else session  # (what reports read of it)
        for rule in rules:
            for inst in instances(replace(rule, window=window) if window else rule, session, end, timeline):
                seq += 1
                if rule.migration is not None or rule.kpis:
                    inst.session = named
                    measured.append((seq, inst, floor_events(inst, timeline)))
                else:
                    yield seq, inst
    ports = {e for _, inst, _ in measured if inst.rule.migration is not None for e in media_endpoints(inst)}
    rtp = received(analysis.path, ports) if count_rtp and ports and rereadable(analysis.path) else {}
    for seq, inst, floor in measured:
        inst.figures = measure(inst, floor, rtp)
        yield seq, inst
