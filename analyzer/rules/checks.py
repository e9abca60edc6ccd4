"""What a rule file may say about event fields: closed sets of values, and patterns that can never match.

A rule that names an impossible value (``outcome: sucess``) or asks for an event that cannot exist (a
registration for a group, an encrypted affiliation) would silently find nothing and report "no migration"
with exit 0. Both are errors at load time, naming file, line and key, with a "did you mean" where one fits.
The shapes of the event kinds come from ``analyzer.meaning.events.SHAPES``.
"""

from __future__ import annotations

import re
from typing import Any

from analyzer.base.yamlfile import Locations, describe, did_you_mean
from analyzer.meaning.events import (
    DIRECTIONS,
    EVIDENCE,
    KINDS,
    OUTCOMES,
    SERVICES,
    SHAPES,
    SUBJECT_FIELDS,
    TRANSITIONS,
    VIAS,
)

#: Fields whose values form a closed set.
CLOSED: dict[str, tuple[str, ...]] = {"kind": tuple(KINDS), "outcome": OUTCOMES, "direction": DIRECTIONS,
                                      "service": SERVICES, "transition": tuple(TRANSITIONS), "via": VIAS,
                                      "evidence": tuple(EVIDENCE)}
#: Fields that hold numbers or flags rather than text.
_INTEGER_FIELDS = frozenset(("status",))
_FLAG_FIELDS = frozenset(("migration",))
_NUMBER_FIELDS = frozenset(("time", "end"))
#: ``status: 4xx`` — any final status of that class.
STATUS_CLASS = re.compile(r"[1-6]xx")
OPERATORS = ("not", "same_user")


def is_variable(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$")


def check_value(field: str, value: Any, where: Locations, path: tuple) -> None:
    """One literal (or ``$variable``) a pattern compares ``field`` with."""
    if is_variable(value):
        return
    if field in CLOSED:
        if not isinstance(value, str) or value not in CLOSED[field]:
            shown = value if isinstance(value, str) else describe(value)
            raise where.error(path, f"unknown {field} '{shown}' (one of: {', '.join(CLOSED[field])})"
                              + (did_you_mean(value, CLOSED[field]) if isinstance(value, str) else ""))
    elif field in _INTEGER_FIELDS:
        ok = (isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 699) or \
            (isinstance(value, str) and STATUS_CLASS.fullmatch(value))
        if not ok:
            raise where.error(path, f"expected a status code (100-699) or a class such as 4xx, got {value!r}")
    elif field in _FLAG_FIELDS:
        if not isinstance(value, bool) and value is not None:
            raise where.error(path, f"expected true, false or null, got {value!r}")
    elif field in _NUMBER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise where.error(path, f"expected a number, got {describe(value)}")
    elif value is not None and not isinstance(value, str):
        raise where.error(path, f"{field} holds text; {describe(value)} {value!r} can never be equal to it "
                          "(quote it)")


def check_constraint(field: str, expected: Any, where: Locations, path: tuple) -> None:
    """A pattern's ``field: expected``: a value, a list of values, or ``{operator: value}``."""
    if isinstance(expected, dict):
        operator = next(iter(expected), None)
        if len(expected) != 1 or operator not in OPERATORS:
            raise where.error(path, "an operator is {not: value} or {same_user: $variable}"
                              + (did_you_mean(str(operator), OPERATORS) if len(expected) == 1 else ""))
        if operator == "same_user" and (field in CLOSED or field in _INTEGER_FIELDS | _FLAG_FIELDS
                                        | _NUMBER_FIELDS):
            raise where.error(path, f"same_user compares the user part of URIs; {field} holds no URI")
        check_value(field, expected[operator], where, (*path, operator))
    elif isinstance(expected, list):
        if not expected:
            raise where.error(path, "an empty list of values can never match")
        for i, value in enumerate(expected):
            check_value(field, value, where, (*path, i))
    else:
        check_value(field, expected, where, path)


def check_reachable(raw: dict, where: Locations, path: tuple) -> None:
    """Refuse a pattern that no event kind it names can ever fit (direction, outcome, subject fields)."""
    # A kind given as a variable or an operator may be any kind: only literal kinds can be judged here.
    kinds = _literals(raw.get("kind", list(KINDS))) or list(KINDS)
    reasons: list[str] = []
    possible = []
    for kind in kinds:
        why = _impossible(kind, raw)
        if why:
            reasons.append(why)
        else:
            possible.append(kind)
    if not possible:
        what = reasons[0] if len(reasons) == 1 else "no event kind fits every field"
        raise where.error(path, f"this pattern can never match: {what}")


def _literals(value: Any) -> list | None:
    """The values an equality constraint accepts; None when it is an operator or names a variable."""
    if isinstance(value, dict):
        return None
    values = value if isinstance(value, list) else [value]
    return None if any(is_variable(v) for v in values) else values


def _impossible(kind: str, raw: dict) -> str | None:
    shape = SHAPES[kind]
    for field, allowed in (("direction", shape.directions), ("outcome", shape.outcomes)):
        values = _literals(raw.get(field)) if field in raw else None
        if values is not None and not set(values) & set(allowed):
            return (f"{_a(kind)} event's {field} is {_either(allowed)}, never "
                    f"{_either(tuple(map(str, values)))}")
    for field in SUBJECT_FIELDS - shape.carries:
        if field not in raw or isinstance(raw[field], dict):
            continue
        values = raw[field] if isinstance(raw[field], list) else [raw[field]]
        if None not in values:
            return f"{_a(kind)} event never has a {field}"
    return None


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _either(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
