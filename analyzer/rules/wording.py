"""Deviation messages in the field engineer's words: what was expected, what was seen, when, where.

Built only from the rule's step titles and the events' own fields, so it works for any rule.
"""

from __future__ import annotations

import time as _time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.rules.matcher import Instance, StepResult


def clock(t: float | None) -> str:
    if t is None:
        return "?"
    return _time.strftime("%H:%M:%S", _time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"


def frames_text(frames: tuple[int, ...]) -> str:
    if not frames:
        return "no frames"
    if len(frames) == 1:
        return f"frame {frames[0]}"
    return f"frames {frames[0]}-{frames[-1]}" if frames == tuple(range(frames[0], frames[-1] + 1)) \
        else "frames " + ", ".join(map(str, frames[:6])) + ("…" if len(frames) > 6 else "")


def _subject(e) -> str:
    target = e.group or e.peer
    return f" ({target})" if target else ""


def describe(inst: Instance, r: StepResult, code: str, capture_end: float) -> str:
    step, e = r.step, r.event
    expected = step.id
    systems = inst.bindings.get("to_system")
    if code == "capture-ended":
        return (f"{expected}: not seen, but the capture ends at {clock(capture_end)}, before it was due "
                f"(by {clock(r.due)}); it cannot be judged")
    if r.status == "missing":
        where = f" in {systems}" if systems else ""
        return f"{expected}: not seen{where} by {clock(r.due)} (nor later in the capture)"
    seen = (f"{e.kind}{_subject(e)} in {e.system or 'an unknown system'} at {clock(e.time)}, "
            f"{frames_text(e.frames)}")
    if r.status == "failed":
        answer = e.detail or (f"{e.status}" if e.status else "no answer")
        verb = "got no answer" if e.outcome == "no-answer" else f"was rejected: {answer}"
        return f"{expected}: {seen} {verb}"
    if r.status == "late":
        return (f"{expected}: {seen}, {e.time - r.reference:.1f} s after the previous step "
                f"(window {r.due - r.reference:.0f} s)")
    if r.status == "out-of-order":
        return f"{expected}: {seen} came before the step '{step.after}' it must follow"
    if r.status == "unverifiable":
        return (f"{expected}: only encrypted traffic was seen ({e.detail}, {frames_text(e.frames)}); "
                "give the TLS key log of the UE or the proxy (--tls-keylog) to judge it")
    return f"{expected}: {r.status}"
