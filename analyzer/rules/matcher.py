"""The generic matcher: rules × UE sessions → procedure instances with per-step status and deviations.

It knows events, fields, variables, order and time — nothing of MC. For each session and each event
fitting a rule's anchor, an instance exists when a later event fits the rule's ``migration`` pattern
before the anchor was ended (or within the window after it ended). Each step then takes the first event
after the anchor that fits one of its alternatives (a successful one up to the time it is due, if any;
the alternatives' order is their preference) and gets a status:

* ``matched`` — found, successful, in order and in time;
* ``failed`` — found, but rejected or unanswered;
* ``out-of-order`` — found before the step it must follow;
* ``late`` — found more than ``within`` seconds after the step it follows (or after the migration point);
* ``unverifiable`` — found only through an alternative that ``gives: unverifiable`` (encrypted evidence);
* ``missing`` — not found: an error when the capture went on past the time it was due, otherwise the
  capture ended too early to tell.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from analyzer.meaning.events import Event
from analyzer.meaning.sessions import UeSession
from analyzer.rules import Pattern, Rule, Step
from analyzer.rules.checks import OPERATORS, STATUS_CLASS
from analyzer.rules.results import Deviation, StepResult
from analyzer.rules.wording import NEAR_SHOWN, describe

#: An unanswered request counts as failed only when the capture went on this long after it (RFC 3261
#: Timer F/B, 64·T1); before that the capture simply ended too early to see the answer.
NO_ANSWER_AFTER = 32.0

SEVERITY = {"missing": "error", "failed": "error", "out-of-order": "error", "late": "error",
            "unverifiable": "warning"}


@dataclass(slots=True)
class Instance:
    """One procedure instance: a rule applied to one UE session and one anchor."""

    rule: Rule
    session: UeSession
    anchor: Event
    migration: Event
    bindings: dict[str, Any]
    ended: Event | None = None  # the event that ended the anchor's call (``ended_by``), if seen
    steps: list[StepResult] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # measured beside the steps (``analyzer.rules.media``)

    @property
    def verdict(self) -> str:
        if any(d.severity == "error" for d in self.deviations):
            return "deviation"
        if any(s.status in ("missing", "unverifiable") for s in self.steps if not s.step.optional):
            return "incomplete"
        return "compliant"


def _user(uri: Any) -> str | None:
    if not isinstance(uri, str) or ":" not in uri:
        return None
    rest = uri.split(":", 1)[1]
    return rest.split("@", 1)[0].lower() if "@" in rest else None


def _value(expected: Any, bindings: dict[str, Any]) -> Any:
    if isinstance(expected, str) and expected.startswith("$"):
        return bindings.get(expected[1:])
    return expected


def _equal(actual: Any, expected: Any) -> bool:
    """Equality, where a value like ``4xx`` stands for every number of that hundred (a status class)."""
    if isinstance(expected, str) and isinstance(actual, int) and STATUS_CLASS.fullmatch(expected):
        return actual // 100 == int(expected[0])
    return actual == expected


def fits(event: Event, pattern: Pattern, bindings: dict[str, Any]) -> bool:
    for name, expected in pattern.constraints:
        actual = getattr(event, name)
        if isinstance(expected, tuple) and len(expected) == 2 and expected[0] in OPERATORS:
            operator, operand = expected
            operand = _value(operand, bindings)
            if operator == "not" and _equal(actual, operand):
                return False
            if operator == "same_user" and (_user(actual) is None or _user(actual) != _user(operand)):
                return False
        elif isinstance(expected, tuple):
            if not any(_equal(actual, _value(v, bindings)) for v in expected):
                return False
        elif not _equal(actual, _value(expected, bindings)):
            return False
    return True


class Timeline:
    """A UE session's events found by time, kind and Call-ID: each anchor, end, migration and step is
    looked for from its start time on, among the events of the kinds (and the call) its pattern names,
    never from the session's first event (that made judging quadratic in a session's events: a long drive
    test, each ``mcxa watch`` judgement)."""

    def __init__(self, events: tuple[Event, ...]):
        self.events = events
        self.times = [e.time for e in events]
        #: (sessions hold their events in time order; were they not, every search would scan them all)
        self.ordered = all(a <= b for a, b in zip(self.times, self.times[1:], strict=False))
        self.by_kind: dict[str, list[int]] = {}
        self.by_call: dict[tuple[str, str | None], list[int]] = {}
        for i, e in enumerate(events):
            self.by_kind.setdefault(e.kind, []).append(i)
            self.by_call.setdefault((e.kind, e.call_id), []).append(i)

    def after(self, start: float, *patterns: Pattern, bindings: dict | None = None,
              strictly: bool = False) -> Iterator[Event]:
        """In order, the events from ``start`` on (after it, ``strictly``) that may fit one of ``patterns``
        (``bindings``: the values of their variables): those of the kinds they name, and of the call
        they name (every event if one names no kind)."""
        if not self.ordered:
            return (e for e in self.events if (e.time > start if strictly else e.time >= start))
        first = (bisect_right if strictly else bisect_left)(self.times, start)
        lists: dict[int, list[int]] = {}
        for pattern in patterns:
            kinds = _kinds(pattern)
            if kinds is None:
                return map(self.events.__getitem__, range(first, len(self.events)))
            call = _call_id(pattern, bindings or {})
            for kind in kinds:
                at = self.by_kind.get(kind) if call is _ANY else self.by_call.get((kind, call))
                if at:
                    lists[id(at)] = at
        # (by range, not islice: islice would step over the part before ``first`` one by one)
        tails = [map(at.__getitem__, range(bisect_left(at, first), len(at))) for at in lists.values()]
        if len(tails) == 1:
            return map(self.events.__getitem__, tails[0])
        return map(self.events.__getitem__, (i for i, _ in itertools.groupby(heapq.merge(*tails))))


    def of_calls(self, kinds: tuple[str, ...], call_ids: list[str]) -> list[Event]:
        """The events of ``kinds`` in the calls ``call_ids``, in order."""
        at = sorted(i for kind in kinds for call in call_ids for i in self.by_call.get((kind, call), ()))
        return [self.events[i] for i in at]


_ANY = object()  # (a pattern that names no one call)


def _kinds(pattern: Pattern) -> tuple[str, ...] | None:
    """The event kinds ``pattern`` can fit; None when it names none (or names them by a variable)."""
    for name, expected in pattern.constraints:
        if name != "kind":
            continue
        if isinstance(expected, str) and not expected.startswith("$"):
            return (expected,)
        if isinstance(expected, tuple) and not (len(expected) == 2 and expected[0] in OPERATORS) \
                and all(isinstance(k, str) and not k.startswith("$") for k in expected):
            return expected
        return None
    return None


def _call_id(pattern: Pattern, bindings: dict) -> object:
    """The one Call-ID ``pattern`` wants (None included: no Call-ID), or ``_ANY``."""
    for name, expected in pattern.constraints:
        if name == "call_id" and not isinstance(expected, tuple):
            value = _value(expected, bindings)
            return value if value is None or isinstance(value, str) else _ANY
    return _ANY


def instances(rule: Rule, session: UeSession, capture_end: float,
              timeline: Timeline | None = None) -> list[Instance]:
    """Every instance of ``rule`` in one UE session, judged (``timeline``: the session's, when made once
    for every rule)."""
    out: list[Instance] = []
    seen: set[tuple] = set()
    timeline = timeline or Timeline(session.events)
    for anchor in timeline.after(-math.inf, rule.anchor):
        if not fits(anchor, rule.anchor, {}) or anchor.service not in rule.services:
            continue
        bindings = {name: getattr(anchor, source) for name, source in rule.bind}
        ended = None
        if rule.migration is None:  # a building block: every anchor is an instance
            migration = anchor
        else:
            if rule.ended_by:
                ended = next((e for e in timeline.after(anchor.time, rule.ended_by, bindings=bindings)
                              if e is not anchor and fits(e, rule.ended_by, bindings)), None)
            migration = None
            for e in timeline.after(anchor.time, rule.migration, strictly=True):
                if ended is not None and ended.time < e.time - rule.window:
                    break  # (the call ended too long before: no later migration can be this one's)
                if fits(e, rule.migration, bindings):
                    migration = e
                    break
            if migration is None:
                continue
        bindings.update({name: getattr(migration, source) for name, source in rule.bind_migration})
        # One instance per procedure: per migration event and what it binds (anchors that lead to the same
        # migration, two calls of the group before it, make one; each crossing of the boundary its own);
        # a building block per the events its steps found (a rejected request and its accepted retry are
        # one; a re-registration an hour later is another)
        key = tuple(sorted((k, str(v)) for k, v in bindings.items()
                           if k != "call_id" or rule.migration is None))
        if rule.migration is not None:
            key = (id(migration), *key)
            if key in seen:
                continue
        instance = Instance(rule, session, anchor, migration, dict(bindings), ended)
        _judge(instance, capture_end, timeline)
        if rule.migration is None:
            key = (*(id(step.event) for step in instance.steps), *key)
            if key in seen:
                continue
        seen.add(key)
        out.append(instance)
    return out


def _candidates(step: Step, timeline: Timeline, start: float, bindings: dict, due: float,
                capture_end: float) -> tuple:
    """The step's event: through its first alternative any event fits from ``start`` on, the first
    successful one up to ``due`` (a rejected request and its retry in time are one step), else the first
    one (a refused re-registration stays failed: the next period's success an hour later is another
    procedure's). A request whose answer could still come when the capture ends is passed over (it
    cannot be judged; a retry after it can). The scan ends there (``mcxa watch`` judges again every
    second: a scan to the end for every step made that quadratic in a UE session's events)."""
    for alternative in step.match:
        first = None
        for e in timeline.after(start, alternative, bindings=bindings):
            if first is not None and e.time > due and timeline.ordered:
                break
            if e.outcome == "no-answer" and capture_end - e.time < NO_ANSWER_AFTER:
                continue
            if fits(e, alternative, bindings):
                if e.outcome in ("success", "encrypted") and e.time <= due:
                    return e, alternative
                if first is None:
                    first = e
        if first is not None:
            return first, alternative
    return None, None


#: What places an event (where, about whom): an event that fits an alternative but for these is a near miss.
_PLACING = frozenset(("system", "group", "peer", "domain", "identity", "impu", "client_id", "call_id"))


def _near_misses(step: Step, timeline: Timeline, start: float, bindings: dict) -> list[Event]:
    """Events after ``start`` (the anchor) that fit none of the step's alternatives but would fit one in
    another place (another system, another group...): what the user should hear about when the step is
    missing. (An alternative that names no kind has no near misses: anything would be one.)"""
    if any(dict(alt.constraints).get("kind") is None for alt in step.match):
        return []
    relaxed = [Pattern(tuple(c for c in alt.constraints if c[0] not in _PLACING)) for alt in step.match]
    return [e for e in timeline.after(start, *relaxed, bindings=bindings, strictly=True)
            if any(fits(e, alt, bindings) for alt in relaxed)
            and not any(fits(e, alt, bindings) for alt in step.match)]


def _judge(inst: Instance, capture_end: float, timeline: Timeline) -> None:
    rule = inst.rule
    matched: dict[str, StepResult] = {}
    for step in rule.steps:
        previous = matched.get(step.after) if step.after else None
        # (the procedure goes on from a failed step's late accepted retry, when it had one)
        followed = (previous.retry or previous.event) if previous else None
        after = step.after if followed else None
        reference = followed.time if followed else inst.migration.time
        within = step.within if step.within is not None else rule.window
        due = reference + within
        event, alternative = _candidates(step, timeline, inst.anchor.time, inst.bindings, due, capture_end)
        if event is None:
            status = "missing"
        elif event.outcome in ("failure", "no-answer"):
            status = "failed"
        elif followed and event.time < followed.time:
            status = "out-of-order"
        elif event.time - reference > within:
            status = "late"
        elif alternative.gives:
            status = alternative.gives
        else:
            status = "matched"
        retry = _late_retry(timeline, event, alternative, inst.bindings, due + within) \
            if status == "failed" else None
        if event is not None:
            inst.bindings.update({name: getattr(retry or event, source) for name, source in step.bind})
        result = StepResult(step, status, event, reference, due, after, retry=retry,
                            after_retry=bool(after and previous.retry))
        matched[step.id] = result
        inst.steps.append(result)
    for i, result in enumerate(inst.steps):
        # A missing step is settled once a later step was seen (the procedure went past it), or once the
        # capture went on past the time it was due; otherwise the capture ended too early to tell.
        passed = any(later.event is not None for later in inst.steps[i + 1:])
        inst.steps[i] = _deviation(inst, result, capture_end, passed, timeline)


def _late_retry(timeline: Timeline, failed: Event, alternative: Pattern, bindings: dict,
                until: float) -> Event | None:
    """The first success through ``alternative`` after a failed step's event, up to one window past its
    due time (``until``): the request asked again and accepted, too late — the user hears of it. (A
    success later still is another procedure's: the next registration period's, say.)"""
    for e in timeline.after(failed.time, alternative, bindings=bindings, strictly=True):
        if e.time > until and timeline.ordered:
            break
        if e.time <= until and e.outcome == "success" and fits(e, alternative, bindings):
            return e
    return None


#: A few words that qualify a status in every report format, per deviation code.
WHY = {"capture-ended": "capture ended before it was due", "optional-step-missing": "optional",
       "step-unverifiable": "encrypted evidence only", "note": "with a note"}


def _deviation(inst: Instance, r: StepResult, capture_end: float, passed: bool,
               timeline: Timeline) -> StepResult:
    """Add the step's deviation (if it has one) to the instance; the step takes its severity."""
    step = r.step
    if r.status == "missing" and (step.optional or (capture_end < (r.due or 0) and not passed)):
        code, severity = ("optional-step-missing", "info") if step.optional else ("capture-ended", "warning")
    elif r.status != "matched":
        code, severity = f"step-{r.status}", SEVERITY[r.status]
    elif step.note_unless is not None and not fits(r.event, step.note_unless, inst.bindings):
        inst.deviations.append(Deviation("note", step.id, "info", step.note or f"{step.id}: note",
                                         step.spec, r.event.frames))
        return replace(r, severity="info", why=WHY["note"])
    else:
        return r
    near = _near_misses(step, timeline, inst.anchor.time, inst.bindings) \
        if r.status == "missing" else []
    message = describe(r, code, inst.bindings, inst.migration, capture_end, near)
    if r.event is not None and r.retry is None:
        frames = r.event.frames
    else:
        shown = near[:NEAR_SHOWN] if r.event is None else [r.event, r.retry]
        frames = tuple(sorted({f for e in shown for f in e.frames}))
    inst.deviations.append(Deviation(code, step.id, severity, message, step.spec, frames))
    return replace(r, severity=severity, why=WHY.get(code))
