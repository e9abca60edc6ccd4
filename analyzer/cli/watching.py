"""``mcxa watch``: live verdicts from a capture being made (``-i IFACE`` through dumpcap or tcpdump, or a
file, ring of files or pipe still being written), a status line, and the full report at the end."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from contextlib import ExitStack
from functools import partial

import click

from analyzer.base.errors import McxaError
from analyzer.capture.source import STDIN
from analyzer.cli.options import (
    bind_times,
    color_option,
    colour_wanted,
    current_limits,
    limit_option,
    meaning_options,
    output_path,
    quiet_option,
    report_diagnostics,
    rules_options,
    sip_ports_option,
    time_format_option,
)

#: Report formats ``--output`` takes, by the file's extension (text otherwise).
REPORT_WRITERS = {".html": "html", ".htm": "html", ".json": "json", ".xml": "junit"}


class StatusLine:
    """One line on stderr, rewritten in place (terminal only): packets, UEs, open and decided procedures.
    Cleared before a verdict is written and drawn again after it."""

    def __init__(self, stream, source: str):
        self.stream, self.source, self.text = stream, source, ""

    def show(self, status) -> None:
        self.text = (f"mcxa watch {self.source}: {status.packets:,} packets, {status.ues} UEs, "
                     f"{status.open} open, {status.decided} decided")
        self.draw()

    def draw(self) -> None:
        if self.text:
            self.stream.write("\r\x1b[K" + self.text[:200])
            self.stream.flush()

    def clear(self) -> None:
        if self.text:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class Teller:
    """Writes what the watcher tells: text lines (``VERDICT``, then the deviations) or JSON lines."""

    def __init__(self, out, fmt: str, status: StatusLine | None):
        self.out, self.fmt, self.status = out, fmt, status
        self.ended = False

    def __call__(self, told) -> None:
        from analyzer.run.replay import verdict_text

        p = told.procedure
        if self.status is not None:
            self.status.clear()
        if self.fmt == "jsonl":
            lines = [_json({"type": "procedure", "decided": told.how, "decided_at": told.at,
                            **({"was": told.was} if told.was else {}), **p})]
            lines += [_json({"type": "deviation", "rule": p["rule"], "ue": p["ue"], "session": p["session"],
                             "group": p["group"], "peer": p["peer"], **d}) for d in p["deviations"]]
        else:
            if told.how != "live" and not self.ended:
                self.ended = True
                self.out.write("== capture ended: the procedures not decided while watching\n")
            label = "REVISED" if told.how == "revised" else "VERDICT"
            lines = [verdict_text(p, label) + (f" (was {told.was})" if told.was else "")]
            lines += [f"    {d['severity']} {d['code']}: {d['message']}" for d in p["deviations"]
                      if d["severity"] in ("error", "warning")]
        self.out.write("".join(line + "\n" for line in lines))
        self.out.flush()
        if self.status is not None:
            self.status.draw()


def _json(value: dict) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


@click.command()
@click.argument("source", nargs=-1)
@click.option("--interface", "-i", metavar="IFACE",
              help="Capture live on IFACE through dumpcap (or tcpdump); SOURCE is then a BPF filter.")
@click.option("--tool", type=click.Choice(["auto", "dumpcap", "tcpdump"]), default="auto", show_default=True,
              help="The capture tool for -i (auto: dumpcap if installed, else tcpdump).")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="Of what is told live on stdout: text lines, or one JSON object per decided procedure "
                   "and per deviation (with a 'type' field).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              help="At the end, the full report to this file: .html, .json, .xml (JUnit), else text.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop after this many seconds (else at Ctrl-C, or when the capture ends).")
@click.option("--save", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              metavar="FILE", help="Keep every byte of the capture read in FILE (one pcap or pcapng file).")
@rules_options
@meaning_options
@sip_ports_option
@limit_option
@quiet_option
@time_format_option
@color_option
def watch(source, interface, tool, fmt, output, duration, save, rules_dir, window, systems_file,
          identities_file, migration_reason, sip_ports, quiet):
    """Judge migrations while the capture is made: live on an interface (-i IFACE [BPF FILTER], through
    dumpcap or tcpdump), or following FILE (a capture still being written: tcpdump -U -w FILE; a ring of
    files: FILE and FILE1, FILE2 ..., a directory, or a quoted pattern) or - (a pipe). Each procedure's
    verdict is printed as soon as it is certain; Ctrl-C or --duration ends cleanly: the rest is judged
    and the full report written (-o). Exit codes as analyze."""
    from analyzer.capture import follow
    from analyzer.capture import live as capture_tool
    from analyzer.report import document as report
    from analyzer.rules import load_rules
    from analyzer.run import watch as watching

    if interface is None and len(source) != 1:
        raise click.UsageError("give one FILE (or - for standard input) to follow, or -i IFACE to capture")
    meta = click.get_current_context().meta
    if fmt != "text":
        meta.pop("mcxa.time_format", None)
    elif meta.get("mcxa.time_format") in ("r", "d"):
        raise click.BadParameter("r and d count from frames of a finished file; a capture being made has "
                                 "none yet", param_hint="--time-format")
    bind_times(STDIN)  # every other format needs no frame times
    rules = load_rules(rules_dir)
    meaning = _meaning(systems_file, identities_file, migration_reason)
    out = click.get_text_stream("stdout")
    err = click.get_text_stream("stderr")
    status = StatusLine(err, interface or source[0]) if not quiet and _tty(err) else None
    label = save or (f"{interface} (live)" if interface else source[0])
    with ExitStack() as stack:
        # unbuffered: what was read is in the file at once, even if mcxa is killed
        saved = stack.enter_context(open(save, "wb", buffering=0)) if save else None
        control = follow.Control()
        capture = None
        if interface is not None:
            bpf = " ".join(source) or None
            capture = capture_tool.LiveCapture(capture_tool.find_tool(tool), interface, bpf)
            stack.callback(capture.close)
            problem = capture.wait_started()
            if problem:
                raise click.ClickException(problem)
            if not quiet:
                err.write(f"mcxa watch: capturing on {interface} with {capture.tool}"
                          f"{f' (filter {chr(39)}{bpf}{chr(39)})' if bpf else ''}; Ctrl-C ends\n")
                err.flush()

            def opener(path):
                return follow.FollowedPipe(capture.fd, label, control, saved, until_closed=True)
        elif source[0] == "-":
            def opener(path):
                return follow.FollowedPipe(sys.stdin.fileno(), "<stdin>", control, saved)
        else:
            members = follow.ring_members(source[0])

            def opener(path):
                return follow.FollowedFiles(source[0], control, saved, members)

        def stop():
            control.stop()
            if capture is not None:
                capture.stop()

        def interrupted(*_):
            if control.stopping:  # a second Ctrl-C: the user does not want to wait for the end
                raise click.Abort
            stop()

        _on_signals(stack, interrupted)
        if duration:
            timer = threading.Timer(duration, stop)
            timer.daemon = True
            timer.start()
            stack.callback(timer.cancel)
        teller = Teller(out, fmt, status)
        watcher = watching.Watcher(label, rules, window, meaning, teller,
                                   status.show if status is not None else None)
        control.idle = watcher.idle
        from analyzer.engines import DecodeOptions

        try:
            analysis, judged = watching.watch(label, opener, watcher,
                                              DecodeOptions(sip_ports=sip_ports, limits=current_limits()),
                                              lambda: control.stopped_at)
        except McxaError:
            if capture is not None:  # nothing came: the tool's own words say why, if it failed
                capture.close()
                if capture.failure():
                    raise click.ClickException(capture.failure()) from None
            raise
        if status is not None:
            status.clear()
        if capture is not None:
            capture.close()
            failure = capture.failure()
            if failure and not analysis.stats.packets:
                raise click.ClickException(failure)
            if failure:
                err.write(f"mcxa: {failure}\n")
    part = report.capture_report(analysis, judged)
    if capture is not None or analysis.stats.capture_drops is not None:
        stats = capture_tool.dropped(capture.tool, capture.stderr) if capture is not None else None
        part["capture_tool"] = _tool_part(capture, stats, analysis.stats.capture_drops)
        _say_drops(err, part["capture_tool"])
    doc = report.report([part], rules)
    _summary(out, fmt, doc, part)
    if output:
        _write_report(output, doc, analysis, save)
    if not quiet:
        report_diagnostics(label, analysis.diagnostics)
    raise click.exceptions.Exit(report.exit_code(doc))


def _tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _meaning(systems_file, identities_file, migration_reason):
    from analyzer.meaning.analysis import MeaningOptions
    from analyzer.meaning.sessions import load_identity_map
    from analyzer.meaning.systems import SystemMap

    try:
        pattern = re.compile(migration_reason, re.I)
    except re.error as exc:
        raise click.BadParameter(f"not a regular expression: {exc}",
                                 param_hint="--migration-reason") from None
    return MeaningOptions(systems=SystemMap.from_file(systems_file) if systems_file else None,
                          identity_map=load_identity_map(identities_file) if identities_file else [],
                          migration_reason=pattern, limits=current_limits())


def _on_signals(stack: ExitStack, handler) -> None:
    """SIGINT and SIGTERM end watching cleanly (``handler``); the previous handlers come back after."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.signal(sig, handler)
        stack.callback(signal.signal, sig, previous)


