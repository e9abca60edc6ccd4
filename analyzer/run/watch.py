"""``mcxa watch``: verdicts while the capture is still being made.

Pass 1 (``fact_collector``) streams as in every command. Every ``TICK`` seconds of wall time (or longer
when a tick costs more: never more than half the time is spent judging) when new facts arrived or capture
time moved on, pass 2, the UE sessions and the rules run again over the facts held so far, up to the
latest capture time seen, and the procedure instances newly *decided* are handed on, each once. The cost
of a tick therefore grows with the facts held (bounded by the meaning caps, ``analyzer.base.limits``).

An instance is decided when no later packet can change its verdict: every step is *settled*, i.e. its
event is a success through the step's first (preferred) way of matching — the matcher keeps the first
success of its first alternative, which a later packet cannot displace (a late one: once ``GRACE`` has
passed after it, as a refusal of an earlier request would displace it) — or the capture went past the
step's due time by ``GRACE`` (an answer to a request sent before that moment would have come by then,
RFC 3261 Timer F) — for a failed step, past one more window (a retry accepted that late is told with it,
``matcher._late_retry``). So a compliant migration is told as soon as its last step succeeds; a missing or
failed step (a retry could still succeed in time) once its window has passed.

At the end (the capture tool stopped, the file or pipe ended, Ctrl-C, ``--duration``) the facts are
completed and judged once more exactly as ``mcxa analyze`` judges: procedures not decided yet are told
then (``final``); one whose verdict differs from what was told live (a later packet changed which systems
or sessions the analysis sees) is told again as ``revised``. The final analysis gives the full report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from analyzer.engines import Decoded, DecodeOptions, get_engine
from analyzer.meaning.analysis import CaptureAnalysis, MeaningOptions
from analyzer.meaning.events.extract import build_events, fact_collector
from analyzer.meaning.events.floor import keep_floor
from analyzer.meaning.problems import Problems
from analyzer.meaning.sessions import build_sessions
from analyzer.report.document import procedure_dict
from analyzer.rules import Rule
from analyzer.rules.judge import capture_end, judge
from analyzer.rules.matcher import NO_ANSWER_AFTER, Instance, StepResult, fits

#: Seconds of wall time between two judgements of the facts so far (at least).
TICK = 1.0
#: Seconds of capture time past a step's due time after which its event can no longer come in time.
GRACE = NO_ANSWER_AFTER
#: A capture is live when a packet read was stamped within this many seconds of the wall clock: its
#: time then goes on while nothing comes (a quiet minute is a minute of capture with nothing in it).
LIVE_SKEW = 60.0
#: Seconds a packet may take from the wire to mcxa (the capture tool's buffering, the pipe, the poll):
#: while nothing comes, the capture is taken to have gone on until this long before the wall clock.
LAG = 2.0


@dataclass(frozen=True, slots=True)
class Told:
    """A procedure told to the user: ``how`` is ``live`` (decided while watching), ``final`` (judged at the
    end, not decided before) or ``revised`` (its final verdict differs from the one told live, ``was``)."""

    how: str
    procedure: dict  # the report's procedure (``report.document.procedure_dict``)
    at: float  # the capture time it was decided at (the latest seen)
    was: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """What the status line shows."""

    packets: int
    ues: int
    open: int
    decided: int
    latest: float | None


def settled(step: StepResult, bindings: dict, latest: float) -> bool:
    """Whether no later packet can change this step's result (see the module docstring)."""
    event = step.event
    if event is not None and event.outcome in ("success", "encrypted") and step.step.match \
            and fits(event, step.step.match[0], bindings):
        # (a success after its due time gives way to a request sent before it but refused after it)
        return step.due is None or event.time <= step.due or latest >= event.time + GRACE
    if step.due is None:
        return False
    if step.status == "failed" and step.retry is None and step.reference is not None:
        # a retry accepted up to one window late still counts (and times the steps after it)
        return latest >= step.due + (step.due - step.reference) + GRACE
    return latest >= step.due + GRACE


def decided(inst: Instance, latest: float) -> bool:
    """Whether ``inst``'s verdict is certain at capture time ``latest``: every step settled."""
    return all(settled(s, inst.bindings, latest) for s in inst.steps)


def key_of(inst: Instance) -> tuple:
    """What names an instance across judgements: its rule, anchor and migration point (their frames) and
    what they bind (one affiliation request for two groups is two procedures, each told)."""
    bound = (*(getattr(inst.anchor, source) for _, source in inst.rule.bind),
             *(getattr(inst.migration, source) for _, source in inst.rule.bind_migration))
    return inst.rule.id, inst.anchor.frame, inst.migration.frame, *map(str, bound)


