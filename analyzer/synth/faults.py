"""How faults bend a scenario: step timing (omit, delay, reorder), SIP retransmission timing, warnings.

What each fault does to the messages of a transaction is applied by ``Context.transaction``
(``procedures.context``); this module holds the rules it follows, so they read in one place.
"""

from __future__ import annotations

from analyzer.synth.scenario import Step

T1, T2 = 0.5, 4.0  # RFC 3261 §17: RTT estimate and the cap for non-INVITE retransmissions
TIMER_B = 64 * T1  # INVITE (timer B) and non-INVITE (timer F) transaction timeout

#: Warning texts the spec gives for a procedure's error status when the scenario names none
#: (24.379 §4.4; 480 on a private call: HF §6.2.3.2.1).
DEFAULT_WARNINGS: dict[tuple[str, int], str] = {
    ("private-call", 480): "110 user declined the call invitation",
}


def step_times(steps: tuple[Step, ...]) -> list[tuple[Step, float]]:
    """Each step that happens, in file order, with the time it happens (``at`` + delay, reorder swaps)."""
    times = [s.at + s.fault.delay for s in steps]
    for i, step in enumerate(steps):
        if step.fault.reorder == "before-previous" and i > 0:
            times[i - 1], times[i] = times[i], times[i - 1]
    return [(s, t) for s, t in zip(steps, times, strict=True) if not s.fault.omit]


def send_offsets(invite: bool, retransmit: int = 0, unanswered: bool = False,
                 udp: bool = True) -> list[float]:
    """When a request is (re)sent, relative to its first send.

    Over UDP an unanswered request is retransmitted per timer A (INVITE: intervals double) or timer E
    (others: double up to T2) until timer B/F fires; ``retransmit=N`` sends it N+1 times. Over TCP there
    are no SIP retransmissions.
    """
    if not udp:
        return [0.0]
    offsets, t, interval = [0.0], 0.0, T1
    while (len(offsets) <= retransmit) if not unanswered else True:
        t += interval
        if unanswered and t >= TIMER_B:
            break
        offsets.append(t)
        interval = interval * 2 if invite else min(interval * 2, T2)
    return offsets


def warning_for(step: Step) -> str | None:
    """The warning text of the step's error response: the scenario's, else the spec default, else none."""
    fault = step.fault
    if fault.error is None:
        return None
    return fault.warning or DEFAULT_WARNINGS.get((step.do, fault.error))