def _tool_part(capture, stats: dict | None, recorded: int | None) -> dict:
    """The report's ``capture_tool`` block: the tool, its command, the packets it received and dropped
    (its statistics at exit; else those the capture recorded, pcapng interface statistics)."""
    if stats is None and recorded is not None:
        stats = {"received": None, "dropped": recorded, "detail": "pcapng interface statistics"}
    return {"tool": capture.tool if capture else None, "interface": capture.interface if capture else None,
            "command": capture.args if capture else None,
            "received": stats["received"] if stats else None, "dropped": stats["dropped"] if stats else None,
            "statistics": stats["detail"] if stats else None}


def _say_drops(err, part: dict) -> None:
    tool = part["tool"] or "the capture tool"
    if part["statistics"] is None:
        err.write(f"mcxa: {tool} gave no packet statistics: whether it dropped packets is unknown\n")
    elif part["dropped"]:
        err.write(f"mcxa: {tool} dropped {part['dropped']} packet(s) ({part['statistics']}): "
                  "steps may be missing because their packets were never seen\n")


def _summary(out, fmt: str, doc: dict, part: dict) -> None:
    verdicts: dict[str, int] = {}
    for p in part["procedures"]:
        verdicts[p["verdict"]] = verdicts.get(p["verdict"], 0) + 1
    stats = part["stats"]
    if fmt == "jsonl":
        from analyzer.report.document import exit_code

        out.write(_json({"type": "summary", "packets": stats["packets"], "ue_sessions": stats["ue_sessions"],
                         "procedures": len(part["procedures"]), "verdicts": verdicts,
                         "capture_tool": part.get("capture_tool"), "exit_code": int(exit_code(doc))}) + "\n")
    else:
        counts = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) or "none"
        out.write(f"== {stats['packets']:,} packets, {stats['ue_sessions']} UE sessions, "
                  f"{len(part['procedures'])} procedures: {counts}\n")
    out.flush()


def _write_report(output: str, doc: dict, analysis, save: str | None) -> None:
    from analyzer.report import document as report

    kind = REPORT_WRITERS.get(os.path.splitext(output)[1].lower(), "text")
    if kind == "html":
        from analyzer.report.html import write_html

        ladders = {}
        if save:  # the ladders are drawn from the messages, read again from the file kept
            from analyzer.report.ladder import capture_ladders

            ladders[doc["captures"][0]["file"]] = capture_ladders(analysis, doc["captures"][0]["procedures"])
        writer = partial(write_html, ladders=ladders)
    elif kind == "json":
        writer = report.write_json
    elif kind == "junit":
        from analyzer.report.junit import write_junit as writer
    else:
        from analyzer.report.text import write_text

        writer = partial(write_text, color=colour_wanted(output))
    with open(output, "w", encoding="utf-8") as f:
        writer(doc, f)
