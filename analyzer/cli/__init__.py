"""The ``mcxa`` command: a thin click layer over the stages; all errors end as one line and an exit code."""

from __future__ import annotations

import gc
import json
import os
import re
import sys

import click

from analyzer import __version__
from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import McxaError
from analyzer.base.exitcodes import ExitCode
from analyzer.engines import DecodeOptions, DecodeStats, get_engine
from analyzer.meaning.events import KINDS, MIGRATION_REASON
from analyzer.messages.records import Message
from analyzer.messages.select import MessageFilter
from analyzer.report.messages import WRITERS

# The meaning stages (events, sessions, rules, report) are imported by the commands that use them, so
# `mcxa messages` on a big capture does not pay for them at start-up.
EVENT_FORMATS = ("table", "jsonl", "csv", "parquet")
SESSION_FORMATS = ("text", "json")

_DIAGNOSTICS_SHOWN = 20


def _output_path(ctx, param, value: str | None) -> str | None:
    """Fail before decoding, not after, when the output file cannot be created."""
    if value and value != "-":
        parent = os.path.dirname(os.path.abspath(value))
        if not os.path.isdir(parent):
            raise click.BadParameter(f"directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise click.BadParameter(f"directory {parent} is not writable")
    return value


def _ports(ctx, param, value: str | None) -> frozenset[int]:
    ports = {5060, 5061}
    for text in (value or "").split(","):
        if not text.strip():
            continue
        if not text.strip().isdigit() or not 0 < int(text) < 65536:
            raise click.BadParameter(f"{text.strip()!r} is not a port number")
        ports.add(int(text))
    return frozenset(ports)


def _keylog(ctx, param, value: str | None) -> None:
    ctx.meta["mcxa.tls_keylog"] = value


def _engine(ctx, param, value: str) -> str:
    from analyzer.engines import resolve_engine

    return resolve_engine(value, ctx.meta.get("mcxa.tls_keylog"), lambda line: click.echo(line, err=True))


def engine_option(command):
    """``--engine auto|dpkt|tshark`` and ``--tls-keylog``; the value is the name ``get_engine`` takes."""
    command = click.option("--engine", type=click.Choice(["auto", "dpkt", "tshark"]), default="auto",
                           show_default=True, callback=_engine,
                           help="Decoding engine: auto is dpkt, or tshark with --tls-keylog.")(command)
    return click.option("--tls-keylog", type=click.Path(exists=True, dir_okay=False), is_eager=True,
                        expose_value=False, callback=_keylog, metavar="FILE",
                        help="TLS key log (SSLKEYLOGFILE format): tshark decrypts HTTPS into HTTP "
                             "messages (implies --engine tshark).")(command)


sip_ports_option = click.option("--sip-ports", callback=_ports, metavar="PORT[,PORT...]",
                                help="Extra UDP ports whose non-SIP datagrams are reported as malformed SIP "
                                     "(SIP is recognised by its start line on any port regardless).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No diagnostics summary on stderr.")


def _limit(ctx, param, values: tuple[str, ...]) -> None:
    from analyzer.base.errors import UsageError
    from analyzer.base.limits import DEFAULT

    try:
        ctx.meta["mcxa.limits"] = DEFAULT.with_overrides(values)
    except UsageError as exc:
        raise click.BadParameter(exc.reason.removeprefix("--limit ")) from None


def _limits():
    """The caps this command runs with (``--limit``), as ``analyzer.base.limits.Limits``."""
    from analyzer.base.limits import DEFAULT

    return click.get_current_context().meta.get("mcxa.limits", DEFAULT)


limit_option = click.option("--limit", multiple=True, metavar="NAME=N", expose_value=False, callback=_limit,
                            help="Raise or lower one of the caps on what is kept in memory (repeatable), "
                                 "e.g. --limit tcp_streams=200000; the README lists them all.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcxa")
def cli():
    """mcxa: decode MC (MCPTT, MCVideo, MCData) signalling from captures and judge TS 23.280 §10.16
    migrations."""


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(list(WRITERS)), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=_output_path,
              help="Write to this file instead of stdout (required for parquet).")
@click.option("--method", "methods", multiple=True, metavar="METHOD",
              help="Only this SIP/HTTP method (repeatable); responses match by their CSeq method.")
@click.option("--call-id", help="Only messages with this SIP Call-ID.")
@click.option("--user", help="Only messages naming this user (substring of Request-URI, From, To, "
                              "P-Asserted-Identity, Contact).")
