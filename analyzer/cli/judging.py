"""The commands that judge: ``analyze`` (one report over the captures given), ``batch`` (many captures in
parallel, resumable) and ``replay`` (a live feed and expected-verdict drift checks for CI)."""

from __future__ import annotations

import os
from functools import partial

import click

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.exitcodes import ExitCode
from analyzer.capture import open_capture, rereadable
from analyzer.cli.options import (
    analyse,
    analysis_options,
    color_option,
    colour_wanted,
    current_limits,
    current_workers,
    end_progress,
    jobs_option,
    output_path,
    phase,
    report_diagnostics,
    rules_options,
    text_output,
    time_format_option,
    write,
)
from analyzer.engines import DecodeOptions

ANALYZE_FORMATS = ("text", "json", "junit", "html")
#: The HTML report's ladders take their messages from the analysis when the capture is smaller than this
#: (or cannot be read twice: standard input, a pipe); a bigger one is decoded again for the few sessions
#: drawn, rather than keeping every message of the capture in memory (a 2 000-UE core capture of 164 MB:
#: 935 MB peak kept, against the analysis's 226 MB).
KEEP_MESSAGES_BELOW = 32 << 20


def _keep_messages(capture: str) -> bool:
    return not rereadable(capture) or os.path.getsize(capture) < KEEP_MESSAGES_BELOW


def _directory(ctx, param, value: str | None) -> str | None:
    """Fail before decoding when the directory cannot be created or written."""
    if value:
        from analyzer.cli.options import output_path

        output_path(ctx, param, os.path.join(value, "x") if os.path.isdir(value) else value)
    return value


def _write_pcaps(capture: str, procedures: list[dict], ladders: list, directory: str, taken: set[str],
                 quiet: bool) -> None:
    from analyzer.report.wireshark import write_procedure_captures

    by_session = {ladder.session: ladder for ladder in ladders}
    for path, count, p in write_procedure_captures(capture, procedures, by_session, directory, taken):
        if not quiet:
            click.echo(f"mcxa: {path}: {count} packets of {p['rule']} ({p['session']}, {p['verdict']})",
                       err=True)



@click.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(ANALYZE_FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              help="Write to this file instead of stdout.")
@click.option("--ladders", "ladders_mode", type=click.Choice(["auto", "all", "none"]), default="auto",
              show_default=True, help="--format html: draw the ladders of the UEs in a migration or a "
                                      "deviation (auto), of every UE (all), or of none.")
@click.option("--pcap-dir", type=click.Path(file_okay=False), callback=_directory, metavar="DIR",
              help="Also write, per procedure with a deviation, its packets to "
                   "DIR/<capture>-<ue>-<rule>.pcapng, with frame comments naming each message, step and "
                   "deviation.")
@rules_options
@analysis_options
@jobs_option
@time_format_option
@color_option
def analyze(captures, fmt, output, ladders_mode, pcap_dir, rules_dir, window, systems_file, identities_file,
            migration_reason, engine, sip_ports, quiet):
    """Judge the TS 23.280 §10.16 migrations in each CAPTURE against the rules: per UE and per group or
    private call, every step's status and every deviation with its frames. Exit code 0 compliant, 1
    deviation, 3 incomplete only."""
    from analyzer.report import document as report
    from analyzer.report.text import write_text
    from analyzer.rules import load_rules

    if pcap_dir and "-" in captures:
        raise click.BadParameter("a capture from standard input cannot be read again for its frames: save it "
                                 "to a file first", param_hint="--pcap-dir")
    rules = load_rules(rules_dir)
    if fmt != "text":  # documents read alike on every machine: UTC dates (times.UTC_DATE)
        click.get_current_context().meta.pop("mcxa.time_format", None)
    read = partial(analyse, engine=engine, sip_ports=sip_ports, systems_file=systems_file,
                   identities_file=identities_file, migration_reason=migration_reason, quiet=quiet)
    judge_each = partial(_judge_each, captures, read, rules, window, fmt, ladders_mode, pcap_dir, quiet,
                         (engine, sip_ports))
    if fmt == "json":  # written a capture at a time, as each is judged (the others need the whole document)
        for capture in captures:  # what is no capture fails before any of the document is written (a pipe
            if capture != "-" and (rereadable(capture) or not os.path.exists(capture)):  # is read once)
                open_capture(capture, Diagnostics()).close()
        with text_output(output) as out:
            streamed = report.JsonReport(out, rules)
            judge_each(streamed)
            end_progress()
            code = streamed.close()
        raise click.exceptions.Exit(code)
    parts, ladders = judge_each(None)
    doc = report.report(parts, rules)
    writer = partial(write_text, color=colour_wanted(output)) if fmt == "text" else report.write_json
    if fmt == "junit":
        from analyzer.report.junit import write_junit as writer
    if fmt == "html":
        from analyzer.report.html import write_html
        writer = partial(write_html, ladders=ladders, mode=ladders_mode)
    write(writer, False, output, doc)
    raise click.exceptions.Exit(report.exit_code(doc))


