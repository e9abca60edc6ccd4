"""What judging a step gives: its result and the deviation that explains it (records shared by the matcher
and the wording of its messages)."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.meaning.events import Event
from analyzer.rules import Step


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of one instance. ``reference`` is the time the step was due from: the event of its
    ``after`` step (named in ``after``), or the migration point (``after`` None). ``severity`` is that of
    the step's own deviation (None when there is nothing to say), so every report shows one status."""

    step: Step
    status: str
    event: Event | None
    reference: float | None
    due: float | None
    after: str | None = None
    severity: str | None = None
    why: str | None = None  # a few words qualifying the status (e.g. "capture ended before it was due")
    retry: Event | None = None  # a failed step: its request accepted when asked again, too late
    after_retry: bool = False  # due from the ``after`` step's ``retry`` (not from its refused event)


@dataclass(frozen=True, slots=True)
class Deviation:
    code: str
    step: str | None
    severity: str
    message: str
    spec: str | None
    frames: tuple[int, ...]