@engine_option
@sip_ports_option
@limit_option
@quiet_option
def messages(capture, fmt, output, methods, call_id, user, engine, sip_ports, quiet):
    """List every SIP and HTTP message in CAPTURE (pcap, pcapng, optionally gzip-compressed); then, on
    stderr, where every packet went and the diagnostics. Exit code 0, or 3 (incomplete) when reading
    stopped before the end of a damaged file: the messages before the damage are listed."""
    writer, needs_path = WRITERS[fmt]
    _check_output(fmt, needs_path, output)
    with _progress(capture, quiet, streams_to_stdout=not output) as progress:
        options = DecodeOptions(sip_ports=sip_ports, progress=progress, limits=_limits())
        decoded = get_engine(engine)(capture, options)
        keep = MessageFilter(frozenset(m.upper() for m in methods), call_id, user)
        selected = (item for item in decoded.items if isinstance(item, Message) and keep(item))
        _write(writer, needs_path, output, selected)
    _finish(capture, decoded.diagnostics, decoded.stats, quiet)


def _progress(capture: str, quiet: bool, streams_to_stdout: bool = False):
    """``with _progress(...) as progress``: a transient bar on stderr while CAPTURE is read, on a terminal
    only and after 1 s; ``progress`` is None (no cost) otherwise. See ``analyzer.cli.progress``."""
    from analyzer.cli.progress import decode_progress

    return decode_progress(capture, quiet, streams_to_stdout)


def _check_output(fmt: str, needs_path: bool, output: str | None) -> None:
    if needs_path and not output:
        raise click.UsageError(f"--format {fmt} writes a binary file: give it with --output/-o")


def _write(writer, needs_path: bool, output: str | None, *args) -> None:
    """Run a renderer towards a path (binary formats), a text file, or stdout."""
    if needs_path:
        writer(*args[:1], output, *args[1:])
    elif output:
        with open(output, "w", encoding="utf-8") as out:
            writer(*args[:1], out, *args[1:])
    else:
        writer(*args[:1], click.get_text_stream("stdout"), *args[1:])


def meaning_options(command):
    """Options of every command that interprets traffic (events, sessions, analyze)."""
    options = [
        click.option("--systems", "systems_file", type=click.Path(dir_okay=False),
                     help="YAML naming MC systems and their domains, hosts, address ranges (default: "
                          "inferred from SIP domains and server addresses)."),
        click.option("--identities", "identities_file", type=click.Path(dir_okay=False),
                     help="YAML 'same: [[id, id...], ...]': identities of one user the wire does not link."),
        click.option("--migration-reason", default=MIGRATION_REASON.pattern, show_default=True,
                     help="Regular expression a BYE's Reason text must match to indicate release due to "
                          "migration (no stage-3 encoding is confirmed; adjust to your vendor)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def analysis_options(command):
    """The options of every command that judges or interprets a capture: meaning, engine, ports, quiet."""
    for option in (quiet_option, limit_option, sip_ports_option, engine_option, meaning_options):
        command = option(command)
    return command


def rules_options(command):
    """The options of every command that judges: which rules, and a window overriding theirs."""
    window = click.option("--window", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                          help="Time window for every step, overriding the rules' own (default 30 s).")
    rules = click.option("--rules", "rules_dir", type=click.Path(),
                         help="Rule directory or file (default: the shipped rules/).")
    return rules(window(command))


def _analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason, quiet=False,
             keep_messages=False):
    try:
        pattern = re.compile(migration_reason, re.I)
    except re.error as exc:
        raise click.BadParameter(f"not a regular expression: {exc}",
                                 param_hint="--migration-reason") from None
    from analyzer.meaning.analysis import MeaningOptions, analyse_capture
    from analyzer.meaning.sessions import load_identity_map
    from analyzer.meaning.systems import SystemMap

    meaning = MeaningOptions(
        systems=SystemMap.from_file(systems_file) if systems_file else None,
        identity_map=load_identity_map(identities_file) if identities_file else [],
        migration_reason=pattern, keep_messages=keep_messages, limits=_limits())
    with _progress(capture, quiet) as progress:
        options = DecodeOptions(sip_ports=sip_ports, progress=progress, limits=_limits())
        return analyse_capture(capture, engine, options, meaning)


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(EVENT_FORMATS), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=_output_path,
              help="Write to this file instead of stdout (required for parquet).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(list(KINDS)),
              help="Only events of this kind (repeatable).")
