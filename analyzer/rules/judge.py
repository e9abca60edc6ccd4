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
    if analysis.stream is not None:
        last_event = analysis.stream.last_event or 0.0
    else:
        last_event = max((e.end or e.time for e in analysis.events), default=0.0)
    return max(analysis.stats.last_time or 0.0, last_event)


def judge(analysis: CaptureAnalysis, rules: list[Rule], window: float | None = None,
          count_rtp: bool = True) -> list[Instance]:
    """Every procedure instance of every UE session, judged, with its media figures, in report order (by
    anchor time, then rule). ``count_rtp``: walk the capture once more for the RTP of the migrations'
    calls (``mcxa watch`` skips it while watching: each of its judgements would walk a growing file)."""
    found = sorted(judgements(analysis, rules, window, count_rtp), key=report_order)
    return [inst for _, inst in found]


def report_order(judged: tuple[tuple, Instance]) -> tuple:
    """The order of the report: by anchor time, then rule, then as ``judgements`` gives them."""
    seq, inst = judged
    return inst.anchor.time, inst.rule.id, seq


def judgements(analysis: CaptureAnalysis, rules: list[Rule], window: float | None = None,
               count_rtp: bool = True, release: bool = False) -> Iterator[tuple[tuple, Instance]]:
    """(sequence, instance) of every procedure instance: the sequence, (session, rule, instance) numbers,
    orders them as if judged session by session and rule by rule; those with media figures come last, once
    the RTP is counted. A streamed analysis (``MeaningOptions.streamed``) judges each session as soon as
    its last event is read, and lets it go; so does a listed one with ``release`` (it lets go of its
    lists: ``CaptureAnalysis.release``). What an instance cites stays while it is held."""
    end = capture_end(analysis)
    release = release or analysis.stream is not None
    if analysis.stream is not None:
        sessions = analysis.stream.sessions()
    else:
        sessions = _listed(analysis.sessions, release)
        if release:
            analysis.release()
    measured = []  # (seq, instance, the floor events of its calls): figures and KPIs, once RTP is counted
    for number, session in sessions:
        timeline = Timeline(session.events)
        named = replace(session, events=(), links=()) if release else session  # (what reports read of it)
        for position, rule in enumerate(rules):
            judged = instances(replace(rule, window=window) if window else rule, session, end, timeline)
            for i, inst in enumerate(judged):
                seq = (number, position, i)
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


def _listed(sessions: list, release: bool) -> Iterator[tuple[int, object]]:
    """(index, session) of a list; ``release``: each let go of as it is given."""
    for index, session in enumerate(sessions):
        if release:
            sessions[index] = None
        yield index, session
