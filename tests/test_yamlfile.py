"""The strict YAML loader: safe, closed vocabulary, and every error one line naming file, line and key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analyzer.base.errors import InputError
from analyzer.base.yamlfile import check_choice, check_mapping, load_yaml, parse_yaml


def error(text: str) -> str:
    with pytest.raises(InputError) as caught:
        parse_yaml(text, "f.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_plain_values_and_their_lines():
    text = "a: 1\nb:\n  - x\n  - {c: 2026-05-01T10:00:00Z}\nd: [1.5, true, null]\n"
    data, where = parse_yaml(text, "f.yaml")
    assert data == {"a": 1, "b": ["x", {"c": datetime(2026, 5, 1, 10, tzinfo=UTC)}], "d": [1.5, True, None]}
    assert (where.line(("a",)), where.line(("b", 1, "c")), where.line(("d", 2))) == (1, 4, 5)
    assert where.line(("b", 7, "zz")) == 2  # nearest recorded parent
    assert str(where.error(("b", 1, "c"), "too late")) == "f.yaml:4: key 'b[1].c': too late"


def test_duplicate_keys_are_refused_at_any_depth():
    assert error("a: 1\nb: 2\na: 3\n") == "f.yaml:3: key 'a': duplicate key (first given on line 1)"
    assert error("x:\n  y: {k: 1, k: 2}\n").startswith("f.yaml:2: key 'x.y.k': duplicate key")


def test_syntax_errors_name_line_and_column():
    assert error("a: [1, 2\nb: 3\n").startswith("f.yaml:2:2: ")
    assert error("a: 'open\n").startswith("f.yaml:")


def test_tabs_in_indentation_are_named():
    assert error("a:\n\tb: 1\n") == "f.yaml:2:1: tab character in indentation (YAML indents with spaces only)"


@pytest.mark.parametrize("text", [
    "a: !!python/object:os.system x\n",
    "a: !!python/object/apply:os.system ['id']\n",
    "a: !!python/name:os.system\n",
    "a: !custom 1\n",
    "a: !!binary aGVsbG8=\n",
    "a: !!set {x}\n",
])
def test_tags_that_build_objects_are_refused(text):
    assert "is not allowed" in error(text) and error(text).startswith("f.yaml:1: key 'a'")


def test_aliases_are_refused_so_billion_laughs_cannot_expand():
    laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    assert error(laughs) == "f.yaml:2:8: alias '*a' is not allowed (write the value out)"
    assert "merge keys" in error("base: {x: 1}\nother:\n  <<: {y: 2}\n")


@pytest.mark.parametrize("text, where", [
    ("[" * 100_000, "f.yaml:1:65"),
    ("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 100)), "f.yaml:65:65"),
    ("- " * 1000 + "x", "f.yaml:1:129"),
])
def test_nesting_deeper_than_64_levels_is_refused_not_a_crash(text, where):
    assert error(text) == f"{where}: nested deeper than 64 levels (no scenario, systems or rule file is)"


def test_nesting_of_64_levels_is_read():
    data, _ = parse_yaml("[" * 64 + "x" + "]" * 64)
    for _ in range(63):
        data = data[0]
    assert data == ["x"]


def test_non_string_keys_and_bad_values():
    assert "key 1 in '<root>' is not a string" in error("1: a\n")
    assert "bad timestamp value" in error("t: 2026-13-01\n")


def test_files_unreadable_or_not_utf8(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(InputError, match=r"bad.yaml:2: not UTF-8"):
        load_yaml(bad)
    with pytest.raises(InputError, match=r"missing\.yaml"):
        load_yaml(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert load_yaml(empty)[0] is None


FIELDS = {"groups": list, "system": str, "at": float, "all": bool, "seed": int}


def test_check_mapping_names_the_unknown_key_and_the_expected_ones():
    data, where = parse_yaml("step:\n  at: 1\n  grops: [a]\n", "f.yaml")
    with pytest.raises(InputError) as caught:
        check_mapping(data["step"], where, ("step",), FIELDS)
    assert str(caught.value) == ("f.yaml:3: unknown key 'grops' in 'step' (expected one of: groups, system, "
                                 "at, all, seed); did you mean 'groups'?")


@pytest.mark.parametrize(("text", "expected"), [
    ("step: {at: soon}\n", "f.yaml:1: key 'step.at': expected a number, got a string 'soon'"),
    ("step: {all: 1}\n", "f.yaml:1: key 'step.all': expected true or false, got an integer 1"),
    ("step: {seed: true}\n", "f.yaml:1: key 'step.seed': expected an integer, got a boolean"),
    ("step: {groups: a}\n", "f.yaml:1: key 'step.groups': expected a list, got a string 'a'"),
    ("step: [1]\n", "f.yaml:1: key 'step': expected a mapping, got a list"),
    ("step:\n  at: 1\n", "f.yaml:1: missing key 'system' in 'step'"),
])
def test_check_mapping_types_and_required_keys(text, expected):
    data, where = parse_yaml(text, "f.yaml")
    with pytest.raises(InputError) as caught:
        check_mapping(data["step"], where, ("step",), FIELDS, required=("system",) if "at: 1" in text else ())
    assert str(caught.value) == expected


def test_check_mapping_accepts_a_valid_mapping_and_integers_as_numbers():
    data, where = parse_yaml("step: {at: 1, system: A, groups: [], all: false}\n", "f.yaml")
    assert check_mapping(data["step"], where, ("step",), FIELDS, required=("system",)) is data["step"]


@pytest.mark.parametrize(("text", "expected"), [
    ("v: complaint\n", "f.yaml:1: key 'v': unknown verdict 'complaint' (expected one of: compliant, "
                      "deviation, incomplete); did you mean 'compliant'?"),
    ("v: zzz\n", "f.yaml:1: key 'v': unknown verdict 'zzz' (expected one of: compliant, deviation, "
                 "incomplete)"),
    ("v: 3\n", "f.yaml:1: key 'v': verdict must be one of: compliant, deviation, incomplete; got an "
               "integer 3"),
    ("v: [a]\n", "f.yaml:1: key 'v': verdict must be one of: compliant, deviation, incomplete; got a "
                 "list"),
])
def test_check_choice_names_the_value_the_choices_and_the_nearest(text, expected):
    data, where = parse_yaml(text, "f.yaml")
    choices = ("compliant", "deviation", "incomplete")
    with pytest.raises(InputError) as caught:
        check_choice(data["v"], where, ("v",), choices, "verdict")
    assert str(caught.value) == expected
    assert check_choice("deviation", where, ("v",), choices, "verdict") == "deviation"