@click.option("--ue", help="Only events of this UE: its session id (ue1...) or a substring of an identity.")
@analysis_options
def events(capture, fmt, output, kinds, ue, systems_file, identities_file, migration_reason, engine,
           sip_ports, quiet):
    """List the MC events in CAPTURE: registrations, affiliations, profile retrievals, calls... with
    the UE session each belongs to."""
    from analyzer.report.events import WRITERS as EVENT_WRITERS

    writer, needs_path = EVENT_WRITERS[fmt]
    _check_output(fmt, needs_path, output)
    analysis = _analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason, quiet)

    def keep(row: dict) -> bool:
        if kinds and row["kind"] not in kinds:
            return False
        return not ue or row["ue"] == ue or any(
            ue.lower() in (row[f] or "").lower() for f in ("identity", "impu", "instance", "client_id"))

    _write(writer, needs_path, output, analysis, keep)
    _finish(capture, analysis.diagnostics, analysis.stats, quiet)


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(SESSION_FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=_output_path,
              help="Write to this file instead of stdout.")
@analysis_options
def sessions(capture, fmt, output, systems_file, identities_file, migration_reason, engine, sip_ports, quiet):
    """Per UE in CAPTURE: its identities and why they are linked, the MC systems it used, its
    registration/affiliation timeline and calls."""
    analysis = _analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason, quiet)
    from analyzer.report.sessions import WRITERS as SESSION_WRITERS

    _write(SESSION_WRITERS[fmt], False, output, analysis)
    _finish(capture, analysis.diagnostics, analysis.stats, quiet)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, writable=True),
              callback=_output_path, help="The pcapng file to write.")
@quiet_option
def synth(scenario, output, quiet):
    """Synthesise the capture a SCENARIO (YAML) describes and write it as pcapng to OUTPUT."""
    from analyzer.synth import load_scenario, synthesize, write_pcapng

    result = synthesize(load_scenario(scenario))
    write_pcapng(result, output)
    if not quiet:
        err = click.get_text_stream("stderr")
        err.write(f"mcxa: {output}: {len(result.packets)} packets, {len(result.declared)} SIP/HTTP "
                  f"messages, {len(result.hellos)} TLS ClientHello(s)\n")
        for note in result.notes:
            err.write(f"  note: {note}\n")


ANALYZE_FORMATS = ("text", "json", "junit", "html")


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(ANALYZE_FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=_output_path,
              help="Write to this file instead of stdout.")
@rules_options
@analysis_options
def analyze(captures, fmt, output, rules_dir, window, systems_file, identities_file, migration_reason, engine,
            sip_ports, quiet):
    """Judge the TS 23.280 §10.16 migrations in each CAPTURE against the rules: per UE and per group or
    private call, every step's status and every deviation with its frames. Exit code 0 compliant, 1
    deviation, 3 incomplete only."""
    from analyzer.report import document as report
    from analyzer.rules import load_rules

    rules = load_rules(rules_dir)
    parts = []
    ladders: dict = {}  # --format html: capture → the ladders of its UE sessions
    for capture in captures:
        analysis = _analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason,
                            quiet, keep_messages=fmt == "html")
        parts.append(report.capture_report(analysis, report.judge(analysis, rules, window)))
        if fmt == "html":
            from analyzer.report.ladder import capture_ladders
            ladders[capture] = capture_ladders(analysis, parts[-1]["procedures"], engine,
                                               DecodeOptions(sip_ports=sip_ports, limits=_limits()))
        if not quiet and fmt == "text":
            report_diagnostics(capture, analysis.diagnostics)
    doc = report.report(parts, rules)
    writer = report.write_text if fmt == "text" else \
        (lambda d, out: out.write(json.dumps(d, indent=2, ensure_ascii=False) + "\n"))
    if fmt == "junit":
        from analyzer.report.junit import write_junit as writer
    if fmt == "html":
        from functools import partial

        from analyzer.report.html import write_html
        writer = partial(write_html, ladders=ladders)
    _write(writer, False, output, doc)
    raise click.exceptions.Exit(report.exit_code(doc))


