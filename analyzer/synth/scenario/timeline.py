"""The timeline of a scenario: each step checked against its procedure's keys (``STEP_KINDS``), the calls
it names, the servers it needs and its fault, then built into a ``Step``.
"""

from __future__ import annotations

from typing import Any

from analyzer.base.errors import InputError
from analyzer.base.yamlfile import check_mapping, describe
from analyzer.synth.scenario.checks import Checker, family
from analyzer.synth.scenario.model import (
    CALL_ENDERS,
    CALL_OVER,
    CALL_OVER_STEPS,
    CHOICES,
    COMMON_KEYS,
    FAULT_KEYS,
    LONGEST,
    NO_FAULT,
    STEP_KINDS,
    Fault,
    Step,
    StepKind,
    System,
    Ue,
)


def check_timeline(check: Checker, data: list, systems: dict[str, System],
                   ues: dict[str, Ue]) -> tuple[Step, ...]:
    """The steps, in file order; a call a step ends must have been set up by an earlier step of its UE."""
    steps: list[Step] = []
    calls: dict[str, Step] = {}
    previous_at = 0.0
    for i, raw in enumerate(data):
        path = ("timeline", i)
        if not isinstance(raw, dict):
            raise check.error(path, f"expected a mapping (a step), got {describe(raw)}")
        if "do" not in raw:
            raise InputError(f"missing key 'do' in step {i + 1}", check.loc.where(path))
        do = raw["do"]
        if not isinstance(do, str) or do not in STEP_KINDS:
            raise check.error((*path, "do"), f"unknown procedure {do!r} (expected one of: "
                                             f"{', '.join(STEP_KINDS)})")
        kind = STEP_KINDS[do]
        check_mapping(raw, check.loc, path, {**COMMON_KEYS, **kind.keys},
                      required=("at", "ue", *kind.required), what=f"step {i + 1} ({do})")
        at = float(raw["at"])
        if not 0 <= at <= LONGEST:  # (NaN too)
            raise check.error((*path, "at"), f"must be from 0 to {LONGEST} seconds (30 days)")
        if at < previous_at:
            raise check.error((*path, "at"), f"{raw['at']} is before the previous step's {previous_at:g} "
                                             "(steps are in time order; to swap two steps use "
                                             "fault: {reorder: before-previous})")
        previous_at = at
        ue_name = raw["ue"]
        if ue_name not in ues:
            raise check.error((*path, "ue"), f"unknown UE '{ue_name}' (UEs: {', '.join(ues)})")
        ue = ues[ue_name]
        values: dict[str, Any] = {}
        for key in kind.keys:
            if key in raw and key in CHOICES:
                choices = CALL_OVER if key == "over" and do in CALL_OVER_STEPS else CHOICES[key]
                values[key] = check.choice((*path, key), raw[key], choices)
        if values.get("over") == "pre-established":
            _check_session(check, path, raw, calls, ue_name)
            media = set(raw.get("fault") or {}) - {"omit", "delay", "reorder", "error", "no-answer"} \
                if isinstance(raw.get("fault"), dict) else set()
            if do == "late-entry" and media:
                raise check.error((*path, "fault"), "late entry over a pre-established session is an "
                                  "MCPC Connect on the media plane: it takes only the faults omit, delay, "
                                  "reorder, error and no-answer")
        if "call" in raw:
            call = calls.get(raw["call"])
            if call is None or call.ue != ue_name:
                known = ", ".join(k for k, s in calls.items() if s.ue == ue_name) or "none"
                raise check.error((*path, "call"), f"unknown call '{raw['call']}' of UE '{ue_name}' "
                                                   f"(calls set up before this step: {known})")
            if call.do not in CALL_ENDERS[do]:
                verb = "is for" if do == "floor" else "ends"
                raise check.error((*path, "call"), f"'{raw['call']}' is a {call.do}; {do} {verb} a "
                                                   f"{' or '.join(CALL_ENDERS[do])}")
            system = call.system
        else:
            system = raw["system"]
            if system not in systems:
                raise check.error((*path, "system"), f"unknown system '{system}' (systems: "
                                                     f"{', '.join(systems)})")
            if system not in ue.identities:
                raise check.error((*path, "system"), f"UE '{ue_name}' has no identity for system "
                                                     f"'{system}' (add ues.{ue_name}.identities.{system})")
        needs = {"token": ("idms", systems[system].idms_address),
                 "profile-retrieval": ("cms", systems[system].cms_address)}.get(do)
        if needs is not None:
            if needs[1] is None:
                raise check.error((*path, "system"), f"system '{system}' has no {needs[0]}/"
                                                     f"{needs[0]}_address (needed by {do})")
            if family(needs[1]) != family(ue.identities[system].address):
                raise check.error((*path, "system"), f"UE '{ue_name}' and the {needs[0]} of system "
                                                     f"'{system}' use different IP versions")
        groups: tuple[str, ...] = ()
        if "groups" in raw:
            if not raw["groups"] and do == "affiliate":
                raise check.error((*path, "groups"), "needs at least one group")
            groups = tuple(check.uri((*path, "groups", j), g) for j, g in enumerate(raw["groups"]))
        if do == "deaffiliate" and ("groups" in raw) == bool(raw.get("all")):
            raise check.error(path, "deaffiliate takes either 'groups' or 'all: true'")
        for key in ("group", "peer"):
            if key in raw:
                values[key] = check.uri((*path, key), raw[key])
        if "id" in raw and raw["id"] in calls:
            raise check.error((*path, "id"), f"call id '{raw['id']}' is already used on line "
                                             f"{calls[raw['id']].line}")
        if "reason_text" in raw:
            check.text((*path, "reason_text"), raw["reason_text"])
        fault = _fault(check, raw.get("fault"), (*path, "fault"), kind, ue, i)
        step = Step(index=i, line=check.loc.line(path), at=at, ue=ue_name, do=do, system=system,
                    groups=groups, all=raw.get("all", False), id=raw.get("id"), call=raw.get("call"),
                    reason=values.get("reason"), reason_text=raw.get("reason_text"), fault=fault,
                    **{k: v for k, v in values.items() if k in ("type", "role", "answer", "by", "over",
                                                                 "group", "peer", "alert")})
        if step.id is not None:
            calls[step.id] = step
        steps.append(step)
    return tuple(steps)


