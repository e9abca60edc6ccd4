"""The commands that list what one capture holds: ``messages``, ``events``, ``sessions`` and the ladder
diagram of one UE (``flow``). Each exits 0, or 3 when the capture could not be read to its end."""

from __future__ import annotations

import click

from analyzer.cli.options import (
    analyse,
    analysis_options,
    bind_times,
    check_output,
    color_option,
    colour_wanted,
    current_limits,
    current_workers,
    end_progress,
    engine_option,
    finish,
    jobs_option,
    limit_option,
    output_path,
    phase,
    progress_bar,
    quiet_option,
    rules_options,
    sip_ports_option,
    time_format_option,
    write,
)
from analyzer.engines import DecodeOptions, get_engine
from analyzer.meaning.events import KINDS
from analyzer.messages.floor import FloorMessage
from analyzer.messages.records import Message
from analyzer.messages.select import MessageFilter
from analyzer.report.messages import WRITERS

EVENT_FORMATS = ("table", "jsonl", "csv", "parquet")
SESSION_FORMATS = ("text", "json")


@click.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(list(WRITERS)), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              help="Write to this file instead of stdout (required for parquet).")
@click.option("--method", "methods", multiple=True, metavar="METHOD",
              help="Only this SIP/HTTP method (repeatable); responses match by their CSeq method.")
@click.option("--call-id", help="Only messages with this SIP Call-ID.")
@click.option("--user", help="Only messages naming this user (substring of Request-URI, From, To, "
                              "P-Asserted-Identity, Contact).")
@engine_option
@sip_ports_option
@limit_option
@jobs_option
@quiet_option
@time_format_option
def messages(capture, fmt, output, methods, call_id, user, engine, sip_ports, quiet):
    """List every SIP and HTTP message in CAPTURE (pcap, pcapng, optionally gzip-compressed), and the MC
    floor control / media-plane control messages (RTCP APP MCPT, MCPC, MCV0-3); then, on
    stderr, where every packet went and the diagnostics. Exit code 0, or 3 (incomplete) when reading
    stopped before the end of a damaged file: the messages before the damage are listed."""
    writer, needs_path = WRITERS[fmt]
    check_output(fmt, needs_path, output)
    bind_times(capture)
    with progress_bar(capture, quiet, streams_to_stdout=not output, engine=engine) as progress:
        options = DecodeOptions(sip_ports=sip_ports, progress=progress, limits=current_limits(),
                                workers=current_workers())
        decoded = get_engine(engine)(capture, options)
        keep = MessageFilter(frozenset(m.upper() for m in methods), call_id, user)
        listed = (Message, FloorMessage)
        selected = (item for item in decoded.items if isinstance(item, listed) and keep(item))
        write(writer, needs_path, output, selected)
    finish(capture, decoded.diagnostics, decoded.stats, quiet)


@click.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(EVENT_FORMATS), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              help="Write to this file instead of stdout (required for parquet).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(list(KINDS)),
              help="Only events of this kind (repeatable).")
@click.option("--ue", help="Only events of this UE: its session id (ue1...), an IP address, or (part of) any "
                           "identity it used in any system: MC service ID, IMPU/IMPI, instance, client id.")
@analysis_options
@jobs_option
@time_format_option
def events(capture, fmt, output, kinds, ue, systems_file, identities_file, migration_reason, engine,
           sip_ports, quiet):
    """List the MC events in CAPTURE: registrations, affiliations, profile retrievals, calls... with
    the UE session each belongs to."""
    from analyzer.report.events import WRITERS as EVENT_WRITERS

    writer, needs_path = EVENT_WRITERS[fmt]
    check_output(fmt, needs_path, output)
    analysis = analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason, quiet)
    found = {s.id for s in _sessions_named(analysis, ue, quiet)} if ue else set()
    phase("report")

    def keep(row: dict) -> bool:
        if kinds and row["kind"] not in kinds:
            return False
        return not ue or row["ue"] in found

    write(writer, needs_path, output, analysis, keep)
    finish(capture, analysis.diagnostics, analysis.stats, quiet)


@click.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(SESSION_FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              help="Write to this file instead of stdout.")
@click.option("--ue", help="Only this UE: its session id, an IP address, or (part of) any identity it used "
                           "in any system (as for events).")
@analysis_options
@jobs_option
@time_format_option
def sessions(capture, fmt, output, ue, systems_file, identities_file, migration_reason, engine, sip_ports,
             quiet):
    """Per UE in CAPTURE: its identities and why they are linked, the MC systems it used, its
    registration/affiliation timeline and calls."""
    analysis = analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason, quiet)
    if ue:
        from dataclasses import replace

        analysis = replace(analysis, sessions=_sessions_named(analysis, ue, quiet))
    phase("report")
    from analyzer.report.sessions import WRITERS as SESSION_WRITERS

    write(SESSION_WRITERS[fmt], False, output, analysis)
    finish(capture, analysis.diagnostics, analysis.stats, quiet)


