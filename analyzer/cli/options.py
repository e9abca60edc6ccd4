"""What the ``mcxa`` commands share: option decorators and their checks, running one capture through the
pipeline with them, and the summary a command leaves on stderr."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager

import click

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.exitcodes import ExitCode
from analyzer.base.times import FORMATS
from analyzer.engines import DecodeOptions, DecodeStats
from analyzer.meaning.events import MIGRATION_REASON

_DIAGNOSTICS_SHOWN = 20


def output_path(ctx, param, value: str | None) -> str | None:
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


def _esp_sa(ctx, param, value: str | None) -> None:
    """Read the SA file now: a mistake in it is one line before any decoding."""
    if value:
        from analyzer.base.errors import InputError
        from analyzer.transport.esp_sa import load_esp_sas

        try:
            load_esp_sas(value)
        except InputError as exc:
            raise click.BadParameter(str(exc)) from None
    ctx.meta["mcxa.esp_sa"] = value


def _engine(ctx, param, value: str) -> str:
    from analyzer.engines import resolve_engine

    return resolve_engine(value, ctx.meta.get("mcxa.tls_keylog"), lambda line: click.echo(line, err=True),
                          ctx.meta.get("mcxa.esp_sa"))


def engine_option(command):
    """``--engine auto|dpkt|tshark``, ``--tls-keylog`` and ``--esp-sa``; the value is the name
    ``get_engine`` takes."""
    command = click.option("--engine", type=click.Choice(["auto", "dpkt", "tshark"]), default="auto",
                           show_default=True, callback=_engine,
                           help="Decoding engine: auto is dpkt, or tshark with --tls-keylog.")(command)
    command = click.option("--tls-keylog", type=click.Path(exists=True, dir_okay=False), is_eager=True,
                           expose_value=False, callback=_keylog, metavar="FILE",
                           help="TLS key log (SSLKEYLOGFILE format): tshark decrypts HTTPS into HTTP "
                                "messages (implies --engine tshark).")(command)
    return click.option("--esp-sa", type=click.Path(exists=True, dir_okay=False), is_eager=True,
                        expose_value=False, callback=_esp_sa, metavar="FILE",
                        help="YAML list of IPsec ESP security associations (spi, src, dst, encryption, "
                             "encryption_key, integrity, integrity_key) to decrypt SIP on Gm; "
                             "NULL-encrypted ESP needs none.")(command)


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


def current_limits():
    """The caps this command runs with (``--limit``), as ``analyzer.base.limits.Limits``."""
    from analyzer.base.limits import DEFAULT

    return click.get_current_context().meta.get("mcxa.limits", DEFAULT)


limit_option = click.option("--limit", multiple=True, metavar="NAME=N", expose_value=False, callback=_limit,
                            help="Raise or lower one of the caps on what is kept in memory (repeatable), "
                                 "e.g. --limit tcp_streams=200000; the README lists them all.")


def _jobs(ctx, param, value: int | None) -> None:
    ctx.meta["mcxa.workers"] = value


def current_workers() -> int:
    """The processes this command decodes its capture with (``--jobs``; default: ``DecodeOptions``')."""
    value = click.get_current_context().meta.get("mcxa.workers")
    return DecodeOptions().workers if value is None else value


jobs_option = click.option("--jobs", "-j", type=click.IntRange(min=1), expose_value=False, callback=_jobs,
                           help="Processes for this capture: 1 does everything in this one; 2 (the default) "
                                "moves part of the work to a second one (Linux, dpkt engine, captures of "
                                "8 MiB or more; README 'Speed' says which part). The results are the same. "
                                "More are not used yet.")


def _color(ctx, param, value: str) -> None:
    ctx.meta["mcxa.color"] = value


color_option = click.option(
    "--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
    expose_value=False, callback=_color,
    help="Colour verdicts, steps and deviations: auto on a terminal unless NO_COLOR is set; always (even "
         "into a file or with NO_COLOR); never.")


def colour_wanted(output: str | None) -> bool:
    """Whether this command's text output is coloured (``--color``; auto: stdout is a terminal and
    ``NO_COLOR`` is unset or empty, as https://no-color.org asks)."""
    choice = click.get_current_context().meta.get("mcxa.color", "auto")
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR") or output:
        return False
    try:
        return click.get_text_stream("stdout").isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _time_format(ctx, param, value: str) -> None:
    ctx.meta["mcxa.time_format"] = value


time_format_option = click.option(
    "--time-format", type=click.Choice(list(FORMATS)), default="ad", show_default=True, expose_value=False,
    callback=_time_format,
    help="Times as tshark -t shows them, to the microsecond: ad local date and time (with the zone; TZ is "
         "honoured), a local time, adoy year/day-of-year, u/ud/udoy the same in UTC, r seconds since the "
         "first frame, d since the previous frame, dd since the previous row shown, e epoch seconds.")


def bind_times(capture: str) -> None:
    """Put ``--time-format`` in force for CAPTURE: ``r`` and ``d`` read its frame times (a second pass over
    its records, ``d`` only once a row asks). Commands without the option keep ``times.UTC_DATE``."""
    from analyzer.base import times

    kind = click.get_current_context().meta.get("mcxa.time_format")
    if kind is None:
        return
    origin = frame_time = None
    if kind in ("r", "d"):
        from analyzer.capture import STDIN
        from analyzer.capture.frametimes import FrameTimes, first_time

        if capture == STDIN:
            raise click.BadParameter(f"{kind} needs the capture's own frame times: give a file, not standard "
                                     "input", param_hint="--time-format")
        origin = first_time(capture)
        frame_time = FrameTimes(capture) if kind == "d" else None
    times.select(times.TimeFormat(kind, origin, frame_time))


def progress_bar(capture: str, quiet: bool, streams_to_stdout: bool = False, engine: str = "dpkt"):
    """``with progress_bar(...) as progress``: a transient bar on stderr while CAPTURE is read, on a terminal
    only and after 1 s; ``progress`` is None (no cost) otherwise. See ``analyzer.cli.progress``."""
    from analyzer.cli.progress import decode_progress

    choice = click.get_current_context().meta.get("mcxa.color", "auto")
    return decode_progress(capture, quiet, streams_to_stdout, by_frame=engine == "tshark",
                           color=None if choice == "auto" else choice == "always")


def start_progress(capture: str, quiet: bool, engine: str):
    """The bar of a command that reads CAPTURE and then judges or reports on it: it stays (with the stage at
    work, ``phase``) until ``end_progress`` — called before anything is written — or the command ends."""
    end_progress()
    ctx = click.get_current_context()
    progress = ctx.with_resource(progress_bar(capture, quiet, engine=engine))
    ctx.meta["mcxa.progress"] = progress
    return progress


def phase(label: str) -> None:
    """Say on the progress line which stage works now (nothing when there is no line)."""
    progress = click.get_current_context().meta.get("mcxa.progress")
    if progress is not None:
        progress.phase(label)


def end_progress() -> None:
    """Remove the progress line, before output is written to the terminal it is on."""
    progress = click.get_current_context().meta.pop("mcxa.progress", None)
    if progress is not None:
        progress.close()


def check_output(fmt: str, needs_path: bool, output: str | None) -> None:
    if needs_path and not output:
        raise click.UsageError(f"--format {fmt} writes a binary file: give it with --output/-o")


def write(writer, needs_path: bool, output: str | None, *args) -> None:
    """Run a renderer towards a path (binary formats), a text file, or stdout."""
    end_progress()
    if needs_path:
        writer(*args[:1], output, *args[1:])
        return
    with text_output(output) as out:
        writer(*args[:1], out, *args[1:])


@contextmanager
def text_output(path: str | None):
    """Where text output lands: stdout, or the file ``path`` once it is complete (it is written beside it
    first, so an error leaves no half document behind; a device or a pipe, /dev/stdout say, is written
    to as it is)."""
    if not path:
        yield click.get_text_stream("stdout")
        return
    if os.path.exists(path) and not os.path.isfile(path):
        with open(path, "w", encoding="utf-8") as out:
            yield out
        return
    partial_path = f"{path}.partial"
    try:
        with open(partial_path, "w", encoding="utf-8") as out:
            yield out
        os.replace(partial_path, path)
    finally:
        if os.path.exists(partial_path):
            os.remove(partial_path)


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


def analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason, quiet=False,
             keep_messages=False, streamed=False):
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
        migration_reason=pattern, keep_messages=keep_messages, limits=current_limits(), phase=phase,
        streamed=streamed)
    bind_times(capture)
    progress = start_progress(capture, quiet, engine)
    options = DecodeOptions(sip_ports=sip_ports, progress=progress, limits=current_limits(),
                            workers=current_workers())
    return analyse_capture(capture, engine, options, meaning)


def report_diagnostics(capture: str, diagnostics: Diagnostics, stats: DecodeStats | None = None) -> None:
    """A short human summary on stderr. With the decode's ``stats``: where reading stopped (first), where
    every packet went, the TLS flows not read; then diagnostic counts per code, and the first few with
    their frames."""
    end_progress()
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


def finish(capture: str, diagnostics: Diagnostics, stats: DecodeStats, quiet: bool) -> None:
    """End of a command that lists what one capture holds: the summary on stderr (unless ``quiet``), and
    exit 3 (incomplete) when reading stopped before the end of the file."""
    if not quiet:
        report_diagnostics(capture, diagnostics, stats)
    if stats.stopped is not None:
        raise click.exceptions.Exit(ExitCode.INCOMPLETE)
