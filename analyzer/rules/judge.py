"""The rules applied to one analysed capture: every procedure instance of every UE session, judged."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from analyzer.capture import rereadable
from analyzer.meaning.analysis import CaptureAnalysis
from analyzer.meaning.sessions import UeSession
from analyzer.rules import Rule
from analyzer.rules.matcher import Instance, Timeline, instances
from analyzer.rules.media import Probe, counted_endpoints, measure, probe_of
from analyzer.transport.rtp import received


def capture_end(analysis: CaptureAnalysis) -> float:
    """The last moment the capture shows (its last packet, or event); steps due later cannot be judged."""
    if analysis.stream is not None:
        last_event = analysis.stream.last_event or 0.0
    else:
        last_event = max((e.end or e.time for e in analysis.events), default=0.0)
    return max(analysis.stats.last_time or 0.0, last_event)


def judge(analysis: CaptureAnalysis, rules: list[Rule], window: float | None = None,
          count_rtp: bool = True, sessions: Iterable[tuple[int, UeSession]] | None = None) -> list[Instance]:
    """Every procedure instance of every UE session, judged, with its media figures, in report order (by
    anchor time, then rule). ``count_rtp``: walk the capture once more for the RTP of the migrations'
    calls (``mcxa watch`` skips it while watching: each of its judgements would walk a growing file);
    ``sessions``: only these (number, session) of a listed analysis (``mcxa watch``: those that may have
    changed)."""
    found, probes = [], []
    for seq, inst, probe in judgements(analysis, rules, window, sessions):
        found.append((seq, inst))
        if probe is not None:
            probes.append((inst, probe))
    ports = {e for _, probe in probes for e in counted_endpoints(probe)}
    rtp = rtp_counts(analysis, ports) if count_rtp else {}
    for inst, probe in probes:
        inst.figures, kpis = measure(probe, rtp)
        inst.deviations += kpis
    found.sort(key=report_order)
    return [inst for _, inst in found]


def report_order(judged: tuple[tuple, Instance]) -> tuple:
    """The order of the report: by anchor time, then rule, then as ``judgements`` gives them."""
    seq, inst = judged
    return inst.anchor.time, inst.rule.id, seq


def judgements(analysis: CaptureAnalysis, rules: list[Rule], window: float | None = None,
               sessions: Iterable[tuple[int, UeSession]] | None = None
               ) -> Iterator[tuple[tuple, Instance, Probe | None]]:
    """(sequence, instance, probe) of every procedure instance as it is judged: the sequence, (session,
    rule, instance) numbers, orders them as if judged session by session and rule by rule; the probe
    (``rules.media``), for the instances with media figures, measures them once the RTP is counted
    (``rtp_counts``). A streamed analysis (``MeaningOptions.streamed``) judges each session as soon as its
    last event is read, and lets it go; ``sessions``: see ``judge``."""
    end = capture_end(analysis)
    if sessions is None:
        sessions = analysis.stream.sessions() if analysis.stream is not None else enumerate(analysis.sessions)
    for number, session in sessions:
        timeline = Timeline(session.events)
        for position, rule in enumerate(rules):
            judged = instances(replace(rule, window=window) if window else rule, session, end, timeline)
            measured = rule.migration is not None or rule.kpis
            for i, inst in enumerate(judged):
                yield (number, position, i), inst, probe_of(inst, timeline) if measured else None


def rtp_counts(analysis: CaptureAnalysis, ports: set[str]) -> dict:
    """Endpoint → the RTP the UE received there (``ports``: the migrations' ``counted_endpoints``): one
    more walk of the capture (none when it cannot be read twice)."""
    return received(analysis.path, ports) if ports and rereadable(analysis.path) else {}