def _judge_each(captures, read, rules, window, fmt, ladders_mode, pcap_dir, quiet, decoding,
                streamed) -> tuple[list[dict], dict] | None:
    """Analyse (``read``: ``options.analyse`` with the command's options) and judge each capture; write
    its part to ``streamed`` (a ``JsonReport``), else return the parts and, for HTML, the ladders of each
    capture. ``decoding``: (engine, SIP ports) to decode a capture again for its ladders."""
    from analyzer.report import document as report
    from analyzer.rules.judge import judge

    parts = []
    ladders: dict = {}  # --format html: capture → the ladders of its UE sessions
    taken: set[str] = set()  # --pcap-dir: the file names written
    for capture in captures:
        draw = fmt == "html" and ladders_mode != "none"
        # a JSON report only judges (unless --pcap-dir reads the sessions after): each session is judged
        # and let go as soon as its last event is read
        streaming = streamed is not None and not pcap_dir
        analysis = read(capture, keep_messages=draw and _keep_messages(capture), streamed=streaming)
        phase("rules")
        if streamed is not None:
            judged = report.Procedures(analysis, rules, window)
        else:
            judged = judge(analysis, rules, window)
        phase("report")
        part = None if streamed is not None else report.capture_report(analysis, judged)
        if draw or pcap_dir:
            from analyzer.report.html import shown_sessions
            from analyzer.report.ladder_batch import capture_ladders
            procedures = part["procedures"] if part else list(judged)
            wanted = {p["session"] for p in procedures if p["verdict"] == "deviation"} if pcap_dir else set()
            picked = shown_sessions(procedures, ladders_mode) if draw else set()
            engine, sip_ports = decoding
            drawn = capture_ladders(analysis, procedures, engine,
                                    DecodeOptions(sip_ports=sip_ports, limits=current_limits(),
                                                  workers=current_workers()),
                                    None if picked is None else wanted | picked)
            if draw:
                ladders[capture] = [x for x in drawn if picked is None or x.session in picked]
            if pcap_dir:
                _write_pcaps(capture, procedures, drawn, pcap_dir, taken, quiet)
        if not quiet and fmt == "text":
            report_diagnostics(capture, analysis.diagnostics)
        if streamed is not None:
            end_progress()
            streamed.add(analysis, judged)
        else:
            parts.append(part)
    return None if streamed is not None else (parts, ladders)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for reports/, state.json and the procedures/deviations/captures tables.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Captures analysed at once (default: one per "
                                                               "core).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: a process pool on this machine; dask: a dask.distributed cluster.")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786 (default with "
                                                     "--executor dask: a local cluster).")
@click.option("--force", is_flag=True, help="Analyse again even captures whose content and rule set are "
                                            "unchanged since the last run into --out.")
@rules_options
@analysis_options
def batch(paths, out_dir, jobs, executor, scheduler, force, rules_dir, window, systems_file, identities_file,
          migration_reason, engine, sip_ports, quiet):
    """Judge every capture in PATHS (files, directories searched recursively, globs) in parallel: one JSON
    report per capture and Parquet/CSV tables in --out; unchanged captures are skipped on a re-run; the
    summary names every capture that could not be read, or was read only partly.

    \b
    Exit code over all captures:
      1  a deviation in any capture judged
      2  else, any capture could not be read at all (or none could be)
      3  else, any procedure incomplete or any capture read only partly
      0  otherwise"""
    from analyzer.run.batch import run_batch
    from analyzer.run.batch_tables import error_lines, write_summary

    outcome = run_batch(paths, out_dir, jobs=jobs, executor=executor, scheduler=scheduler, force=force,
                        rules_dir=rules_dir, window=window, engine=engine, sip_ports=sip_ports,
                        systems_file=systems_file, identities_file=identities_file,
                        migration_reason=migration_reason, limits=current_limits())
    write_summary(outcome, click.get_text_stream("stdout"))
    for line in error_lines(outcome):
        click.echo(f"mcxa: {line}", err=True)
    raise click.exceptions.Exit(outcome.exit_code)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--expect", "expect_file", type=click.Path(dir_okay=False),
              help="YAML of the expected migration procedures per capture (the shape of "
                   "sample_captures/expected.yaml); any drift exits 1.")
