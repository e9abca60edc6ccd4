"""The one YAML loader of mcxa (scenarios, systems files, rule files): safe, strict, and it knows lines.

``load_yaml(path)`` returns ``(data, locations)``: ``data`` is plain Python (dict, list, str, int, float,
bool, None, and ``datetime`` for YAML timestamps), ``locations`` maps a path into ``data`` (a tuple of keys
and list indices) to the line it was written on, and makes the errors.

What is refused, each as a one-line ``InputError`` (``FILE:LINE: key 'a.b[2].c': reason``, or
``FILE:LINE:COL: <yaml problem>`` for syntax):

- duplicate keys in a mapping (PyYAML silently keeps the last one);
- any tag that would build a Python object (``!!python/object``, ``!foo``): only the YAML core types exist;
- aliases (``*name``): they are never needed in a closed-vocabulary file, and refusing them at compose time
  makes "billion laughs" expansion impossible rather than merely bounded;
- non-string keys, files over ``MAX_BYTES``, nesting deeper than ``MAX_DEPTH``, text that is not UTF-8,
  and tabs in indentation (reported in words, not as PyYAML's "cannot start any token").

``check_mapping`` validates one mapping against a closed vocabulary of keys and types, naming the unknown
key and the ones that were expected; ``check_choice`` one value against a closed set of values. Both add a
"did you mean" when a known word is close.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from analyzer.base.errors import InputError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "Locations", "Path", "check_choice", "check_mapping", "describe",
           "did_you_mean", "load_yaml", "parse_yaml"]

MAX_BYTES = 4 << 20  # a scenario or rule file is a few KB; anything this big is not one
MAX_DEPTH = 64  # mappings and lists inside each other; a real file nests five or six

Path = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
#: The only tags a value may carry (implicit or written out); everything else is refused.
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_SEQ_TAG, _MAP_TAG = _CORE + "seq", _CORE + "map"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting while composing; construction is done by
    ``_build``, not PyYAML. Both recurse once per level, so without the cap ``[[[[…`` would end in a
    ``RecursionError`` (a crash, not an answer) and build one path tuple per level per value."""

    _depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if self.check_event(AliasEvent):
            raise ComposerError(None, None, f"alias '*{event.anchor}' is not allowed (write the value out)",
                                event.start_mark)
        if not self.check_event(MappingStartEvent, SequenceStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels (no scenario, systems or "
                                "rule file is)", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def dotted(path: Path) -> str:
    """``('timeline', 3, 'do')`` → ``timeline[3].do``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe(value: Any) -> str:
    """A short name for the type of a YAML value, for error messages."""
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null (empty)", datetime: "a timestamp",
            date: "a date"}.get(type(value), type(value).__name__)


class Locations:
    """Where each value of a loaded document was written; makes errors that name file, line and key."""

    def __init__(self, source: str):
        self.source = source
        self._lines: dict[Path, int] = {}

    def _set(self, path: Path, line: int) -> None:
        self._lines[path] = line

    def line(self, path: Path) -> int:
        """Line of the value at ``path`` (1-based); the nearest enclosing value's line if not recorded."""
        path = tuple(path)
        while path and path not in self._lines:
            path = path[:-1]
        return self._lines.get(path, 1)

    def where(self, path: Path) -> str:
        return f"{self.source}:{self.line(path)}"

    def error(self, path: Path, reason: str) -> InputError:
        """``FILE:LINE: key 'a.b': reason`` (without the key part for the document root)."""
        path = tuple(path)
        return InputError(f"key '{dotted(path)}': {reason}" if path else reason, self.where(path))

    def __len__(self) -> int:
        return len(self._lines)


def load_yaml(path: str | os.PathLike) -> tuple[Any, Locations]:
    """Read and parse one YAML file strictly (see the module docstring); errors are ``InputError``."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), name) from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"larger than {MAX_BYTES} bytes: not a scenario, systems or rule file", name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", f"{name}:{line}") from None
    return parse_yaml(text, name)


def parse_yaml(text: str, source: str = "<string>") -> tuple[Any, Locations]:
    """Parse YAML text as ``load_yaml`` does; ``source`` names it in errors."""
    locations = Locations(source)
    try:
        loader = _StrictLoader(text)  # its reader already refuses control characters (a ReaderError)
    except yaml.YAMLError as exc:
        raise InputError(" ".join(str(exc).split()), source) from None
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, source, text) from None
    except yaml.YAMLError as exc:  # e.g. a reader error on control characters
        raise InputError(" ".join(str(exc).split()), source) from None
    finally:
        loader.dispose()
    if root is None:
        return None, locations
    return _build(root, (), locations, loader), locations


def _syntax_error(exc: yaml.MarkedYAMLError, source: str, text: str) -> InputError:
    mark = exc.problem_mark or exc.context_mark
    problem = " ".join((exc.problem or "").split())
    if mark is not None:
        lines = text.splitlines()
        bad = lines[mark.line] if mark.line < len(lines) else ""
        if "\t" in bad[:len(bad) - len(bad.lstrip(" \t"))] or "'\\t'" in problem:
            problem = "tab character in indentation (YAML indents with spaces only)"
        elif exc.context and exc.context not in problem:
            problem = f"{' '.join(exc.context.split())}: {problem}"
        return InputError(problem, f"{source}:{mark.line + 1}:{mark.column + 1}")
    return InputError(problem or "YAML error", source)


def _build(node: Node, path: Path, locations: Locations, loader: yaml.SafeLoader) -> Any:
    locations._set(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        if node.tag != _MAP_TAG:
            raise locations.error(path, f"tag '{node.tag}' is not allowed")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _CORE + "merge":
                raise InputError(f"key '{dotted(path) or '<root>'}': merge keys ('<<') are not allowed",
                                 f"{locations.source}:{key_node.start_mark.line + 1}")
            key = _scalar(key_node, path, locations, loader) if isinstance(key_node, ScalarNode) else None
            where = f"{locations.source}:{key_node.start_mark.line + 1}"
            if not isinstance(key, str):
                shown = f" {key!r}" if isinstance(key_node, ScalarNode) else ""
                raise InputError(f"key{shown} in '{dotted(path) or '<root>'}' is not a string", where)
            if key in out:
                first = locations.line((*path, key))
                raise InputError(f"key '{dotted((*path, key))}': duplicate key (first given on line {first})",
                                 where)
            locations._set((*path, key), key_node.start_mark.line + 1)
            out[key] = _build(value_node, (*path, key), locations, loader)
            # the key's own line is the more useful one for errors about the key
            locations._set((*path, key), key_node.start_mark.line + 1)
        return out
    if isinstance(node, SequenceNode):
        if node.tag != _SEQ_TAG:
            raise locations.error(path, f"tag '{node.tag}' is not allowed")
        return [_build(item, (*path, i), locations, loader) for i, item in enumerate(node.value)]
    return _scalar(node, path, locations, loader)


def _scalar(node: ScalarNode, path: Path, locations: Locations, loader: yaml.SafeLoader) -> Any:
    if node.tag not in _SCALAR_TAGS:
        raise InputError(f"key '{dotted(path) or '<root>'}': tag '{node.tag}' is not allowed "
                         "(only plain YAML values)", f"{locations.source}:{node.start_mark.line + 1}")
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise InputError(f"key '{dotted(path) or '<root>'}': bad {node.tag.rsplit(':', 1)[-1]} value "
                         f"{node.value!r} ({' '.join(str(exc).split())[:120]})",
                         f"{locations.source}:{node.start_mark.line + 1}") from None


# -- closed vocabularies ------------------------------------------------------------------------------

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "a mapping", datetime: "a timestamp"}


def _is(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest known word, or nothing when none is close."""
    hint = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean '{hint[0]}'?" if hint else ""


def check_choice(value: Any, locations: Locations, path: Path, choices: Iterable[str], what: str) -> str:
    """Check that ``value`` (found at ``path``) is one of ``choices``; ``what`` names it ("verdict").
    Returns ``value``; raises ``InputError``."""
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    if not isinstance(value, str):
        shown = f" {value!r}" if isinstance(value, int | float) and not isinstance(value, bool) else ""
        raise locations.error(path, f"{what} must be one of: {', '.join(choices)}; "
                                    f"got {describe(value)}{shown}")
    raise locations.error(path, f"unknown {what} {value!r} (expected one of: {', '.join(choices)})"
                          + did_you_mean(value, choices))


def check_mapping(value: Any, locations: Locations, path: Path,
                  fields: Mapping[str, type | tuple[type, ...]], required: Iterable[str] = (),
                  what: str | None = None) -> dict[str, Any]:
    """Check that ``value`` (found at ``path``) is a mapping whose keys are among ``fields``, each of the
    type(s) given there, with every ``required`` key present. Returns ``value``; raises ``InputError``.

    Types are ``str``, ``int``, ``float`` (an integer is accepted), ``bool``, ``list``, ``dict``,
    ``datetime``, or a tuple of them. ``what`` names the mapping in messages (default: its dotted path).
    """
    path = tuple(path)
    label = what or (f"'{dotted(path)}'" if path else "the document")
    if not isinstance(value, dict):
        raise locations.error(path, f"expected a mapping, got {describe(value)}") if path else InputError(
            f"expected a mapping at the top level, got {describe(value)}", locations.where(path))
    for key in value:
        if key not in fields:
            raise InputError(f"unknown key '{key}' in {label} (expected one of: {', '.join(fields)})"
                             + did_you_mean(key, fields), locations.where((*path, key)))
    for key in required:
        if key not in value:
            raise InputError(f"missing key '{key}' in {label}", locations.where(path))
    for key, kinds in fields.items():
        if key not in value:
            continue
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if not any(_is(value[key], k) for k in kinds):
            expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise locations.error((*path, key), f"expected {expected}, got {describe(value[key])}"
                                  + (f" {value[key]!r}" if isinstance(value[key], str | int | float)
                                     and not isinstance(value[key], bool) else ""))
    return value
