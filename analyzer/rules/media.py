"""Media-plane figures of a procedure instance, and the TS 22.179 KPIs whose thresholds a rule sets.

Measured on the floor events (``analyzer.meaning.events.floor``) of the instance's calls — the anchor's
call (``call_id`` of the anchor event) and the call its last step found (late entry, re-establishment):

- ``access_times`` (TS 22.179 §6.15, KPI 1, MCPTT access time): each Floor Request the UE sent in one of
  those calls to the next Floor Granted it received in the same call, in seconds. TS 22.179 measures
  from the button press to the permission to talk; a capture shows the network's share of it (where the
  capture was taken): the figure is a lower bound of the KPI.
- ``late_entry_time`` (KPI 4, late call entry time): from the request of the step that entered the group
  call in the partner system (the late-entry INVITE to the UE or, over a pre-established session, the
  server's MCPC Connect; or the UE's join INVITE or REFER) to the first
  Floor Taken the UE received in that call (someone talks: the audio the user hears follows). None when
  nobody talked (a Floor Idle came first, or no floor message at all), and for private calls.
- ``media_interruption``: the last floor message the UE received in the old call (the end of the last
  talk burst it heard: Floor Idle, or a Taken/Granted) to the first Floor Taken or Granted it received in
  the new call — the interruption as the user hears it, beside the signalling one (report ``_kpis``).
- ``rtp_received`` and ``rtp_interruption``: the RTP packets the UE received on each port its SDP gave it
  in the two calls (``analyzer.transport.rtp``: counted in a second walk of the capture, absent when it
  cannot be read twice, e.g. from standard input), and the last of them in the old call to the first in
  the new one — negative when the old call's RTP still came after the new call's began.

A rule's ``kpis:`` (``analyzer.rules.kpis``) sets thresholds: each figure over its ``max`` adds a deviation
of that severity (info or warning, never an error: verdicts are unchanged).

An instance is measured from its ``Probe`` (``probe_of``: what measuring needs, small), so that the JSON
report can hold the instance's report and its probe, not the instance, until the RTP is counted.
"""

from __future__ import annotations

from typing import NamedTuple

from analyzer.meaning.events import KINDS, Event
from analyzer.rules.kpis import KPIS
from analyzer.rules.matcher import Timeline
from analyzer.rules.results import Deviation

_FLOOR = tuple(kind for kind in KINDS if kind.startswith("floor-"))
_HEARD = frozenset(("floor-taken", "floor-granted"))
_ENTRIES = frozenset(("group-call-incoming", "group-call-join"))  # what enters a group call: a late entry


class Moment(NamedTuple):
    """What measuring reads of a call event."""

    kind: str
    time: float
    frame: int
    call_id: str | None
    media: tuple[str, ...]


class Probe(NamedTuple):
    """What measuring one instance needs, held (packed, with its report) until the capture's RTP is
    counted: the anchor (the call left), the event that entered the new call, the floor events of both
    calls, and the rule's KPI thresholds. (Plain tuples: they pack fast.)"""

    anchor: Moment
    entry: Moment | None  # the last step's event
    floor: tuple[Event, ...]
    kpis: tuple  # the rule's ``kpis.Threshold``s
    migration: bool  # a migration's: the RTP on its endpoints is counted (``counted_endpoints``)


def _moment(e: Event) -> Moment:
    return Moment(e.kind, e.time, e.frame, e.call_id, e.media)


def probe_of(inst, timeline: Timeline) -> Probe:
    """The probe of ``inst`` (``timeline``: its session's)."""
    entry = inst.steps[-1].event if inst.steps else None
    calls = dict.fromkeys((inst.anchor.call_id, entry.call_id if entry is not None else None))
    calls = [c for c in calls if c is not None]
    return Probe(_moment(inst.anchor), _moment(entry) if entry is not None else None,
                 tuple(timeline.of_calls(_FLOOR, calls)), inst.rule.kpis, inst.rule.migration is not None)


def counted_endpoints(probe: Probe) -> tuple[str, ...]:
    """The ports the UE's SDP named in the calls a migration left and entered: whose RTP to count (none
    for another procedure: its figures use what was counted for migrations)."""
    if not probe.migration:
        return ()
    return (*probe.anchor.media, *(probe.entry.media if probe.entry is not None else ()))


def measure(probe: Probe, rtp: dict | None = None) -> tuple[dict, list[Deviation]]:
    """The media-plane figures of an instance (only those the capture allows), and its KPI deviations;
    ``rtp``: endpoint → ``RtpCount`` of what the UE received there."""
    entry, floor = probe.entry, probe.floor
    old, new = probe.anchor.call_id, entry.call_id if entry is not None else None
    figures: dict = {}
    access = []
    for call in dict.fromkeys((old, new)):
        pending = None
        for e in (e for e in floor if e.call_id == call):
            if e.kind == "floor-request" and e.direction == "from-ue":
                pending = e
            elif e.kind == "floor-granted" and e.direction == "to-ue" and pending is not None:
                access.append({"call_id": call, "system": e.system, "frames": [pending.frame, e.frame],
                               "seconds": round(e.time - pending.time, 3)})
                pending = None
            elif e.kind == "floor-deny":
                pending = None
    if access:
        figures["access_times"] = access
    received_new = [e for e in floor if e.call_id == new and e.direction == "to-ue"]
    if entry is not None and new is not None and new != old and received_new:
        first = received_new[0]
        if first.kind == "floor-taken" and entry.kind in _ENTRIES:
            figures["late_entry_time"] = round(first.time - entry.time, 3)
            figures["late_entry_frames"] = [entry.frame, first.frame]
    rtp = rtp or {}
    streams = {"old": [(e, rtp[e]) for e in probe.anchor.media if e in rtp],
               "new": [(e, rtp[e]) for e in (entry.media if entry is not None else ()) if e in rtp]}
    if streams["old"] or streams["new"]:
        figures["rtp_received"] = [{"call": call, "to": e, "packets": c.packets,
                                    "frames": [c.first_frame, c.last_frame]}
                                   for call, found in streams.items() for e, c in found]
    if entry is not None and new is not None and new != old:
        heard_old = [e for e in floor if e.call_id == old and e.direction == "to-ue"]
        heard_new = [e for e in received_new if e.kind in _HEARD]
        if heard_old and heard_new:
            figures["media_interruption"] = round(heard_new[0].time - heard_old[-1].time, 3)
            figures["media_interruption_frames"] = [heard_old[-1].frame, heard_new[0].frame]
        if streams["old"] and streams["new"]:
            last = max((c.last_time, c.last_frame) for _, c in streams["old"])
            first = min((c.first_time, c.first_frame) for _, c in streams["new"])
            figures["rtp_interruption"] = round(first[0] - last[0], 3)
            figures["rtp_interruption_frames"] = [last[1], first[1]]
    deviations = []
    for threshold in probe.kpis:
        if threshold.kpi == "access_time":
            over = [(a["seconds"], tuple(a["frames"])) for a in access if a["seconds"] > threshold.max]
        else:
            late = figures.get("late_entry_time")
            frames = tuple(figures.get("late_entry_frames", ()))
            over = [] if late is None or late <= threshold.max else [(late, frames)]
        for seconds, frames in over:
            deviations.append(Deviation(
                f"kpi-{threshold.kpi.replace('_', '-')}", None, threshold.severity,
                f"{KPIS[threshold.kpi]}: {seconds:.3f} s, above the {threshold.max:.3f} s the rule allows",
                "3GPP TS 22.179 §6.15", frames))
    return figures, deviations
