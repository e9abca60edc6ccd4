"""``mcxa analyze --format junit``: valid JUnit XML (tests/schemas/junit.xsd, the Jenkins/Ant schema), one
testcase per procedure instance, verdicts as failure/skipped/pass, and the contract's exit codes."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.report.junit import junit_tree, write_junit

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
XSD = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "schemas" / "junit.xsd")))


def junit(capsys, *args) -> tuple[int, etree._Element, dict]:
    """Run ``analyze --format junit`` and ``--format json`` on the same input: (exit code, XML root, JSON)."""
    code = main(["analyze", *map(str, args), "--format", "junit", "-q"])
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = etree.fromstring(out.encode())
    XSD.assertValid(root)
    assert main(["analyze", *map(str, args), "--format", "json", "-q"]) == code
    return code, root, json.loads(capsys.readouterr().out)


def test_one_suite_per_capture_one_case_per_procedure_and_exit_1_on_deviation(capsys):
    captures = [SAMPLES / n for n in ("group-migration-affiliation-rejected.pcapng",
                                      "group-migration-truncated.pcapng", "group-migration-compliant.pcapng")]
    code, root, doc = junit(capsys, *captures)
    assert code == ExitCode.DEVIATION
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(c) for c in captures]
    for suite, cap, path in zip(suites, doc["captures"], captures, strict=True):
        cases = suite.findall("testcase")
        procs = cap["procedures"]
        assert len(cases) == len(procs) == int(suite.get("tests"))
        verdicts = [p["verdict"] for p in procs]
        failures, skipped = suite.findall("testcase/failure"), suite.findall("testcase/skipped")
        assert int(suite.get("failures")) == verdicts.count("deviation") == len(failures)
        assert int(suite.get("skipped")) == verdicts.count("incomplete") == len(skipped)
        assert suite.get("errors") == "0"
        datetime.strptime(suite.get("timestamp"), "%Y-%m-%dT%H:%M:%S")
        for case, p in zip(cases, procs, strict=True):
            assert case.get("classname") == f"mcxa.{path.name.removesuffix('.pcapng')}.{p['rule']}"
            assert case.get("name").startswith(f"{p['rule']} {p['ue']}")
            assert float(case.get("time")) == pytest.approx(p["end"] - p["start"], abs=1e-3)
            if p["verdict"] == "compliant":
                assert case.find("failure") is None and case.find("skipped") is None
    assert int(root.get("tests")) == sum(len(c["procedures"]) for c in doc["captures"])

    migration = root.find("testsuite[1]/testcase[@classname='mcxa.group-migration-affiliation-rejected"
                          ".group-call-migration']")
    assert migration.get("name") == "group-call-migration sip:alice@a.mcx.example sip:G1@a.mcx.example"
    failure = migration.find("failure")
    assert "affiliation: failed" in failure.get("message") and "late-entry: missing" in failure.get("message")
    lines = failure.text.strip().splitlines()
    assert lines[0].startswith("[error] affiliation:") and "403 Forbidden" in lines[0]
    assert "(TS 23.280 §10.8.3" in lines[0] and lines[0].endswith("frames 63,64")
    assert lines[1].startswith("[warning] late-entry:")

    truncated = root.find("testsuite[2]/testcase[@classname='mcxa.group-migration-truncated"
                          ".group-call-migration']")
    skipped = truncated.find("skipped")
    assert "late-entry" in skipped.get("message") and "capture ends" in skipped.get("message")


def test_incomplete_only_is_skipped_and_exit_3(capsys):
    code, root, _ = junit(capsys, SAMPLES / "group-migration-https-profile.pcapng")
    assert code == ExitCode.INCOMPLETE
    case = root.find("testsuite/testcase[@classname='mcxa.group-migration-https-profile"
                     ".group-call-migration']")
    assert "only encrypted traffic" in case.find("skipped").get("message")
    assert root.find(".//failure") is None


def test_compliant_capture_passes_with_exit_0(capsys, tmp_path):
    out = tmp_path / "junit.xml"
    sample = SAMPLES / "group-migration-compliant.pcapng"
    assert main(["analyze", str(sample), "--format", "junit", "-o", str(out)]) == ExitCode.OK
    assert capsys.readouterr().out == ""
    root = etree.parse(str(out)).getroot()
    XSD.assertValid(root)
    assert root.find(".//failure") is None and root.find(".//skipped") is None
    assert int(root.get("tests")) >= 1 and root.get("failures") == "0"


def test_capture_without_procedures_is_an_empty_suite(capsys, tmp_path):
    from tests.packets import udp_frame, write_pcap

    empty = tmp_path / "nothing.v2.pcap"
    write_pcap(empty, [udp_frame("10.0.0.1", "10.0.0.2", 4000, 4000, b"media")])
    code, root, _ = junit(capsys, empty)
    assert code == ExitCode.OK
    [suite] = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == (str(empty), "0", "0")
    assert suite.findall("testcase") == []


def test_text_from_the_capture_is_escaped_and_made_xml_safe():
    hostile = "sip:<x>&\"y\"]]>\x00\x1b\ud800@evil"
    step = {"id": "affiliation", "title": "t", "status": "failed", "frames": [3], "time": 1.0, "event": None,
            "spec": None}
    proc = {"rule": "group-call-migration", "title": hostile, "kind": "migration", "spec": None,
            "verdict": "deviation", "ue": hostile, "ue_aliases": [], "session": "ue1", "service": None,
            "group": hostile, "peer": None, "from_system": hostile, "to_system": None, "start": 1.0,
            "end": 2.5, "anchor": {}, "steps": [step],
            "deviations": [{"code": "step-failed", "step": "affiliation", "severity": "error",
                            "message": hostile, "spec": hostile, "frames": [3]}], "kpis": {}}
    cap = {"file": f"dir/{hostile}.pcap", "stats": {"packets": 1, "sip_messages": 1, "http_messages": 0,
                                                     "decode_errors": 0, "events": 1, "ue_sessions": 1},
           "procedures": [proc], "diagnostics": []}
    import io

    out = io.StringIO()
    write_junit({"captures": [cap]}, out, datetime(2025, 1, 2, 3, 4, 5))
    root = etree.fromstring(out.getvalue().encode())
    XSD.assertValid(root)
    case = root.find("testsuite/testcase")
    safe = "sip:<x>&\"y\"]]>\\x00\\x1b\\xd800@evil"
    assert case.get("name") == f"group-call-migration {safe} {safe}"
    assert case.find("failure").text.startswith(f"[error] {safe} ({safe}) frames 3")
    assert root.find("testsuite").get("timestamp") == "2025-01-02T03:04:05"
    assert junit_tree({"captures": []}).get("tests") == "0"
