"""``mcxa replay``: captures played back as a live feed (events, then verdicts when their last step is
seen), and compared with an expect file (the shape of sample_captures/expected.yaml) for CI.

The pieces are plain functions over the contract's report (``analyzer.report``) so they are testable
without the command: ``expand_paths`` (files and directories → captures), ``timeline`` (the feed of one
capture), ``Pacer`` (sleeps between lines at N× capture time, with an injectable sleep), ``summary`` (a
report procedure in the expect file's shape), ``drifts`` (what differs) and ``junit_tree``.

An expect file is checked like a rule file before anything is replayed: a misspelled key or value would
otherwise surface as a drift (or worse, as a match nobody asked for), so it is one ``FILE:LINE: key:
reason`` line and exit 2 instead.
"""

from __future__ import annotations

import os
import time as _time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from analyzer.base.times import clock
from analyzer.base.yamlfile import Locations, check_choice, check_mapping
from analyzer.meaning.analysis import CaptureAnalysis
from analyzer.meaning.events import SERVICES
from analyzer.report.document import read_completely, stop_text
from analyzer.rules import Rule
from analyzer.rules.matcher import SEVERITY
from analyzer.run.batch import find_captures

MIGRATION_RULES = ("group-call-migration", "private-call-migration")
VERDICTS = ("compliant", "deviation", "incomplete")
#: The step statuses an expect file lists; ``matched`` is what a step left out has.
STEP_STATUSES = tuple(SEVERITY)
#: ``reading:`` of an expect-file entry: whether the capture is read to its end (the default) or not.
READINGS = ("complete", "incomplete")
#: The longest sleep between two lines, in seconds of wall time: an idle hour in a capture does not
#: stall a replay.
MAX_SLEEP = 5.0


