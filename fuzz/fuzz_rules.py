"""Harness: rule files (the strict YAML loader and ``load_rule``), and every rule that loads is judged
on a bundled capture and rendered (text, JUnit, HTML), so odd but valid rules reach the matcher and the
report.
``InputError`` is the documented error of a rule file."""

from __future__ import annotations

import io
import os
import tempfile

from fuzz import harness
from fuzz.fuzz_pcap import _scratch

#: The capture a loaded rule is judged on.
CAPTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "sample_captures", "group-migration-compliant.pcapng")


def load():
    from analyzer.base.errors import InputError
    from analyzer.engines import DecodeOptions
    from analyzer.meaning.analysis import analyse_capture
    from analyzer.report import document as report
    from analyzer.report.html import render_html
    from analyzer.report.junit import write_junit
    from analyzer.report.text import write_text
    from analyzer.rules import load_rule
    from analyzer.rules.explain import explain
    from analyzer.rules.judge import judge

    analysis = analyse_capture(CAPTURE, "dpkt", DecodeOptions(workers=1))
    fd, path = tempfile.mkstemp(prefix="mcxa-fuzz-", suffix=".yaml", dir=_scratch())
    os.close(fd)

    def target(data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)
        try:
            rule = load_rule(path)
        except InputError:
            return
        explain(rule)
        part = report.capture_report(analysis, judge(analysis, [rule]))
        doc = report.report([part], [rule])
        write_text(doc, io.StringIO())
        write_junit(doc, io.StringIO())
        render_html(doc)

    return target


if __name__ == "__main__":
    harness.main(load)
