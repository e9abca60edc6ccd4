"""Deviation messages in the field engineer's words: what was expected, what was seen, when, where.

Built only from the step's own patterns, the values its variables are bound to and the events' fields,
so it works for any rule and names the system, group or peer *that step* asks for — never a fixed
variable. When events of the wanted kind were seen that do not fit (another system, another group), the
message says what they were and where.
"""

from __future__ import annotations

from typing import Any

from analyzer.base.times import clock
from analyzer.meaning.events import Event
from analyzer.rules import Pattern
from analyzer.rules.results import StepResult

#: Near misses named in one message.
NEAR_SHOWN = 2


def frames_text(frames: tuple[int, ...]) -> str:
    if not frames:
        return "no frames"
    if len(frames) == 1:
        return f"frame {frames[0]}"
    return f"frames {frames[0]}-{frames[-1]}" if frames == tuple(range(frames[0], frames[-1] + 1)) \
        else "frames " + ", ".join(map(str, frames[:6])) + ("…" if len(frames) > 6 else "")


def _bound(value: Any, bindings: dict[str, Any]) -> Any:
    return bindings.get(value[1:]) if isinstance(value, str) and value.startswith("$") else value


def _text(value: Any, bindings: dict[str, Any]) -> str:
    value = _bound(value, bindings)
    return "an unknown value" if value is None else str(value)


#: How a constrained field reads after the kind: "for group X", "in X" ...
_PHRASES = {"group": "for group {}", "peer": "with peer {}", "system": "in {}", "call_id": "with Call-ID {}",
            "service": "of {}"}


def _phrase(field: str, value: Any, bindings: dict[str, Any]) -> str:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "not":
        shown = f"other than {_text(value[1], bindings)}"
        return {"system": "in a system {}", "group": "for a group {}", "peer": "with a peer {}"}.get(
            field, f"with {field} {{}}").format(shown)
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "same_user":
        return f"with a {field} of the same user part as {_text(value[1], bindings)}"
    if isinstance(value, tuple):
        either = " or ".join(_text(v, bindings) for v in value)
        return _PHRASES.get(field, f"with {field} {{}}").format(either)
    return _PHRASES.get(field, f"with {field} {{}}").format(_text(value, bindings))


def wanted(pattern: Pattern, bindings: dict[str, Any]) -> str:
    """An alternative in words, its variables replaced by their values: ``deaffiliation for group
    sip:G1@a.example in a.example``."""
    kind = "an event"
    parts = []
    for field, value in pattern.constraints:
        if field == "kind":
            kind = " or ".join(value) if isinstance(value, tuple) else value
        else:
            parts.append(_phrase(field, value, bindings))
    return " ".join([kind, *parts])


def seen(e: Event) -> str:
    """An event in a few words: kind, subject, system, time and frames."""
    subject = f" ({e.group or e.peer})" if e.group or e.peer else ""
    system = e.system or "an unknown system"
    return f"{e.kind}{subject} in {system} at {clock(e.time)}, {frames_text(e.frames)}"


def _instead(near: list[Event]) -> str:
    if not near:
        return ""
    shown = "; ".join(seen(e) for e in near[:NEAR_SHOWN])
    more = f" (and {len(near) - NEAR_SHOWN} more)" if len(near) > NEAR_SHOWN else ""
    return f"; seen instead: {shown}{more}"


def _since(r: StepResult, migration: Event) -> str:
    if r.after:
        return f"the step '{r.after}'" + (" (its request accepted when asked again)" if r.after_retry else "")
    return f"the migration point ({migration.kind} in {migration.system or 'another system'} at " \
           f"{clock(migration.time)})"


def describe(r: StepResult, code: str, bindings: dict[str, Any], migration: Event, capture_end: float,
             near: list[Event]) -> str:
    """The message of the deviation ``code`` for step result ``r``."""
    step, e = r.step, r.event
    name = step.id
    if r.status == "missing":
        looked_for = wanted(step.match[0], bindings)
        if code == "capture-ended":
            return (f"{name}: no {looked_for} before the capture ends at {clock(capture_end)}; it was due by "
                    f"{clock(r.due)}, so it cannot be judged{_instead(near)}")
        return f"{name}: no {looked_for} by {clock(r.due)}, nor later in the capture{_instead(near)}"
    if r.status == "failed":
        answer = e.detail or (f"{e.status}" if e.status else "no answer")
        verb = (f"got no final answer ({e.detail})" if e.detail else "got no answer") \
            if e.outcome == "no-answer" else f"was rejected: {answer}"
        retry = r.retry
        later = f"; asked again and accepted at {clock(retry.time)} ({frames_text(retry.frames)}), " \
                f"{retry.time - r.due:.1f} s after it was due" if retry is not None else ""
        return f"{name}: {seen(e)} {verb}{later}"
    if r.status == "late":
        return (f"{name}: {seen(e)}, {e.time - r.reference:.1f} s after {_since(r, migration)} "
                f"(window {r.due - r.reference:g} s)")
    if r.status == "out-of-order":
        return f"{name}: {seen(e)} came before the step '{step.after}' it must follow"
    if r.status == "unverifiable":
        return (f"{name}: only encrypted traffic was seen ({e.detail}, {frames_text(e.frames)}); "
                "give the TLS key log of the UE or the proxy (--tls-keylog) to judge it")
    return f"{name}: {r.status}"
