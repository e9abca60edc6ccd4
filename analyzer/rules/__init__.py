"""Rule files: closed-vocabulary YAML that says what should happen; loaded, validated, never evaluated.

A rule creates *instances* (one per UE session and per anchor event, e.g. each ongoing group call that
was followed by activity in another MC system) and lists *steps*, each an ordered list of alternative
event patterns. The format is documented in ``rules/README.md``; the matcher (``analyzer.rules.matcher``)
knows nothing of MC — only events, fields, bindings, order and time.

Pattern values: a literal, a list (any of), ``$name`` (a bound variable), ``{not: value}`` or
``{same_user: $name}`` (the user part of a SIP URI equals the variable's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.base.errors import InputError
from analyzer.base.yamlfile import Locations, check_mapping, describe, did_you_mean, load_yaml
from analyzer.meaning.events import SERVICES, Event
from analyzer.rules.checks import check_constraint, check_reachable
from analyzer.rules.kpis import parse_kpis

#: Event fields a pattern may test or a binding may read.
FIELDS = frozenset(Event.__slots__)
#: Step statuses an alternative may impose when it is the one that matched.
GIVES = ("unverifiable",)
#: The shipped rules: the repository's rules/ (a link here, so an installed wheel carries a copy).
SHIPPED = (Path(__file__).parent / "builtin").resolve()
DEFAULT_WINDOW = 30.0


@dataclass(frozen=True, slots=True)
class Pattern:
    """Field constraints on one event: ``{field: value}`` with the value forms of the module docstring."""

    constraints: tuple[tuple[str, Any], ...]
    gives: str | None = None  # a step status this alternative imposes (e.g. unverifiable)


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    title: str
    spec: str | None
    match: tuple[Pattern, ...]  # alternatives, most wanted first
    after: str | None = None
    within: float | None = None  # seconds after the `after` step (default: the rule's window)
    optional: bool = False
    bind: tuple[tuple[str, str], ...] = ()  # variable ← field of the matched event
    note_unless: Pattern | None = None  # an info note when the matched event does not also fit this
    note: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    spec: str
    services: tuple[str, ...]
    anchor: Pattern
    bind: tuple[tuple[str, str], ...]
    migration: Pattern | None  # None: a building block, one instance per anchor
    bind_migration: tuple[tuple[str, str], ...]
    ended_by: Pattern | None
    window: float
    steps: tuple[Step, ...]
    path: str
    kpis: tuple = ()  # ``analyzer.rules.kpis.Threshold``s: the media-plane KPIs checked, and how


_RULE_KEYS = {"id": str, "title": str, "spec": str, "services": list, "instance": dict, "window": float,
              "steps": list, "kpis": dict}
_INSTANCE_KEYS = {"anchor": dict, "bind": dict, "migration": dict, "bind_migration": dict, "ended_by": dict}
_STEP_KEYS = {"id": str, "title": str, "spec": str, "match": list, "after": str, "within": float,
              "optional": bool, "bind": dict, "note_unless": dict, "note": str}


def _pattern(value: dict, where: Locations, path: tuple) -> Pattern:
    gives = None
    constraints = []
    for key, expected in value.items():
        if key == "gives":
            if expected not in GIVES:
                raise where.error((*path, key), f"'gives' must be one of {', '.join(GIVES)}"
                                  + did_you_mean(str(expected), GIVES))
            gives = expected
            continue
        if key not in FIELDS:
            raise where.error((*path, key), f"unknown event field '{key}' (fields: "
                              f"{', '.join(sorted(FIELDS))})" + did_you_mean(key, FIELDS))
        check_constraint(key, expected, where, (*path, key))
        if isinstance(expected, list):
            expected = tuple(expected)
        elif isinstance(expected, dict):
            expected = next(iter(expected.items()))
        constraints.append((key, expected))
    check_reachable(value, where, path)
    return Pattern(tuple(constraints), gives)


def _bindings(value: dict, where: Locations, path: tuple) -> tuple[tuple[str, str], ...]:
    for name, source in value.items():
        if not isinstance(source, str) or source not in FIELDS:  # a list or mapping is no field name either
            what = f"'{source}'" if isinstance(source, str) else describe(source)
            raise where.error((*path, name), f"{what} is not an event field"
                              + did_you_mean(str(source), FIELDS))
    return tuple(value.items())


def _variables(pattern: Pattern) -> set[str]:
    out = set()
    for _, value in pattern.constraints:
        values = value if isinstance(value, tuple) else (value,)
        out |= {v[1:] for v in values if isinstance(v, str) and v.startswith("$")}
    return out


def load_rule(path: str | os.PathLike) -> Rule:
    """Read and validate one rule file; errors name file, line and key (``InputError``)."""
    data, where = load_yaml(path)
    check_mapping(data, where, (), _RULE_KEYS, required=("id", "title", "spec", "instance", "steps"))
    inst = check_mapping(data["instance"], where, ("instance",), _INSTANCE_KEYS, required=("anchor",))
    for i, service in enumerate(data.get("services", list(SERVICES))):
        if service not in SERVICES:
            raise where.error(("services", i), f"unknown service '{service}' (one of: {', '.join(SERVICES)})"
                              + did_you_mean(str(service), SERVICES))
    bound = {name for key in ("bind", "bind_migration")
             for name, _ in _bindings(inst.get(key, {}), where, ("instance", key))}
    steps: list[Step] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["steps"]):
        at = ("steps", i)
        check_mapping(raw, where, at, _STEP_KEYS, required=("id", "match"))
        if raw["id"] in seen:
            raise where.error((*at, "id"), f"step id '{raw['id']}' is used twice")
        if "after" in raw and raw["after"] not in seen:
            raise where.error((*at, "after"), f"'after: {raw['after']}' names no earlier step"
                              + did_you_mean(str(raw["after"]), seen))
        if not raw["match"]:
            raise where.error((*at, "match"), "a step needs at least one event pattern")
        alternatives = []
        for j, alt in enumerate(raw["match"]):
            check_mapping(alt, where, (*at, "match", j), {k: object for k in (*FIELDS, "gives")})
            pattern = _pattern(alt, where, (*at, "match", j))
            unknown = _variables(pattern) - bound
            if unknown:
                raise where.error((*at, "match", j), f"variable ${sorted(unknown)[0]} is not bound before "
                                  "this step")
            alternatives.append(pattern)
        binds = _bindings(raw.get("bind", {}), where, (*at, "bind"))
        bound |= {name for name, _ in binds}
        note_unless = _pattern(raw["note_unless"], where, (*at, "note_unless")) if "note_unless" in raw \
            else None
        seen.add(raw["id"])
        steps.append(Step(raw["id"], raw.get("title", raw["id"]), raw.get("spec"), tuple(alternatives),
                          raw.get("after"), raw.get("within"), raw.get("optional", False), binds, note_unless,
                          raw.get("note"), where.line(at)))
    return Rule(
        data["id"], data["title"], data["spec"], tuple(data.get("services", SERVICES)),
        _pattern(inst["anchor"], where, ("instance", "anchor")),
        _bindings(inst.get("bind", {}), where, ("instance", "bind")),
        _pattern(inst["migration"], where, ("instance", "migration")) if "migration" in inst else None,
        _bindings(inst.get("bind_migration", {}), where, ("instance", "bind_migration")),
        _pattern(inst["ended_by"], where, ("instance", "ended_by")) if "ended_by" in inst else None,
        float(data.get("window", DEFAULT_WINDOW)), tuple(steps), str(path),
        parse_kpis(data.get("kpis", {}), where, ("kpis",)))


def load_rules(location: str | os.PathLike | None = None) -> list[Rule]:
    """Every ``*.yaml`` rule in a directory (default: the shipped ``rules/``), or one rule file."""
    base = Path(location) if location else SHIPPED
    if base.is_file():
        return [load_rule(base)]
    if not base.is_dir():
        raise InputError("no such rule file or directory", str(base))
    files = sorted(base.glob("*.yaml"))
    if not files:
        raise InputError("no *.yaml rule files in this directory", str(base))
    rules = [load_rule(f) for f in files]
    ids = [r.id for r in rules]
    for rule in rules:
        if ids.count(rule.id) > 1:
            raise InputError(f"rule id '{rule.id}' is defined twice", rule.path)
    return rules