def expand_paths(paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """(captures, directories): the captures ``mcxa batch`` would take from ``paths`` (files, directories
    searched recursively, globs), and the directories among them (for "not replayed" checks). A path that
    does not exist raises ``UsageError``."""
    paths = list(paths)
    return find_captures(paths), [p for p in paths if os.path.isdir(p)]


# --- the live feed -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Line:
    time: float
    text: str


def feed_header(capture: str, part: dict) -> list[str]:
    """The lines that open a capture's feed: its name, and first of all where reading stopped if it did."""
    lines = [f"== {capture}"]
    if not read_completely(part):
        lines.append(f"INCOMPLETE capture: {stop_text(part)}; events and verdicts up to there")
    return lines


def timeline(analysis: CaptureAnalysis, procedures: list[dict]) -> list[Line]:
    """One line per event (time, UE session, system, kind, outcome, group/peer) and, at each procedure's
    ``end``, its verdict line; in capture time order (an event before a verdict at the same moment)."""
    session = analysis.session_of()
    keyed: list[tuple[float, int, int, str]] = []
    for n, e in enumerate(analysis.events):
        subject = e.group or e.peer or ""
        outcome = e.outcome if e.status is None else f"{e.outcome} {e.status}"
        text = (f"{clock(e.time)}  {session.get(id(e)) or '-':<4} {(e.system or '-')[:18]:<18} "
                f"{e.kind:<23} {outcome:<11} {subject}").rstrip()
        keyed.append((e.time, 0, n, text))
    for n, p in enumerate(procedures):
        keyed.append((p["end"], 1, n, verdict_text(p)))
    keyed.sort(key=lambda k: k[:3])
    return [Line(t, text) for t, _, _, text in keyed]


def verdict_text(p: dict, label: str = "VERDICT") -> str:
    """The line that tells a report procedure's verdict: end time, session, verdict, rule, UE, subject and
    the steps not matched."""
    subject = p.get("group") or p.get("peer") or p.get("from_system") or ""
    steps = ", ".join(f"{s['id']}: {s['status']}" for s in p["steps"] if s["status"] != "matched")
    return (f"{clock(p['end'])}  {p['session']:<4} {label} {p['verdict'].upper():<10} {p['rule']} "
            f"{p['ue']} {subject}" + (f" ({steps})" if steps else "")).rstrip()


class Pacer:
    """Sleeps before each line so lines come at ``speed``× capture time (``None``: no sleeping). Each
    sleep is capped at ``max_sleep`` seconds; ``sleep`` is injectable for tests."""

    def __init__(self, speed: float | None, sleep: Callable[[float], None] = _time.sleep,
                 max_sleep: float = MAX_SLEEP):
        self.speed, self.sleep, self.max_sleep = speed, sleep, max_sleep
        self.previous: float | None = None

    def wait(self, t: float) -> float:
        """Sleep for the capture time since the previous line, scaled; returns the seconds slept."""
        delay = 0.0
        if self.speed and self.previous is not None and t > self.previous:
            delay = min((t - self.previous) / self.speed, self.max_sleep)
            if delay > 0.0005:  # below a millisecond, sleeping costs more than it shows
                self.sleep(delay)
            else:
                delay = 0.0
        self.previous = t if self.previous is None else max(self.previous, t)
        return delay

    def play(self, lines: Iterable[Line], out: IO[str]) -> None:
        for line in lines:
            self.wait(line.time)
            out.write(line.text + "\n")
            out.flush()


def parse_speed(text: str) -> float | None:
    """``max`` → None (no sleeping); else a positive factor."""
    if text.strip().lower() == "max":
        return None
    value = float(text)
    if not value > 0:
        raise ValueError("must be positive")
    return value


# --- comparison with an expect file --------------------------------------------------------------------

def summary(proc: dict) -> dict:
    """A report procedure in the shape of an expect-file entry (sample_captures/expected.yaml)."""
    out = {"rule": proc["rule"], "ue": proc["ue"], "from": proc["from_system"], "to": proc["to_system"],
           "verdict": proc["verdict"], "steps": {s["id"]: s["status"] for s in proc["steps"]
                                                  if s["status"] != "matched"}}
    out[subject_key(proc["rule"])] = proc["group"] or proc["peer"]
    if any(d["severity"] == "info" for d in proc["deviations"]):
        out["info"] = sorted({d["step"] for d in proc["deviations"] if d["severity"] == "info"})
    if proc["service"] not in (None, _DEFAULTS["service"]):
        out["service"] = proc["service"]
    return out


def subject_key(rule: str) -> str:
    """The key that names an instance's subject in an expect file: ``group`` for group-call migrations,
    ``peer`` for every other rule."""
    return "group" if rule == "group-call-migration" else "peer"


_TOP_KEYS = {"captures": dict}
_ENTRY_KEYS = {"scenario": str, "reading": str, "procedures": list}
_PROCEDURE_KEYS = {"rule": str, "ue": str, "group": str, "peer": str, "from": str, "to": str, "verdict": str,
                   "steps": dict, "info": list, "service": str}


def check_expectations(data, where: Locations, rules: list[Rule]) -> dict[str, dict]:
    """The ``captures`` of a loaded expect file, checked against its vocabulary and the loaded ``rules``
    (rule and step ids); the first problem raises ``InputError`` naming file, line and key."""
    check_mapping(data, where, (), _TOP_KEYS, required=("captures",))
    steps_of = {r.id: [s.id for s in r.steps] for r in rules}
    for key, entry in data["captures"].items():
        at = ("captures", key)
        check_mapping(entry, where, at, _ENTRY_KEYS, what=f"the entry of '{key}'")
        if "reading" in entry:
            check_choice(entry["reading"], where, (*at, "reading"), READINGS, "reading")
        for i, proc in enumerate(entry.get("procedures", [])):
            _check_procedure(proc, where, (*at, "procedures", i), steps_of, f"procedure {i + 1} of '{key}'")
    return data["captures"]


def _check_procedure(proc, where: Locations, at: tuple, steps_of: dict[str, list[str]], what: str) -> None:
    check_mapping(proc, where, at, _PROCEDURE_KEYS, required=("rule", "ue", "verdict"), what=what)
    rule = check_choice(proc["rule"], where, (*at, "rule"), steps_of, "rule")
    check_choice(proc["verdict"], where, (*at, "verdict"), VERDICTS, "verdict")
    if "service" in proc:
        check_choice(proc["service"], where, (*at, "service"), SERVICES, "service")
    named_by = subject_key(rule)
    for other in ("group", "peer"):
        if other != named_by and other in proc:
            raise where.error((*at, other), f"a {rule} instance is named by '{named_by}', not '{other}'")
    for step, status in proc.get("steps", {}).items():
        check_choice(step, where, (*at, "steps", step), steps_of[rule], f"{rule} step")
        if status == "matched":
            raise where.error((*at, "steps", step), "'matched' is what a step left out has: list only the "
                              "steps whose status is not matched")
        check_choice(status, where, (*at, "steps", step), STEP_STATUSES, "step status")
    for j, step in enumerate(proc.get("info", [])):
        check_choice(step, where, (*at, "info", j), steps_of[rule], f"{rule} step")


@dataclass(slots=True)
class Expectations:
    """An expect file: its directory (keys are relative to it) and capture key → entry."""

    directory: str
    captures: dict[str, dict]

    @classmethod
    def load(cls, path: str, rules: list[Rule]) -> Expectations:
        """Read and check an expect file (``check_expectations``); ``rules`` are the rules replayed."""
        from analyzer.base.yamlfile import load_yaml

        data, where = load_yaml(path)
        return cls(os.path.dirname(os.path.abspath(path)), check_expectations(data, where, rules))

    @property
    def rules(self) -> set[str]:
        """The rules the file lists (only these are compared); the migration rules when it lists none."""
        found = {p.get("rule") for e in self.captures.values() for p in e.get("procedures") or []}
        return found - {None} or set(MIGRATION_RULES)

    def key_of(self, capture: str) -> str | None:
        """The entry of ``capture``: by its path relative to the expect file's directory, else by name."""
        rel = os.path.relpath(os.path.abspath(capture), self.directory).replace(os.sep, "/")
        if rel in self.captures:
            return rel
        name = os.path.basename(capture)
        by_name = [k for k in self.captures if k.rsplit("/", 1)[-1] == name]
        return by_name[0] if len(by_name) == 1 else None

    def label(self, capture: str) -> str:
        """How drifts name ``capture``: its entry, else its path relative to the expect file's directory
        when inside it, else as given."""
        key = self.key_of(capture)
        if key is not None:
            return key
        rel = os.path.relpath(os.path.abspath(capture), self.directory)
        return capture if rel.startswith(os.pardir) else rel.replace(os.sep, "/")

    def not_replayed(self, replayed: set[str], directories: list[str]) -> list[str]:
        """Expected captures inside a given directory that were not replayed."""
        roots = [os.path.abspath(d) for d in directories]
        missing = []
        for key in self.captures:
            if key in replayed:
                continue
            where = os.path.abspath(os.path.join(self.directory, key))
            if any(os.path.commonpath([where, r]) == r for r in roots):
                missing.append(key)
        return missing


def _subject(entry: dict) -> str:
    return entry.get("group") or entry.get("peer") or "-"


def _who(entry: dict) -> str:
    return f"{entry.get('rule')} {entry.get('ue')} {_subject(entry)}"


_COMPARED = ("verdict", "steps", "from", "to", "info", "service")
#: What a field left out of an expect-file entry (or a summary) means.
_DEFAULTS = {"steps": {}, "info": [], "service": "mcptt"}


def drifts(expected: list[dict], actual: list[dict]) -> list[str]:
    """What differs between expected and actual procedure summaries, one text per drift. Instances pair up
    by (rule, ue, group/peer) in order; an unpaired expected one is missing, an unpaired actual one
    unexpected; a pair differs by verdict, step statuses, systems, info notes or service."""
    def key(e: dict) -> tuple:
        return e.get("rule"), e.get("ue"), e.get("group") or e.get("peer")

    unpaired = list(actual)
    found = []
    for want in expected:
        match = next((a for a in unpaired if key(a) == key(want)), None)
        if match is None:
            found.append(f"{_who(want)}: missing instance (expected verdict {want.get('verdict')})")
            continue
        unpaired.remove(match)
        for field in _COMPARED:
            w, a = want.get(field, _DEFAULTS.get(field)), match.get(field, _DEFAULTS.get(field))
            if w != a:
                found.append(f"{_who(want)}: {field} expected {_show(w)}, got {_show(a)}")
    for extra in unpaired:
        found.append(f"{_who(extra)}: unexpected instance (verdict {extra['verdict']})")
    return found


def _show(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def reading_drifts(entry: dict, part: dict) -> list[str]:
    """A capture not read to its end drifts unless its entry says ``reading: incomplete`` (and one read
    to its end drifts when the entry says so)."""
    expected = entry.get("reading", "complete")
    if read_completely(part):
        return [] if expected == "complete" else ["reading expected incomplete, got complete (the whole file "
                                                  "was read)"]
    if expected == "incomplete":
        return []
    return [f"incomplete capture: {stop_text(part)}; if that is expected, say 'reading: incomplete' in its "
            "entry"]


def capture_drifts(expectations: Expectations, key: str | None, part: dict) -> list[str]:
    """The drifts of one replayed capture (its report part): how it was read, then its procedures; with
    no entry in the expect file, that is a drift of its own."""
    rules, procedures = expectations.rules, part["procedures"]
    found = reading_drifts(expectations.captures[key] if key is not None else {}, part)
    if key is None:
        n = sum(p["rule"] in rules or p["kind"] == "migration" for p in procedures)
        return [f"not in the expect file ({n} migration instance(s) found)", *found]
    expected = [p for p in expectations.captures[key].get("procedures") or [] if p["rule"] in rules]
    return found + drifts(expected, [summary(p) for p in procedures if p["rule"] in rules])


def drift_lines(results: dict[str, list[str]]) -> Iterator[str]:
    for name, found in results.items():
        for text in found:
            yield f"DRIFT {name}: {text}"


def junit_tree(results: dict[str, list[str]]):
    """``<testsuites>`` with one testcase per capture (expected or replayed), a failure listing its
    drifts."""
    from lxml import etree

    from analyzer.report.junit import _x

    root = etree.Element("testsuites", name="mcxa replay")
    suite = etree.SubElement(root, "testsuite", name="mcxa replay", package="mcxa")
    failures = 0
    for name, found in results.items():
        case = etree.SubElement(suite, "testcase", name=_x(name), classname="mcxa.replay", time="0.000")
        if found:
            failures += 1
            el = etree.SubElement(case, "failure", type="drift",
                                  message=_x(f"{len(found)} drift(s): {found[0]}"))
            el.text = _x("\n".join(found) + "\n")
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0", "time": "0.000"}
    suite.attrib.update(counts)
    suite.set("skipped", "0")
    root.attrib.update(counts)
    return root


def write_junit(results: dict[str, list[str]], out: IO[str]) -> None:
    from lxml import etree

    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(etree.tostring(junit_tree(results), encoding="unicode", pretty_print=True))