def _check_session(check: Checker, path: tuple, raw: dict, calls: dict[str, Step], ue_name: str) -> None:
    """A call over a pre-established session is the UE's REFER in a session it set up earlier there."""
    if raw.get("role", "originate") != "originate":
        raise check.error((*path, "role"), "a call over a pre-established session is made by the UE's "
                                           "REFER: role must be originate")
    if not any(s.do == "pre-established" and s.ue == ue_name and s.system == raw.get("system")
               for s in calls.values()):
        raise check.error((*path, "over"), f"UE '{ue_name}' set up no pre-established session in system "
                                           f"'{raw.get('system')}' before this step")


def _fault(check: Checker, raw: Any, path, kind: StepKind, ue: Ue, index: int) -> Fault:
    """A step's ``fault:``, checked against what its transport allows (retransmit: UDP; split: TCP)."""
    if raw is None:
        return NO_FAULT
    if isinstance(raw, str):
        if raw != "omit":
            raise check.error(path, f"unknown fault {raw!r} (a string fault can only be 'omit'; "
                                    f"others are a mapping of: {', '.join(FAULT_KEYS)})")
        return Fault(omit=True)
    check_mapping(raw, check.loc, path, FAULT_KEYS)
    if kind.proto == "media" and set(raw) - {"omit", "delay", "reorder"}:
        raise check.error(path, "floor control takes only the faults omit, delay and reorder")
    tcp = kind.proto == "http" or ue.transport == "tcp"
    if "reorder" in raw:
        check.choice((*path, "reorder"), raw["reorder"], ("before-previous",))
        if index == 0:
            raise check.error((*path, "reorder"), "the first step has no previous step")
    if not 0 <= raw.get("delay", 0) <= LONGEST:  # (NaN too)
        raise check.error((*path, "delay"), f"must be from 0 to {LONGEST} seconds (30 days)")
    if "error" in raw:
        top = 599 if kind.proto == "http" else 699
        if not 300 <= raw["error"] <= top:
            raise check.error((*path, "error"), f"must be a final error status 300..{top}")
    if "warning" in raw:
        if "error" not in raw:
            raise check.error((*path, "warning"), "needs 'error' (the Warning goes on the error response)")
        if kind.proto != "sip":
            raise check.error((*path, "warning"), "only SIP responses carry a Warning header")
        text = raw["warning"]
        if len(text) < 5 or not text[:3].isdigit() or text[3] != " " or '"' in text:
            raise check.error((*path, "warning"), f"expected \"NNN text\" (a 24.379 warn-code and its "
                                                  f"text, no quotes), got {text!r}")
    if "retransmit" in raw:
        if tcp:
            raise check.error((*path, "retransmit"), "retransmissions are for SIP over UDP (this step "
                                                     "runs over TCP)")
        if not 1 <= raw["retransmit"] <= 10:
            raise check.error((*path, "retransmit"), "must be 1..10")
    if "split" in raw:
        if not tcp:
            raise check.error((*path, "split"), "splitting into segments needs TCP (this step runs "
                                                "over UDP)")
        if not 2 <= raw["split"] <= 64:
            raise check.error((*path, "split"), "must be 2..64")
    if raw.get("no-answer") and ("error" in raw or "retransmit" in raw):
        raise check.error((*path, "no-answer"), "cannot be combined with 'error' or 'retransmit'")
    return Fault(omit=raw.get("omit", False), delay=float(raw.get("delay", 0.0)),
                 reorder=raw.get("reorder"), error=raw.get("error"), warning=raw.get("warning"),
                 no_answer=raw.get("no-answer", False), retransmit=raw.get("retransmit", 0),
                 split=raw.get("split", 1))