@click.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--ue", help="The UE session: its id (ue1...), an IP address, or (part of) any identity it "
                           "used in any system (default: the first with a procedure instance).")
@click.option("--call-id", help="Only the messages of this SIP Call-ID.")
@click.option("--format", "fmt", type=click.Choice(["text", "svg"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              help="Write to this file instead of stdout.")
@click.option("--pcap", "pcap_out", type=click.Path(dir_okay=False, writable=True), callback=output_path,
              metavar="FILE", help="Also write the packets of the drawing (every frame of its messages) to "
                                   "this pcapng, with frame comments naming each message, step and "
                                   "deviation.")
@rules_options
@analysis_options
@jobs_option
@time_format_option
@color_option
def flow(capture, ue, call_id, fmt, output, pcap_out, rules_dir, window, systems_file, identities_file,
         migration_reason, engine, sip_ports, quiet):
    """Ladder diagram of one UE session in CAPTURE: the UE and the servers of each MC system, its SIP/HTTP
    messages in time order, and the migration steps they are evidence of as judged by the rules (--rules,
    --window as for analyze; deviations in red)."""
    from analyzer.report import document as report
    from analyzer.report import ladder as ladders
    from analyzer.rules import load_rules
    from analyzer.rules.judge import judge

    if pcap_out and capture == "-":
        raise click.BadParameter("the capture comes from standard input, which cannot be read again for its "
                                 "frames: save it to a file first", param_hint="--pcap")
    rules = load_rules(rules_dir)  # a bad rule file fails before the capture is read
    analysis = analyse(capture, engine, sip_ports, systems_file, identities_file, migration_reason, quiet,
                        keep_messages=True)
    phase("rules")
    judged = judge(analysis, rules, window)
    phase("report")
    procedures = report.capture_report(analysis, judged)["procedures"]
    if ue:
        session = next(iter(_sessions_named(analysis, ue, quiet, "; drawing the first")), None)
    else:
        session = ladders.pick_session(analysis, procedures, None, call_id)
    if session is None:
        from analyzer.base.errors import UsageError

        if ue or call_id:
            wanted = f"--ue {ue}" if ue else f"--call-id {call_id}"
            raise UsageError(f"no UE session matches {wanted} (see 'mcxa sessions {capture}')", capture)
        raise UsageError("no UE session: no MC signalling (registration, affiliation, MC calls...) was "
                         f"recognised (see 'mcxa messages {capture}')", capture)
    options = DecodeOptions(sip_ports=sip_ports, limits=current_limits(), workers=current_workers())
    messages = ladders.collect_messages(analysis, engine, options)
    diagram = ladders.build_ladder(analysis, session, messages, procedures, call_id)
    end_progress()
    if analysis.stats.stopped is not None and not quiet:  # said before the drawing, not after it
        from analyzer.report.accounting import stopped_text

        click.echo(f"mcxa: {capture}: {stopped_text(analysis.stats)}", err=True)
    from analyzer.report.ladder_text import WRITERS as LADDER_WRITERS

    writer = LADDER_WRITERS[fmt]
    if fmt == "text":
        from functools import partial

        writer = partial(writer, color=colour_wanted(output))
    write(writer, False, output, diagram)
    if pcap_out:
        from analyzer.report import wireshark

        notes = wireshark.frame_comments(diagram.rows, procedures, None if call_id else session, capture)
        count = wireshark.write_frames(capture, notes, pcap_out, [f"mcxa flow of {diagram.title}"])
        if not quiet:
            click.echo(f"mcxa: {pcap_out}: {count} packets of {session.id}", err=True)
    finish(capture, analysis.diagnostics, analysis.stats, quiet)


def _sessions_named(analysis, ue: str, quiet: bool, then: str = "") -> list:
    """The sessions ``--ue`` names (``meaning.lookup``); several named by one substring are said on stderr."""
    from analyzer.meaning.lookup import find_sessions

    found = find_sessions(analysis.sessions, ue)
    if not found and not then:
        click.echo(f"mcxa: --ue {ue} names no UE session (see 'mcxa sessions {analysis.path}')", err=True)
    if len(found) > 1 and not quiet:
        names = ", ".join(f"{s.id} ({s.mc_id() or '?'})" for s in found[:8])
        click.echo(f"mcxa: --ue {ue} names {len(found)} UE sessions: {names}"
                   f"{' …' if len(found) > 8 else ''}{then}", err=True)
    return found
