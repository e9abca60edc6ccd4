"""The report as JUnit XML, for CI systems (Jenkins, GitLab, GitHub actions...) that show test results.

One ``<testsuite>`` per capture (named by its path) inside ``<testsuites>``; one ``<testcase>`` per
procedure instance, named ``"<rule> <ue> <group or peer>"`` with classname ``mcxa.<capture stem>.<rule>``
so CI UIs group by capture, then rule. A ``deviation`` is a ``<failure>``, ``incomplete`` is ``<skipped>``,
``compliant`` passes; each case's ``<system-out>`` lists its steps. Built with lxml: every text from a
capture is escaped, and characters XML 1.0 cannot carry (NUL, other control characters, lone surrogates) are
written as ``\\xNN``.
The attributes follow the Jenkins/Ant JUnit schema (``tests/schemas/junit.xsd``).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePath
from typing import IO

from lxml import etree

from analyzer.base.times import clock
from analyzer.report.document import step_label, unread_text

#: What XML 1.0 cannot contain, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(value) -> str:
    text = "" if value is None else str(value)
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def deviation_line(d: dict) -> str:
    """``[severity] message (spec) frames 1,2,3``: one deviation on one line."""
    line = f"[{d['severity']}] {d['message']}"
    if d.get("spec"):
        line += f" ({d['spec']})"
    if d.get("frames"):
        line += " frames " + ",".join(map(str, d["frames"]))
    return line


def _steps(p: dict) -> str:
    """``id: status (why), ...`` for the steps whose status is not ``matched``."""
    return ", ".join(f"{s['id']}: {step_label(s)}" for s in p["steps"] if s["status"] != "matched")


def _system_out(p: dict) -> str:
    route = f"{p['from_system']} → {p['to_system']}" if p.get("to_system") else (p.get("from_system") or "")
    who = f"verdict {p['verdict']}, UE {p['ue']}, session {p['session']}" + (f", {route}" if route else "")
    lines = [f"{p['title']} ({p['spec']})" if p.get("spec") else p["title"], who,
             f"{clock(p['start'])}–{clock(p['end'])}"]
    for s in p["steps"]:
        frames = ",".join(map(str, s["frames"])) or "-"
        detail = f" ({s['detail']})" if s.get("detail") else ""
        lines.append(f"  {s['id']}: {step_label(s)}{detail}, frames {frames}")
    for name, value in p.get("kpis", {}).items():
        if isinstance(value, (int, float)):  # (step seconds, access times and frames are lists or maps)
            lines.append(f"{name.replace('_', ' ')} {value:.3f} s")
    for access in p.get("kpis", {}).get("access_times", ()):
        lines.append(f"access time {access['seconds']:.3f} s, frames {','.join(map(str, access['frames']))}")
    for d in p["deviations"]:
        lines.append(deviation_line(d))
    return "\n".join(lines) + "\n"


def _case_name(p: dict) -> str:
    return " ".join(x for x in (p["rule"], p["ue"], p.get("group") or p.get("peer")) if x)


def _testcase(suite: etree._Element, p: dict, stem: str, name: str) -> str:
    case = etree.SubElement(suite, "testcase", name=_x(name), classname=_x(f"mcxa.{stem}.{p['rule']}"),
                            time=_seconds(p["end"] - p["start"]))
    lines = "\n".join(deviation_line(d) for d in p["deviations"])
    if p["verdict"] == "deviation":
        failing = _steps(p) or ", ".join(sorted({d["step"] for d in p["deviations"]
                                                 if d["severity"] == "error" and d.get("step")}))
        el = etree.SubElement(case, "failure", message=_x(f"{p['rule']} deviates: {failing}"),
                              type="deviation")
        el.text = _x(lines + "\n")
    elif p["verdict"] == "incomplete":
        reasons = [d["message"] for d in p["deviations"]
                   if d["code"] in ("capture-ended", "step-unverifiable")]
        message = "; ".join(reasons) or f"cannot be judged: {_steps(p)}"
        el = etree.SubElement(case, "skipped", message=_x(f"incomplete: {message}"))
        el.text = _x(lines + "\n") if lines else None
    etree.SubElement(case, "system-out").text = _x(_system_out(p))
    return p["verdict"]


def _stem(path: str) -> str:
    """The capture's file name without extensions, with no dot left (a dot would split CI's grouping)."""
    name = PurePath(path).name
    for suffix in (".gz", ".pcapng", ".pcap", ".cap"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name.replace(".", "_") or "capture"


def junit_tree(doc: dict, timestamp: datetime | None = None) -> etree._Element:
    """The ``<testsuites>`` element of a contract report (``analyzer.report.report``)."""
    stamp = (timestamp or datetime.now()).strftime("%Y-%m-%dT%H:%M:%S")
    root = etree.Element("testsuites", name="mcxa")
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    for number, cap in enumerate(doc["captures"]):
        suite = etree.SubElement(root, "testsuite", name=_x(cap["file"]), id=str(number), timestamp=stamp,
                                 package="mcxa")
        stem = _stem(cap["file"])
        names: dict[str, int] = {}
        for p in cap["procedures"]:
            names[_case_name(p)] = names.get(_case_name(p), 0) + 1
        verdicts = []
        damage = unread_text(cap)
        if damage:  # CI must see a capture that was not read to its end, whatever its procedures say
            case = etree.SubElement(suite, "testcase", name="capture read to its end",
                                    classname=_x(f"mcxa.{stem}.capture"), time="0.000")
            etree.SubElement(case, "skipped", message=_x(f"incomplete: {damage}"))
            verdicts.append("incomplete")
        for p in cap["procedures"]:
            name = _case_name(p)
            if names[name] > 1:  # the same UE and group judged twice: tell the cases apart by their start
                name += f" @{clock(p['start'])}"
            verdicts.append(_testcase(suite, p, stem, name))
        stats = cap["stats"]
        out = etree.SubElement(suite, "system-out")
        out.text = _x(f"{stats['packets']} packets, {stats['sip_messages']} SIP, "
                      f"{stats['http_messages']} HTTP, {stats['events']} events, "
                      f"{stats['ue_sessions']} UE(s), "
                      f"{stats['decode_errors']} decode diagnostic(s)\n")
        time = sum(max(p["end"] - p["start"], 0.0) for p in cap["procedures"])
        counts = {"tests": len(verdicts), "failures": verdicts.count("deviation"), "errors": 0}
        suite.attrib.update({k: str(v) for k, v in counts.items()})
        suite.set("skipped", str(verdicts.count("incomplete")))
        suite.set("time", _seconds(time))
        for k, v in counts.items():
            totals[k] += v
        totals["time"] += time
    root.attrib.update({"tests": str(totals["tests"]), "failures": str(totals["failures"]),
                        "errors": str(totals["errors"]), "time": _seconds(totals["time"])})
    return root


def write_junit(doc: dict, out: IO[str], timestamp: datetime | None = None) -> None:
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(etree.tostring(junit_tree(doc, timestamp), encoding="unicode", pretty_print=True))