@cli.command()
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
                        migration_reason=migration_reason, limits=_limits())
    write_summary(outcome, click.get_text_stream("stdout"))
    for line in error_lines(outcome):
        click.echo(f"mcxa: {line}", err=True)
    raise click.exceptions.Exit(outcome.exit_code)


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--ue", help="The UE session: its id (ue1...) or a substring of an identity (default: the "
                           "first with a procedure instance).")
@click.option("--call-id", help="Only the messages of this SIP Call-ID.")
@click.option("--format", "fmt", type=click.Choice(["text", "svg"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=_output_path,
              help="Write to this file instead of stdout.")
@analysis_options
def flow(capture, ue, call_id, fmt, output, systems_file, identities_file, migration_reason, engine,
         sip_ports, quiet):
    """Ladder diagram of one UE session in CAPTURE: the UE and the servers of each MC system, its SIP/HTTP
    messages in time order, and the migration steps they are evidence of (deviations in red)."""
    from analyzer.report import document as report
    from analyzer.report import ladder as ladders
    from analyzer.rules import load_rules

    analysis = _analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason, quiet,
                        keep_messages=True)
    procedures = report.capture_report(analysis, report.judge(analysis, load_rules()))["procedures"]
    session = ladders.pick_session(analysis, procedures, ue, call_id)
    if session is None:
        from analyzer.base.errors import UsageError

        if ue or call_id:
            wanted = f"--ue {ue}" if ue else f"--call-id {call_id}"
            raise UsageError(f"no UE session matches {wanted} (see 'mcxa sessions {capture}')", capture)
        raise UsageError("no UE session: no MC signalling (registration, affiliation, MC calls...) was "
                         f"recognised (see 'mcxa messages {capture}')", capture)
    options = DecodeOptions(sip_ports=sip_ports, limits=_limits())
    messages = ladders.collect_messages(analysis, engine, options)
    diagram = ladders.build_ladder(analysis, session, messages, procedures, call_id)
    if analysis.stats.stopped is not None and not quiet:  # said before the drawing, not after it
        from analyzer.report.accounting import stopped_text

        click.echo(f"mcxa: {capture}: {stopped_text(analysis.stats)}", err=True)
    _write(ladders.WRITERS[fmt], False, output, diagram)
    _finish(capture, analysis.diagnostics, analysis.stats, quiet)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--expect", "expect_file", type=click.Path(dir_okay=False),
              help="YAML of the expected migration procedures per capture (the shape of "
                   "sample_captures/expected.yaml); any drift exits 1.")
@click.option("--speed", default="max", show_default=True, metavar="N|max",
              help="Print at N× capture time (sleeps capped at 5 s); max: no sleeping.")
