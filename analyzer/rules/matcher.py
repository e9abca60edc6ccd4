"""The generic matcher: rules × UE sessions → procedure instances with per-step status and deviations.

It knows events, fields, variables, order and time — nothing of MC. For each session and each event
fitting a rule's anchor, an instance exists when a later event fits the rule's ``migration`` pattern
before the anchor was ended (or within the window after it ended). Each step then takes the first event
after the anchor that fits one of its alternatives (a successful one if any; the alternatives' order is
their preference) and gets a status:

* ``matched`` — found, successful, in order and in time;
* ``failed`` — found, but rejected or unanswered;
* ``out-of-order`` — found before the step it must follow;
* ``late`` — found more than ``within`` seconds after the step it follows (or after the migration point);
* ``unverifiable`` — found only through an alternative that ``gives: unverifiable`` (encrypted evidence);
* ``missing`` — not found: an error when the capture went on past the time it was due, otherwise the
  capture ended too early to tell.
"""

from __future__ import annotations

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


def instances(rule: Rule, session: UeSession, capture_end: float) -> list[Instance]:
    """Every instance of ``rule`` in one UE session, judged."""
    out: list[Instance] = []
    seen: set[tuple] = set()
    events = session.events
    for anchor in events:
        if not fits(anchor, rule.anchor, {}) or anchor.service not in rule.services:
            continue
        bindings = {name: getattr(anchor, source) for name, source in rule.bind}
        ended = None
        if rule.migration is None:  # a building block: every anchor is an instance
            migration = anchor
        else:
            ended = next((e for e in events if e.time >= anchor.time and e is not anchor and rule.ended_by
                          and fits(e, rule.ended_by, bindings)), None)
            migration = next((e for e in events if e.time > anchor.time
                              and fits(e, rule.migration, bindings)), None)
            if migration is None or (ended is not None and ended.time < migration.time - rule.window):
                continue
        bindings.update({name: getattr(migration, source) for name, source in rule.bind_migration})
        key = tuple(sorted((k, str(v)) for k, v in bindings.items()
                           if k != "call_id" or rule.migration is None))
        if key in seen:
            continue
        seen.add(key)
        instance = Instance(rule, session, anchor, migration, bindings, ended)
        _judge(instance, capture_end)
        out.append(instance)
    return out


def _candidates(step: Step, events: tuple[Event, ...], start: float, bindings: dict) -> tuple:
    """The step's event: through its first alternative any event fits from ``start`` on, the first
    successful one, else the first one. The scan ends at that first success (``mcxa watch`` judges again
    every second: a scan to the end for every step made that quadratic in a UE session's events)."""
    for alternative in step.match:
        first = None
        for e in events:
            if e.time >= start and fits(e, alternative, bindings):
                if e.outcome in ("success", "encrypted"):
                    return e, alternative
                if first is None:
                    first = e
        if first is not None:
            return first, alternative
    return None, None


#: What places an event (where, about whom): an event that fits an alternative but for these is a near miss.
_PLACING = frozenset(("system", "group", "peer", "domain", "identity", "impu", "client_id", "call_id"))


def _near_misses(step: Step, events: tuple[Event, ...], start: float, bindings: dict) -> list[Event]:
    """Events after ``start`` (the anchor) that fit none of the step's alternatives but would fit one in
    another place (another system, another group...): what the user should hear about when the step is
    missing. (An alternative that names no kind has no near misses: anything would be one.)"""
    if any(dict(alt.constraints).get("kind") is None for alt in step.match):
        return []
    relaxed = [Pattern(tuple(c for c in alt.constraints if c[0] not in _PLACING)) for alt in step.match]
    return [e for e in events if e.time > start and any(fits(e, alt, bindings) for alt in relaxed)
            and not any(fits(e, alt, bindings) for alt in step.match)]


def _judge(inst: Instance, capture_end: float) -> None:
    rule, events = inst.rule, inst.session.events
    matched: dict[str, StepResult] = {}
    for step in rule.steps:
        event, alternative = _candidates(step, events, inst.anchor.time, inst.bindings)
        previous = matched.get(step.after) if step.after else None
        after = step.after if previous and previous.event else None
        reference = previous.event.time if after else inst.migration.time
        within = step.within if step.within is not None else rule.window
        due = reference + within
        if event is None or (event.outcome == "no-answer" and capture_end - event.time < NO_ANSWER_AFTER):
            status, event = "missing", None
        elif event.outcome in ("failure", "no-answer"):
            status = "failed"
        elif previous and previous.event and event.time < previous.event.time:
            status = "out-of-order"
        elif event.time - reference > within:
            status = "late"
        elif alternative.gives:
            status = alternative.gives
        else:
            status = "matched"
        if event is not None:
            inst.bindings.update({name: getattr(event, source) for name, source in step.bind})
        result = StepResult(step, status, event, reference, due, after)
        matched[step.id] = result
        inst.steps.append(result)
    for i, result in enumerate(inst.steps):
        # A missing step is settled once a later step was seen (the procedure went past it), or once the
        # capture went on past the time it was due; otherwise the capture ended too early to tell.
        passed = any(later.event is not None for later in inst.steps[i + 1:])
        inst.steps[i] = _deviation(inst, result, capture_end, passed)


#: A few words that qualify a status in every report format, per deviation code.
WHY = {"capture-ended": "capture ended before it was due", "optional-step-missing": "optional",
       "step-unverifiable": "encrypted evidence only", "note": "with a note"}


def _deviation(inst: Instance, r: StepResult, capture_end: float, passed: bool) -> StepResult:
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
    near = _near_misses(step, inst.session.events, inst.anchor.time, inst.bindings) \
        if r.status == "missing" else []
    message = describe(r, code, inst.bindings, inst.migration, capture_end, near)
    frames = r.event.frames if r.event else tuple(sorted({f for e in near[:NEAR_SHOWN] for f in e.frames}))
    inst.deviations.append(Deviation(code, step.id, severity, message, step.spec, frames))
    return replace(r, severity=severity, why=WHY.get(code))