class Watcher:
    """Pass 1 fed item by item; ``tick`` judges what is held and hands newly decided procedures to
    ``tell``; ``finish`` judges the whole once the items have ended."""

    def __init__(self, path: str, rules: list[Rule], window: float | None, meaning: MeaningOptions,
                 tell: Callable[[Told], None], status: Callable[[Status], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self.path, self.rules, self.window, self.meaning = path, rules, window, meaning
        self.tell, self.status, self.clock, self.wall = tell, status, clock, wall
        self.live = False  # a packet came stamped near the wall clock (``LIVE_SKEW``)
        self.problems = Problems()  # counted and capped per code, as diagnostics are
        self.collector = fact_collector(self.problems, meaning.limits)
        self.floor: list = []  # floor control messages for floor events (``keep_floor``: bounded)
        self.decoded: Decoded | None = None
        self.told: dict[tuple, str] = {}  # instance key → verdict told (bounded by the instances held)
        self.settled: set[int] = set()  # hashes of the events of the sessions with every instance decided
        self._next = clock() + TICK
        self._judged_at: tuple[int, float | None] = (0, None)  # (facts, latest) of the last judgement
        self._ues = self._open = 0

    @property
    def latest(self) -> float | None:
        stats = self.decoded.stats if self.decoded is not None else None
        return stats.last_time if stats is not None else None

    def feed(self, item) -> None:
        self.collector.feed(item)
        keep_floor(self.floor, item, self.meaning.limits, self.problems)
        if not self.live and abs(self.wall() - item.time) < LIVE_SKEW:
            self.live = True
        self.maybe_tick()

    def idle(self) -> None:
        """Nothing more to read for now: in a live capture, time goes on (``LAG``); then maybe judge."""
        self.catch_up(self.wall())
        self.maybe_tick()

    def catch_up(self, wall: float) -> None:
        """A live capture with nothing new up to ``wall`` − ``LAG``: that is its latest time now, and pass 1
        lets go of the transactions that waited for copies until then."""
        stats = self.decoded.stats if self.decoded is not None else None
        now = wall - LAG
        if stats is None or not self.live or stats.last_time is None or now <= stats.last_time:
            return
        stats.last_time = now
        self.collector.tick(now)

    def maybe_tick(self) -> None:
        """Judge if a tick is due and something changed; always refresh the status line."""
        now = self.clock()
        if now < self._next or self.decoded is None:
            return
        state = (self.collector.added, self.latest)
        if state != self._judged_at:
            self._judged_at = state
            self.tick()
        spent = self.clock() - now
        self._next = self.clock() + max(TICK, spent)
        self._show()

    def _show(self) -> None:
        if self.status is not None:
            stats = self.decoded.stats if self.decoded is not None else None
            self.status(Status(stats.packets if stats else 0, self._ues, self._open, len(self.told),
                               self.latest))

    def _analysis(self, facts, problems: list | None) -> CaptureAnalysis:
        """``facts``: a sorted list (pass 1 goes on), or pass 1's closed store."""
        m = self.meaning
        events, systems = build_events(facts, m.systems, m.migration_reason, problems, self.latest,
                                       list(self.collector.observed), m.limits,
                                       self.floor[:m.limits.floor_messages])
        sessions = build_sessions(events, m.identity_map, m.address_window, m.limits.identities, problems)
        return CaptureAnalysis(self.path, self.decoded.stats, self.decoded.diagnostics, events, systems,
                               sessions)

    def tick(self) -> None:
        """Judge the facts held so far; tell the instances newly decided. A session whose instances were
        all decided by an earlier tick, and whose events are the same since, is not judged again (no
        later moment changes a decided verdict): on a long watch, judging costs what is still open."""
        facts = self.collector.so_far()
        analysis = self._analysis(facts, None)  # problems are reported once, by the final judgement
        signatures = [hash(s.events) for s in analysis.sessions]
        fresh = [(n, s) for n, s in enumerate(analysis.sessions) if signatures[n] not in self.settled]
        judged = judge(analysis, self.rules, self.window, count_rtp=False,  # (RTP: at the end only)
                       sessions=fresh)
        latest = capture_end(analysis)
        self._ues, self._open = len(analysis.sessions), 0
        undecided: set[int] = set()  # (ids of the sessions with an instance still open)
        for inst in judged:
            key = key_of(inst)
            if key in self.told:
                continue
            if decided(inst, latest):
                self.told[key] = inst.verdict
                self.tell(Told("live", procedure_dict(inst), latest))
            else:
                self._open += 1
                undecided.add(id(inst.session))
        self.settled = {signatures[n] for n, s in enumerate(analysis.sessions)
                        if signatures[n] in self.settled or id(s) not in undecided}

    def finish(self, stopped_at: float | None = None) -> tuple[CaptureAnalysis, list[Instance]]:
        """The items have ended: complete pass 1, judge everything as ``mcxa analyze`` does, tell what was
        not told (and what the full judgement revised); the analysis and instances for the report.
        ``stopped_at``: the wall time watching was stopped at (a live capture went on until then)."""
        if stopped_at is not None:
            self.catch_up(stopped_at)
        analysis = self._analysis(self.collector.close(), self.problems)
        analysis.diagnostics.merge(self.problems.counts, self.problems.records)
        judged = judge(analysis, self.rules, self.window)
        latest = capture_end(analysis)
        for inst in judged:
            key = key_of(inst)
            was = self.told.get(key)
            if was is None or was != inst.verdict:
                self.told[key] = inst.verdict
                self.tell(Told("final" if was is None else "revised", procedure_dict(inst), latest, was))
        self._ues, self._open = len(analysis.sessions), 0
        self._show()
        return analysis, judged


def watch(path: str, opener: Callable[[str], object], watcher: Watcher, options: DecodeOptions,
          stopped_at: Callable[[], float | None] = lambda: None) -> tuple[CaptureAnalysis, list[Instance]]:
    """Decode the capture ``opener`` opens (a follower) with the dpkt engine, feeding ``watcher``, to its
    end; then its final judgement. The follower's idle callback should call ``watcher.idle``;
    ``stopped_at`` says when watching was stopped (None: the capture ended by itself)."""
    decoded = get_engine("dpkt")(path, DecodeOptions(
        sip_ports=options.sip_ports, limits=options.limits, workers=1, opener=opener,
        progress=options.progress, esp_sa=options.esp_sa))
    watcher.decoded = decoded
    for item in decoded.items:
        watcher.feed(item)
    return watcher.finish(stopped_at())