@click.option("--format", "fmt", type=click.Choice(["text", "junit"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=_output_path,
              help="Write to this file instead of stdout.")
@rules_options
@analysis_options
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
    from analyzer.run import replay as rp

    try:
        pace = rp.parse_speed(speed)
    except ValueError:
        raise click.BadParameter(f"{speed!r} is not a positive number or 'max'",
                                 param_hint="--speed") from None
    captures, directories = rp.expand_paths(paths)
    rules = load_rules(rules_dir)
    expectations = rp.Expectations.load(expect_file, rules) if expect_file else None
    out = open(output, "w", encoding="utf-8") if output else click.get_text_stream("stdout")  # noqa: SIM115
    # junit goes to OUTPUT; the feed then goes to stdout when OUTPUT is a file, nowhere when it is stdout
    feed = (click.get_text_stream("stdout") if output else None) if fmt == "junit" else out
    try:
        parts, results, replayed = [], {}, set()
        for capture in captures:
            analysis = _analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason,
                                quiet)
            parts.append(report.capture_report(analysis, report.judge(analysis, rules, window)))
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
        if feed is not None:
            feed.write(f"{len(captures)} captures, {total} drifts\n")
    finally:
        if output:
            out.close()
    raise click.exceptions.Exit(ExitCode.DEVIATION if total else ExitCode.OK)


@cli.group()
def rules():
    """Check and explain rule files."""


@rules.command("lint")
@click.argument("paths", nargs=-1, type=click.Path())
def rules_lint(paths):
    """Validate rule files (default: the shipped rules/); one line per problem, exit 2 on any."""
    from analyzer.rules import load_rules

    loaded = [r for path in (paths or (None,)) for r in load_rules(path)]
    for rule in loaded:
        steps = f"{len(rule.steps)} step{'s' if len(rule.steps) != 1 else ''}"
        click.echo(f"ok  {rule.id:<28} {steps:<8} {rule.path}")


@rules.command("explain")
@click.argument("rule")
@click.option("--rules", "rules_dir", type=click.Path(), help="Rule directory (default: the shipped rules/).")
def rules_explain(rule, rules_dir):
    """Print RULE (an id or a file) as numbered steps in plain words."""
    from analyzer.rules import load_rules
    from analyzer.rules.explain import explain

    found = [r for r in load_rules(rule if os.path.isfile(rule) else rules_dir) if r.id == rule
             or os.path.isfile(rule)]
    if not found:
        known = ", ".join(r.id for r in load_rules(rules_dir))
        raise click.BadParameter(f"no rule '{rule}' (known: {known})", param_hint="RULE")
    click.echo(explain(found[0]))


def report_diagnostics(capture: str, diagnostics: Diagnostics, stats: DecodeStats | None = None) -> None:
    """A short human summary on stderr. With the decode's ``stats``: where reading stopped (first), where
    every packet went, the TLS flows not read; then diagnostic counts per code, and the first few with
    their frames."""
    err = click.get_text_stream("stderr")
    if stats is not None:
        from analyzer.report.accounting import summary_lines

        for line in summary_lines(stats):
            err.write(f"mcxa: {capture}: {line}\n")
    if not diagnostics.total:
        return
    counts = ", ".join(f"{code} ×{n}" for code, n in diagnostics.summary().items())
    err.write(f"mcxa: {capture}: {diagnostics.total} diagnostic(s): {counts}\n")
    for d in diagnostics.records[:_DIAGNOSTICS_SHOWN]:
        frames = ",".join(map(str, d.frames[:8])) + ("…" if len(d.frames) > 8 else "")
        where = f" frame{'s' if len(d.frames) > 1 else ''} {frames}:" if d.frames else ""
        err.write(f"  [{d.code}]{where} {d.message}\n")
    if len(diagnostics.records) > _DIAGNOSTICS_SHOWN:
        err.write(f"  … {diagnostics.total - _DIAGNOSTICS_SHOWN} more\n")


def _finish(capture: str, diagnostics: Diagnostics, stats: DecodeStats, quiet: bool) -> None:
    """End of a command that lists what one capture holds: the summary on stderr (unless ``quiet``), and
    exit 3 (incomplete) when reading stopped before the end of the file."""
    if not quiet:
        report_diagnostics(capture, diagnostics, stats)
    if stats.stopped is not None:
        raise click.exceptions.Exit(ExitCode.INCOMPLETE)


def main(argv=None) -> int:
    """Entry point: click handles usage errors (exit 2); our input errors print one line (exit 2)."""
    # Millions of short-lived, acyclic records: collecting every 700 allocations wastes ~10 % of the run.
    gc.set_threshold(20_000, 20, 20)
    try:
        # Without standalone mode click returns a command's Exit code instead of raising it.
        code = cli.main(args=argv, prog_name="mcxa", standalone_mode=False)
        if isinstance(code, int):
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message(), err=True)
        return ExitCode.BAD_INPUT
    except click.UsageError as exc:  # one line, with where to look, instead of click's three
        command = exc.ctx.command_path if exc.ctx else "mcxa"
        click.echo(f"{command}: {exc.format_message()} (see '{command} --help')", err=True)
        return ExitCode.BAD_INPUT
    except click.ClickException as exc:
        click.echo(f"mcxa: {exc.format_message()}", err=True)
        return ExitCode.BAD_INPUT
    except click.Abort:
        click.echo("mcxa: aborted", err=True)
        return ExitCode.BAD_INPUT
    except McxaError as exc:
        click.echo(f"mcxa: {exc}", err=True)
        return ExitCode.BAD_INPUT
    except BrokenPipeError:
        sys.stderr.close()  # `mcxa messages ... | head`: the reader left; not an error of ours
        return ExitCode.OK
    except OSError as exc:  # an output file we cannot write
        click.echo(f"mcxa: {exc.filename or 'output'}: {exc.strerror or exc}", err=True)
        return ExitCode.BAD_INPUT
    except Exception as exc:  # a bug of ours: still one line, and the traceback on request
        if os.environ.get("MCXA_DEBUG"):
            raise
        click.echo(f"mcxa: internal error: {type(exc).__name__}: {exc} (set MCXA_DEBUG=1 for the "
                   "traceback, and please report it with the capture)", err=True)
        return ExitCode.BAD_INPUT
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
