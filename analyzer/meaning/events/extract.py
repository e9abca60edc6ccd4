"""From transactions, HTTP exchanges and TLS hellos to MC events: the only place that decides meaning.

Two passes. The first (``analyzer.meaning.events.facts``) streams: every SIP transaction, HTTP
request/response pair and TLS hello becomes a small ``Fact``, so no message body is kept. The second works
on the facts of the whole capture: it learns which addresses are servers and which systems exist, follows
each affiliation and service-authorisation publication (``analyzer.meaning.events.publications``: RFC 3903
entity-tags, full-set replacement, removal and expiry), gives BYEs the meaning of the call they end, and
builds ``Event`` records in time order. Events cite the frames that completed their messages
(``Event.frames``, as Wireshark) and keep every frame that carried their bytes (``Event.all_frames``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.limits import Limits
from analyzer.meaning import mcfacts
from analyzer.meaning.events import MIGRATION_REASON, Event
from analyzer.meaning.events.facts import Fact, collect_facts, observations, sent_to_ue, uri_host
from analyzer.meaning.events.floor import FloorCalls
from analyzer.meaning.events.floor import kept as floor_kept
from analyzer.meaning.events.publications import PACKAGES, Change, Publications
from analyzer.meaning.systems import SystemMap
from analyzer.messages.floor import FloorMessage

_CALL_KINDS = {  # (session type, UE originates?) -> event kind
    ("prearranged", True): "group-call-originate",
    ("chat", True): "group-call-join",
    ("private", True): "private-call-setup",
    ("private", False): "private-call-setup",
}


# -- pass 2: meaning -------------------------------------------------------------------------------------

def _outcome(fact: Fact) -> str:
    """A 401/407 challenge that the capture shows no authenticated retry for is not a rejection: the
    request is still waiting for its final answer (the capture may simply end before the retry)."""
    if fact.status is None or (fact.status in (401, 407) and not fact.method.startswith("HTTP-")):
        return "no-answer"
    return "success" if fact.status < 300 else "failure"



class _Builder:
    """Pass 2: facts of one capture → events."""

    def __init__(self, systems: SystemMap | None, migration_reason: re.Pattern, problems: list | None = None,
                 limits: Limits = DEFAULT_LIMITS):
        self.configured = systems
        self.migration_reason = migration_reason
        self.problems = problems
        self.limits = limits
        self.events: list[Event] = []
        self.publications = Publications(problems, limits.publications)
        # call_id → (group|private, UE address, service, identity fields for the BYE's event), oldest first
        self.calls: OrderedDict[str, tuple[str, str, str | None, dict]] = OrderedDict()
        self.forgotten_calls: list = [0, None]  # calls forgotten beyond ``limits.calls``, the first frame
        self.floor = FloorCalls(limits.calls)  # where each call's media flows: floor events (``floor``)

    def build(self, facts: list[Fact], end: float | None = None, observed: Iterable[tuple] = (),
              floor: list | None = None) -> tuple[list[Event], SystemMap]:
        """Events of ``facts``; ``end``: when the capture ends (publications expire up to then);
        ``observed``: more (domain, server) pairs to infer systems from; ``floor``: floor control
        messages, given to the calls that negotiated their ports."""
        seen = [*observed, *(pair for f in facts for pair in observations(f))]
        inferred = SystemMap.infer(seen, self.limits.domains, self.problems)
        self.systems = self.configured.merged_with(inferred) if self.configured else inferred
        deferred = []
        for f in facts:
            handler, _ = _HANDLERS.get(f.method, (None, None))
            if handler is None:
                continue
            if f.method == "BYE" and f.call_id not in self.calls:
                deferred.append(f)
                continue
            handler(self, f)
        for f in deferred:
            if f.call_id in self.calls:
                self._bye(f)
        for change in self.publications.expire(end):
            self._publication(change)
        self.events.extend(self.floor.events(floor or []))
        count, frame = self.forgotten_calls
        if count and self.problems is not None:
            self.problems.append(mcfacts.Problem(
                "table-full", f"more than {self.limits.calls} calls awaited their BYE at once from frame "
                f"{frame} on: the oldest were forgotten, their BYE ends no call ({count} in all); raise the "
                "cap with --limit calls=N", (frame,)))
        self.events.sort(key=lambda e: (e.time, e.frame))
        return self.events, self.systems

    def emit(self, f: Fact, kind: str, *, to_ue: bool = False, **fields) -> None:
        ue, server = (f.server, f.client) if to_ue else (f.client, f.server)
        domain = fields.pop("domain", f.domain if not to_ue else uri_host(f.from_uri))
        system = self.systems.of_address(server) or self.systems.of_host(domain)
        fields.setdefault("outcome", _outcome(f))
        fields.setdefault("status", f.status)
        fields.setdefault("end", f.end)
        fields.setdefault("service", f.service)
        self.events.append(Event(
            kind, fields.pop("time", f.time), f.frames, "to-ue" if to_ue else "from-ue", ue, server,
            system=system, call_id=f.call_id, domain=domain, all_frames=f.all_frames,
            **fields))

    # -- SIP ------------------------------------------------------------------------------------------
    def _register(self, f: Fact) -> None:
        kind = "deregistration" if f.expires == 0 else "registration"
        detail = "after a 401/407 challenge" if f.challenged else None
        if f.status in (401, 407):
            detail = "challenged, no authenticated retry in the capture"
        elif f.reason:  # a rejection: its status and Warning first
            detail = "; ".join(filter(None, (f.reason, detail)))
        self.emit(f, kind, impu=f.to_uri, instance=f.instance, detail=detail)
        if f.mc_body and kind == "registration":
            self.emit(f, "service-authorisation", impu=f.to_uri, identity=f.mc_uri, client_id=f.client_id,
                      instance=f.instance)

    def _publish(self, f: Fact) -> None:
        for change in self.publications.publish(f):
            self._publication(change)

    def _publication(self, c: Change) -> None:
        """Events of one publication change: service authorisation, or one (de)affiliation per group."""
        f = c.fact
        detail = "; ".join(filter(None, (f.reason if not c.applied else None, c.note)))
        common = {"detail": detail, "transition": c.transition, "impu": c.impu, "client_id": c.client_id,
                  "service": c.service}
        if c.transition == "expiry":  # nobody asked: the lifetime ran out
            common |= {"time": c.time, "status": None, "end": None, "outcome": "success"}
        if c.event == "poc-settings":
            if c.transition in ("initial", "modify"):
                self.emit(f, "service-authorisation", identity=f.mc_uri or f.claims_mc_id or c.identity,
                          **common)
            return
        for group in sorted(c.added):
            self.emit(f, "affiliation", group=group, identity=c.identity, **common)
        for group in sorted(c.removed):
            self.emit(f, "deaffiliation", group=group, identity=c.identity, **common)
        if c.unknown and c.transition in ("remove", "expiry"):
            self.emit(f, "deaffiliation", identity=c.identity, **common)

    def _notify(self, f: Fact) -> None:
        aff = f.affiliation
        if aff is None or aff.kind != "notify":
            return
        for entry in aff.entries:
            self.emit(f, "affiliation-status", to_ue=True, group=entry.group, identity=aff.entity,
                      client_id=entry.client, impu=f.to_uri, detail=entry.status)

    def _invite(self, f: Fact) -> None:
        to_ue = sent_to_ue(f)
        ue = f.server if to_ue else f.client
        if f.call_id in self.calls:  # a re-INVITE inside a known call
            self.calls.move_to_end(f.call_id)
            return
        if f.status is not None and 300 <= f.status < 400:
            self.emit(f, "redirect", to_ue=to_ue, peer=f.contact, detail=f.reason, impu=f.from_uri)
        session = f.session_type or ("private" if f.recipients or f.calling_user else None)
        if to_ue and f.calling_group:
            group, peer, kind, family = f.calling_group, None, "group-call-incoming", "group"
        elif session in ("prearranged", "chat") and not to_ue:
            group, peer, family = f.mc_uri, None, "group"
            kind = _CALL_KINDS[(session, True)]
        elif session == "private":
            group, family, kind = None, "private", "private-call-setup"
            peer = f.calling_user if to_ue else (f.recipients[0] if f.recipients else f.called_party)
        else:
            return
        identity = (f.mc_uri or f.called_party) if to_ue else None
        impu = f.to_uri if to_ue else f.from_uri
        self.emit(f, kind, to_ue=to_ue, group=group, peer=peer, identity=identity, impu=impu,
                  client_id=f.client_id, detail=f.reason)
        if f.status is not None and f.status < 300:
            ids = {"group": group, "peer": peer, "identity": identity, "impu": impu, "client_id": f.client_id}
            self.calls[f.call_id] = (family, ue, f.service, ids)
            self.floor.add_call(f, to_ue, self.events[-1])
            if len(self.calls) > self.limits.calls:
                self.calls.popitem(last=False)
                self.forgotten_calls[0] += 1
                if self.forgotten_calls[1] is None:
                    self.forgotten_calls[1] = f.frames[0]
            if family == "private":
                self.emit(replace(f, time=f.end or f.time), "private-call-established", to_ue=to_ue,
                          peer=peer, identity=identity, impu=impu, client_id=f.client_id)

    def _bye(self, f: Fact) -> None:
        family, ue, service, call = self.calls.pop(f.call_id)
        self.floor.end_call(f.call_id, f.time)
        to_ue, f = f.client != ue, replace(f, service=f.service or service)
        if family == "group":
            self.emit(f, "group-call-leave", to_ue=to_ue, detail=f.reason, **call)
        else:
            migration = None if f.reason is None else bool(self.migration_reason.search(f.reason))
            self.emit(f, "private-call-release", to_ue=to_ue, detail=f.reason, migration=migration, **call)

    # -- HTTP and TLS --------------------------------------------------------------------------------
    def _http(self, f: Fact) -> None:
        if f.token is not None:
            self.emit(f, "token-request", detail=f.token.grant_type, identity=f.claims_mc_id)
        elif f.xcap is not None:
            kind = "profile-retrieval" if f.xcap.is_user_profile else "config-retrieval"
            outcome = "success" if f.status in (200, 304) else _outcome(f)
            self.emit(f, kind, identity=f.xcap.xui or f.claims_mc_id, outcome=outcome,
                      detail=f.reason or f.xcap.auid)

    def _tls(self, f: Fact) -> None:
        kind = {"cms": "config-access-encrypted", "idms": "token-request"}.get(
            self.systems.server_kind(f.domain) or "")
        if kind:
            self.emit(f, kind, outcome="encrypted", detail=f"TLS to {f.domain}")


def _always(f: Fact) -> bool:
    return True


def _may_call(f: Fact) -> bool:
    """An INVITE that names no MC call (no session type, recipient, caller) and is no 3xx makes no event."""
    return bool(300 <= (f.status or 0) < 400 or f.session_type or f.recipients or f.calling_user
                or f.calling_group)


def _may_http(f: Fact) -> bool:
    return f.token is not None or f.xcap is not None


#: method → (what gives its facts meaning, whether a fact of it can mean anything at all: pass 1 keeps only
#: those, so a flood of OPTIONS or of plain INVITEs costs no memory).
_HANDLERS = {
    "REGISTER": (_Builder._register, _always),
    "PUBLISH": (_Builder._publish, lambda f: f.event_package in PACKAGES),
    "NOTIFY": (_Builder._notify, lambda f: f.affiliation is not None and f.affiliation.kind == "notify"),
    "INVITE": (_Builder._invite, _may_call),
    "BYE": (_Builder._bye, _always),
    "HTTP-GET": (_Builder._http, _may_http),
    "HTTP-POST": (_Builder._http, _may_http),
    "TLS": (_Builder._tls, _always),
}


def _meaningful(f: Fact) -> bool:
    _, may_mean = _HANDLERS.get(f.method, (None, None))
    return may_mean is not None and may_mean(f)


def extract_events(items: Iterable, systems: SystemMap | None = None,
                   migration_reason: re.Pattern = MIGRATION_REASON, problems: list | None = None,
                   capture_end: Callable[[], float | None] | None = None,
                   limits: Limits = DEFAULT_LIMITS) -> tuple[list[Event], SystemMap]:
    """Decoded items (Messages and TlsHellos, capture order) → events in time order, and the systems.

    ``capture_end`` says, once the items are read, when the capture's last packet was: a publication
    whose lifetime ran out by then expired. Without it, the last decoded item's time is the end.
    ``limits`` caps the tables (open transactions, calls, publications, inferred domains).
    """
    last = [None]
    floor: list[FloorMessage] = []  # floor control messages that can make events (bounded)

    def timed(items: Iterable):
        for item in items:
            last[0] = item.time if last[0] is None else max(last[0], item.time)
            if isinstance(item, FloorMessage) and floor_kept(item):
                if len(floor) < limits.floor_messages:
                    floor.append(item)
                elif problems is not None and len(floor) == limits.floor_messages:
                    floor.append(item)  # one past the cap marks it reported
                    problems.append(mcfacts.Problem(
                        "table-full", f"more than {limits.floor_messages} floor control messages from frame "
                        f"{item.frame} on: later ones make no event; raise the cap with --limit "
                        "floor_messages=N", (item.frame,)))
            yield item

    facts, observed = collect_facts(timed(items), problems, limits, meaningful=_meaningful)
    ends = [t for t in (capture_end() if capture_end else None, last[0]) if t is not None]
    builder = _Builder(systems, migration_reason, problems, limits)
    return builder.build(facts, max(ends) if ends else None, observed, floor[:limits.floor_messages])
