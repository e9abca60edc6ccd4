"""The report: judged procedure instances in the shape of ../shared/contract (JSON), and as text.

``judge`` applies the rules to an analysed capture; ``capture_report`` and ``report`` build the contract's
JSON document (schema ``mcxa-report/1``; fields are only ever added); ``exit_code`` and ``write_text``
say it to programs and to people.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import TextIO

import orjson

from analyzer import __version__
from analyzer.base.exitcodes import ExitCode
from analyzer.base.runs import SortedRuns
from analyzer.engines import ReadStop
from analyzer.meaning.analysis import CaptureAnalysis
from analyzer.report.accounting import accounting_dict
from analyzer.rules import Rule
from analyzer.rules.judge import judgements, report_order, rtp_counts
from analyzer.rules.matcher import Instance
from analyzer.rules.media import counted_endpoints, measure
from analyzer.rules.results import Deviation, StepResult

SCHEMA = "mcxa-report/1"


def _kpis(inst: Instance) -> dict:
    """The KPIs of one instance, each only where it means something (definitions in the README).

    ``step_seconds``: per step seen, seconds from what it was due after (the previous step's event, or the
    migration point for a first step) to its event — the figure its window is judged on. For a migration,
    when every step was seen and succeeded (nothing missing or failed): ``migration_duration``, from the
    first step's request to the last step's final answer, and ``service_interruption``, from the end of
    the call in the old system (its release or leave when the capture shows it, else the first step's
    request) to the last step's final answer (back in the call in the new system). And the media-plane
    figures of ``analyzer.rules.media`` (``media_interruption``, ``access_times``, ``late_entry_time``,
    ``rtp_received``) where the capture's RTP and floor control show them.
    """
    kpis: dict = {"step_seconds": {s.step.id: round(s.event.time - s.reference, 3)
                                   for s in inst.steps if s.event is not None and s.reference is not None},
                  **inst.figures}  # media-plane figures where floor control shows them (rules.media)
    required = [s for s in inst.steps if not s.step.optional]
    done = required and all(s.event is not None and s.status != "failed" for s in required)
    if inst.rule.migration is None or not done:
        return kpis
    seen = [s.event for s in inst.steps if s.event is not None]
    first = min(e.time for e in seen)
    back = inst.steps[-1].event
    back_at = back.end or back.time
    kpis["migration_duration"] = round(max(e.end or e.time for e in seen) - first, 3)
    left = inst.ended.time if inst.ended is not None and inst.ended.time <= back.time else first
    kpis["service_interruption"] = round(back_at - min(left, first), 3)
    return kpis


#: Severity of a step's deviation → the tone every format colours the step with.
_TONES = {"error": "bad", "warning": "warn", None: "ok"}
#: Reports written before steps carried a severity: the severity their status had then.
_LEGACY = {"matched": None, "unverifiable": "warning"}


def step_tone(step: dict) -> str:
    """``ok`` | ``info`` | ``warn`` | ``bad``: one colour per step, the same in text, HTML, JUnit and the
    ladder. A matched step with an informational note stays ``ok``; an optional step not seen is ``info``."""
    severity = step["severity"] if "severity" in step else _LEGACY.get(step["status"], "error")
    if severity == "info":
        return "ok" if step["status"] == "matched" else "info"
    return _TONES[severity]


def step_label(step: dict) -> str:
    """The status with the few words that qualify it: ``missing (capture ended before it was due)``."""
    return f"{step['status']} ({step['why']})" if step.get("why") else step["status"]


def step_dict(s: StepResult) -> dict:
    return {"id": s.step.id, "title": s.step.title, "status": s.status,
            "severity": s.severity, "why": s.why,
            "frames": list(s.event.frames) if s.event else [],
            "time": s.event.time if s.event else None,
            "event": s.event.kind if s.event else None,
            "detail": _step_detail(s.event),
            "spec": s.step.spec,
            **({"retry": {"time": s.retry.time, "frames": list(s.retry.frames)}} if s.retry else {})}


def _step_detail(event) -> str | None:
    """What kind of evidence a step matched, for people: ``evidence implicit-chat``, ``via
    pre-established`` (None for the ordinary kind: a PUBLISH, an on-demand call)."""
    if event is None:
        return None
    words = [f"evidence {event.evidence}" if event.evidence not in (None, "publish") else None,
             f"via {event.via}" if event.via not in (None, "on-demand") else None]
    return ", ".join(w for w in words if w) or None


def _named(value) -> str | None:
    """A binding that names something (system, group, peer, service) as the contract's string or null: a
    rule may bind any event field to these names, a time or a frame list included."""
    return value if value is None or isinstance(value, str) else str(value)


def procedure_dict(inst: Instance) -> dict:
    b, session = {k: _named(v) for k, v in inst.bindings.items()}, inst.session
    from_system = b.get("from_system", b.get("system"))
    seen = [s.event for s in inst.steps if s.event is not None]
    return {
        "rule": inst.rule.id,
        "title": inst.rule.title,
        "kind": "migration" if inst.rule.migration is not None else "building-block",
        "spec": inst.rule.spec,
        "verdict": inst.verdict,
        "ue": session.mc_id(from_system) or session.id,
        "ue_aliases": [a for a in dict.fromkeys(session.aliases(from_system))],
        "session": session.id,
        "service": b.get("service"),
        "group": b.get("group"),
        "peer": b.get("peer"),
        "from_system": from_system,
        "to_system": b.get("to_system"),
        "start": min((e.time for e in seen), default=inst.migration.time),
        "end": max((e.end or e.time for e in seen), default=inst.migration.time),
        "anchor": {"kind": inst.anchor.kind, "time": inst.anchor.time, "frames": list(inst.anchor.frames)},
        "steps": [step_dict(s) for s in inst.steps],
        "deviations": [_deviation_dict(d) for d in inst.deviations],
        "kpis": _kpis(inst),
    }


def _deviation_dict(d: Deviation) -> dict:
    return {"code": d.code, "step": d.step, "severity": d.severity, "message": d.message, "spec": d.spec,
            "frames": list(d.frames)}


def capture_report(analysis: CaptureAnalysis, judged: list[Instance] | Procedures) -> dict:
    d, stats = analysis.diagnostics, analysis.stats
    events, sessions = analysis.counts()
    stopped = stats.stopped
    return {
        "file": analysis.path,
        # Reading that stopped before the end of the file makes the whole capture at least incomplete.
        "reading": {"complete": True} if stopped is None else {"complete": False, **stopped.as_dict()},
        "stats": {"packets": stats.packets, "sip_messages": stats.sip_messages,
                  "http_messages": stats.http_messages, "decode_errors": d.total,
                  "events": events, "ue_sessions": sessions},
        # where every packet went, so that "no migration found" is never ambiguous
        "accounting": accounting_dict(stats),
        "procedures": list(judged) if isinstance(judged, Procedures) else [procedure_dict(i) for i in judged],
        "diagnostics": [x.as_dict() for x in d.records],
    }


def report(captures: list[dict], rules: list[Rule]) -> dict:
    return {"schema": SCHEMA,
            "tool": {"name": "mcxa", "version": __version__, "rules": [r.id for r in rules]},
            "captures": captures}


class JsonReport:
    """``write_json(report(parts, rules), out)`` written a capture at a time (``add``), the same bytes: a
    capture's procedures are read from their packed ``Procedures`` as they are written, and nothing of a
    capture is held once it is written. (Built whole, the procedures of a 6 000-UE core capture took
    175 MB.)"""

    _EMPTY = "[]\n}\n"  # how the document ends when no capture is in it

    def __init__(self, out: TextIO, rules: list[Rule]):
        self.out, self.rules, self.captures = out, rules, 0
        self.verdicts: set[str] = set()
        self.complete = True

    def _head(self) -> str:
        """The document up to its list of captures (written with the first: an error before it leaves
        nothing written)."""
        head = io.StringIO()
        write_json(report([], self.rules), head)
        assert head.getvalue().endswith(self._EMPTY)
        return head.getvalue()[:-len(self._EMPTY)]

    def add(self, analysis: CaptureAnalysis, procedures: Procedures) -> None:
        part = capture_report(analysis, [])
        if procedures:
            part["procedures"] = procedures
        self.verdicts.update(procedures.verdicts)
        self.complete = self.complete and read_completely(part)
        self.out.write(",\n    " if self.captures else self._head() + "[\n    ")
        _write(part, self.out, "    ", _STREAMED_LEVELS - 2)
        self.captures += 1

    def close(self) -> ExitCode:
        """End the document; the exit code ``exit_code`` gives for it."""
        self.out.write("\n  ]\n}\n" if self.captures else self._head() + self._EMPTY)
        return _exit_code(self.verdicts, self.complete)


#: Procedures of a capture held as dicts before they are packed (a drive test's pay nothing for packing).
PROCEDURES_HELD = 4096


class Procedures:
    """A capture's procedures as the report gives them (``procedure_dict``), in its order, held packed
    (``base.runs.SortedRuns``): each is made a dict as it is judged (``rules.judge.judgements``), so a
    streamed analysis lets each session go as soon as it is judged; those with media figures
    wait, packed with their probe, for the capture's RTP to be counted. (Held as instances, the procedures
    of a 6 000-UE core capture took 68 MB; the migrations waiting for the RTP, 90 MB.) ``verdicts``: those
    among them (media figures never change one). Read as often as wanted."""

    def __init__(self, analysis: CaptureAnalysis, rules: list[Rule], window: float | None = None):
        self.runs = SortedRuns(hold=PROCEDURES_HELD)
        self.verdicts: set[str] = set()
        waiting = SortedRuns(hold=PROCEDURES_HELD)  # (order, report, probe) of those with media figures
        ports: set[str] = set()  # whose RTP to count
        for seq, inst, probe in judgements(analysis, rules, window):
            self.verdicts.add(inst.verdict)
            order = report_order((seq, inst))
            if probe is None:
                self.runs.add(order, procedure_dict(inst))
                continue
            waiting.add(order, (order, procedure_dict(inst), probe))
            ports.update(counted_endpoints(probe))
        rtp = rtp_counts(analysis, ports)
        for order, procedure, probe in waiting:
            self.runs.add(order, _measured(procedure, *measure(probe, rtp)))

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.runs)


def _measured(procedure: dict, figures: dict, deviations: list[Deviation]) -> dict:
    """A procedure with its media figures and KPI deviations, as ``procedure_dict`` gives them measured."""
    kpis = procedure["kpis"]
    procedure["kpis"] = {"step_seconds": kpis.pop("step_seconds"), **figures, **kpis}
    procedure["deviations"] += map(_deviation_dict, deviations)
    return procedure


def write_json(doc: dict, out: TextIO) -> None:
    """Write the document with two-space indents, text as it is, one procedure (or other list item) at a
    time: orjson encodes ~20x faster than ``json`` with indents, and no second copy of a 60 MB report
    is ever held. The same document as ``json.dumps(doc, indent=2, ensure_ascii=False)``; only very small
    numbers read differently (``0.000025`` for ``2.5e-05``)."""
    _write(doc, out, "", _STREAMED_LEVELS)
    out.write("\n")


_STREAMED_LEVELS = 4  # document → captures → capture → its lists (procedures, sessions...) → one item


def _write(value, out: TextIO, pad: str, levels: int) -> None:
    if not levels or not isinstance(value, dict | list | Procedures) or not value:
        text = _encoded(value)
        out.write(text.replace("\n", "\n" + pad) if pad and "\n" in text else text)
        return
    inner = pad + "  "
    out.write("{" if isinstance(value, dict) else "[")
    pairs = value.items() if isinstance(value, dict) else ((None, item) for item in value)
    for index, (key, item) in enumerate(pairs):
        out.write(("," if index else "") + "\n" + inner)
        if key is not None:
            out.write(_encoded(str(key)) + ": ")
        _write(item, out, inner, levels - 1)
    out.write("\n" + pad + ("}" if isinstance(value, dict) else "]"))


def _encoded(value) -> str:
    """JSON text of ``value`` (newlines only between items: JSON strings escape theirs). ``json`` takes the
    rare text orjson refuses (lone surrogates)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, indent=2, ensure_ascii=False)


def stop_text(cap: dict) -> str | None:
    """``reading stopped after frame N at byte offset X: reason``, or None when the capture was read to its
    end."""
    reading = cap.get("reading", {})
    return None if reading.get("complete", True) else ReadStop.from_dict(reading).text()


def unread_text(cap: dict) -> str | None:
    """What every format says first about a capture not read to its end; None when it was."""
    stop = stop_text(cap)
    return f"{stop}; only what came before was judged, so the capture is incomplete" if stop else None


def read_completely(cap: dict) -> bool:
    """Whether the whole capture file was read (reports written before this field existed were)."""
    return cap.get("reading", {}).get("complete", True)


def exit_code(doc: dict) -> ExitCode:
    """1 on any deviation; else 3 when a procedure is incomplete or a capture was not read to its end;
    else 0."""
    return _exit_code({p["verdict"] for c in doc["captures"] for p in c["procedures"]},
                      all(read_completely(c) for c in doc["captures"]))


def _exit_code(verdicts: set[str], complete: bool) -> ExitCode:
    if "deviation" in verdicts:
        return ExitCode.DEVIATION
    if "incomplete" in verdicts or not complete:
        return ExitCode.INCOMPLETE
    return ExitCode.OK
