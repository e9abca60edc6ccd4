"""Procedures → exchanges: what each ``do:`` of a scenario puts on the wire, as timed sends.

``PROCEDURES`` maps a ``do:`` name to its builder ``(context, step, time)``, one module per family:
``registration`` (and service authorisation), ``affiliation``, ``calls``, ``retrieval`` (token, profile over
HTTP/TLS), ``noise`` (OPTIONS keep-alives, background). Builders write SIP/HTTP messages through
``context.Context``; ``topology`` says who talks to whom. The families import those two, never this
registry or each other.
"""

from __future__ import annotations

from collections.abc import Callable

from analyzer.synth.procedures.affiliation import affiliate, deaffiliate
from analyzer.synth.procedures.calls import (
    group_call,
    late_entry,
    leave,
    pre_established,
    private_call,
    release,
)
from analyzer.synth.procedures.context import Context
from analyzer.synth.procedures.floor import floor
from analyzer.synth.procedures.noise import add_noise, options
from analyzer.synth.procedures.registration import deregister, register, service_authorisation
from analyzer.synth.procedures.retrieval import profile_retrieval, token
from analyzer.synth.scenario import STEP_KINDS, Step

__all__ = ["PROCEDURES", "Context", "add_noise"]

#: ``do:`` name → builder. Must name exactly the procedures the scenario vocabulary knows.
PROCEDURES: dict[str, Callable[[Context, Step, float], None]] = {
    "register": register,
    "deregister": deregister,
    "service-authorisation": service_authorisation,
    "affiliate": affiliate,
    "deaffiliate": deaffiliate,
    "pre-established": pre_established,
    "group-call": group_call,
    "late-entry": late_entry,
    "private-call": private_call,
    "release": release,
    "leave": leave,
    "token": token,
    "profile-retrieval": profile_retrieval,
    "options": options,
    "floor": floor,
}
assert set(PROCEDURES) == set(STEP_KINDS), "procedure registry and scenario vocabulary differ"