@click.option("--speed", default="max", show_default=True, metavar="N|max",
              help="Print at N× capture time (sleeps capped at 5 s); max: no sleeping.")
@click.option("--format", "fmt", type=click.Choice(["text", "junit"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              help="Write to this file instead of stdout.")
@rules_options
@analysis_options
@time_format_option
def replay(paths, expect_file, speed, fmt, output, rules_dir, window, systems_file, identities_file,
           migration_reason, engine, sip_ports, quiet):
    """Replay each capture in PATHS (files, or directories searched for *.pcap, *.pcapng, *.gz) as a live
    feed: its events in time order and each verdict when its last step is seen; a capture whose reading
    stopped early says so first. With --expect, list every drift from the expected procedures (a capture
    not read to its end is one unless its entry says 'reading: incomplete') and exit 1 on any, else 0; a
    bad expect file is one FILE:LINE line and exit 2 before any output. Without --expect, exit codes as
    analyze (3 for a capture read only partly when nothing deviates)."""
    from analyzer.report import document as report
    from analyzer.rules import load_rules
    from analyzer.rules.judge import judge
    from analyzer.run import replay as rp

    try:
        pace = rp.parse_speed(speed)
    except ValueError:
        raise click.BadParameter(f"{speed!r} is not a positive number or 'max'",
                                 param_hint="--speed") from None
    captures, directories = rp.expand_paths(paths)
    if fmt != "text":  # the test report reads alike on every machine: UTC dates (times.UTC_DATE)
        click.get_current_context().meta.pop("mcxa.time_format", None)
    rules = load_rules(rules_dir)
    expectations = rp.Expectations.load(expect_file, rules) if expect_file else None
    out = open(output, "w", encoding="utf-8") if output else click.get_text_stream("stdout")  # noqa: SIM115
    # junit is the only output, wherever it goes: a feed beside it would be one more thing to parse away
    feed = None if fmt == "junit" else out
    try:
        parts, results, replayed = [], {}, set()
        for capture in captures:
            analysis = analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason,
                                quiet)
            phase("rules")
            parts.append(report.capture_report(analysis, judge(analysis, rules, window)))
            end_progress()
            if feed is not None:
                feed.write("".join(line + "\n" for line in rp.feed_header(capture, parts[-1])))
                rp.Pacer(pace).play(rp.timeline(analysis, parts[-1]["procedures"]), feed)
            if expectations is not None:
                key = expectations.key_of(capture)
                replayed.add(key)
                found = rp.capture_drifts(expectations, key, parts[-1])
                label = expectations.label(capture)
                results.setdefault(label, []).extend(found)
                for line in rp.drift_lines({label: found}):
                    if feed is not None:
                        feed.write(line + "\n")
            if not quiet and fmt == "text":
                report_diagnostics(capture, analysis.diagnostics)
        if expectations is None:
            if fmt == "junit":
                from analyzer.report.junit import write_junit
                write_junit(report.report(parts, rules), out)
            raise click.exceptions.Exit(report.exit_code(report.report(parts, rules)))
        for key in expectations.not_replayed(replayed, directories):
            results[key] = ["not replayed (listed in the expect file, not found under the given paths)"]
            if feed is not None:
                feed.write(f"DRIFT {key}: {results[key][0]}\n")
        total = sum(map(len, results.values()))
        if fmt == "junit":
            rp.write_junit(results, out)
            if not quiet:  # the CI log still tells what the test report holds
                click.echo(f"mcxa: {len(captures)} captures, {total} drifts", err=True)
        if feed is not None:
            feed.write(f"{len(captures)} captures, {total} drifts\n")
    finally:
        if output:
            out.close()
    raise click.exceptions.Exit(ExitCode.DEVIATION if total else ExitCode.OK)
