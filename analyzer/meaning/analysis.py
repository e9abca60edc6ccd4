"""One capture through every stage up to UE sessions: decode → transactions/events → systems → sessions.

Commands that need meaning (``events``, ``sessions``, later ``analyze``) call ``analyse_capture``; each
stage stays a module of its own and this is the only place that chains them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.limits import Limits
from analyzer.base.runs import SortedRuns
from analyzer.engines import DecodeOptions, DecodeStats, get_engine
from analyzer.meaning.events import MIGRATION_REASON, Event
from analyzer.meaning.events.extract import extract_events, fact_share
from analyzer.meaning.problems import Problems
from analyzer.meaning.sessions import ADDRESS_WINDOW, Linked, SessionLinker, UeSession, build_sessions
from analyzer.meaning.systems import SystemMap


@dataclass(slots=True)
class MeaningOptions:
    """What the user can tell the meaning stages (``--systems``, ``--identities``, ...)."""

    systems: SystemMap | None = None
    identity_map: list[tuple[str, str]] = field(default_factory=list)
    migration_reason: re.Pattern = MIGRATION_REASON
    address_window: float = ADDRESS_WINDOW
    keep_messages: bool = False  # keep the decoded messages (ladder diagrams draw them)
    limits: Limits = DEFAULT_LIMITS  # caps on the meaning stages' tables (``analyzer.base.limits``)
    phase: Callable[[str], None] | None = None  # told each stage once reading has ended (a progress line)
    #: the events kept packed and the sessions linked, not listed (``CaptureAnalysis.stream``): for the
    #: commands that only judge, so that each session is judged and let go as soon as its last event is read
    streamed: bool = False


@dataclass(slots=True)
class Streamed:
    """A capture's events, packed in order (``base.runs.SortedRuns``), and its sessions linked."""

    events: SortedRuns
    linked: Linked
    last_event: float | None  # the latest end (or time) of an event

    def sessions(self) -> Iterator[tuple[int, UeSession]]:
        """(index, session with its events) of each session, as soon as its last event is read; once."""
        return self.linked.filled(iter(self.events))


@dataclass(slots=True)
class CaptureAnalysis:
    path: str
    stats: DecodeStats
    diagnostics: Diagnostics
    events: list[Event]
    systems: SystemMap
    sessions: list[UeSession]
    messages: list | None = None  # the decoded Messages and TlsHellos, when MeaningOptions.keep_messages
    stream: Streamed | None = None  # ``MeaningOptions.streamed``: the events and sessions (lists empty)

    def counts(self) -> tuple[int, int]:
        """(events, UE sessions) of the capture."""
        if self.stream is not None:
            return len(self.stream.events), len(self.stream.linked.sessions)
        return len(self.events), len(self.sessions)

    def session_of(self) -> dict[int, str]:
        """id(event) → the UE session it belongs to."""
        return {id(e): s.id for s in self.sessions for e in s.events}


def analyse_capture(path: str, engine: str = "dpkt", decode_options: DecodeOptions | None = None,
                    meaning: MeaningOptions | None = None) -> CaptureAnalysis:
    meaning = meaning or MeaningOptions()
    problems = Problems()
    messages: list | None = [] if meaning.keep_messages else None
    # meaning weighs more than decoding: on two cores the worker parses the messages as well, and collects
    # the facts of a share of the calls (unless every message is kept here, for drawing)
    share = fact_share(problems, meaning.limits) if messages is None else None
    options = replace(decode_options or DecodeOptions(), parse_in_worker=True, share=share)
    decoded = get_engine(engine)(path, options)
    items = decoded.items if messages is None else _keeping(decoded.items, messages)
    phase = meaning.phase or (lambda label: None)
    events, systems = extract_events(_then(items, lambda: phase("events")), meaning.systems,
                                     meaning.migration_reason, problems,
                                     capture_end=lambda: decoded.stats.last_time, limits=meaning.limits,
                                     share=share, packed=meaning.streamed)
    phase("sessions")
    if not meaning.streamed:
        sessions = build_sessions(events, meaning.identity_map, meaning.address_window,
                                  meaning.limits.identities, problems)
        decoded.diagnostics.merge(problems.counts, problems.records)
        return CaptureAnalysis(path, decoded.stats, decoded.diagnostics, events, systems, sessions, messages)
    linker = SessionLinker(meaning.identity_map, meaning.address_window, meaning.limits.identities, problems)
    last_event = None
    for e in events:
        linker.add(e)
        end = e.end or e.time
        last_event = end if last_event is None else max(last_event, end)
    linked = linker.close()
    decoded.diagnostics.merge(problems.counts, problems.records)
    return CaptureAnalysis(path, decoded.stats, decoded.diagnostics, [], systems, [], messages,
                           Streamed(events, linked, last_event))


def _then(items, done: Callable[[], None]):
    """Pass items through, then call ``done``: reading has ended, the events are being completed."""
    yield from items
    done()


def _keeping(items, kept: list):
    """Pass items through, keeping each (one decode serves both the events and the drawings)."""
    for item in items:
        kept.append(item)
        yield item
