"""From transactions, HTTP exchanges and TLS hellos to MC events: the only place that decides meaning.

Two passes. The first (``analyzer.meaning.events.collect``) streams: every SIP transaction, HTTP
request/response pair and TLS hello becomes a small ``Fact``, so no message body is kept, and the facts wait
in a ``FactStore``. The second reads them once, in time order: it follows each affiliation and
service-authorisation publication (``analyzer.meaning.events.publications``: RFC 3903 entity-tags, full-set
replacement, removal and expiry), gives BYEs the meaning of the call they end, and builds ``Event``
records. The MC systems are inferred before it reads a fact, from every (domain, server) pair pass 1 saw
(``factstore.Named``), so each event is labelled with its system as it is made (and commands and TLS
hellos, which mean something only towards known servers, read in their place). Events cite the frames
that completed their messages (``Event.frames``, as Wireshark) and keep every frame that carried their
bytes (``Event.all_frames``).
"""

from __future__ import annotations

import heapq
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from operator import attrgetter

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.limits import Limits
from analyzer.base.runs import SortedRuns
from analyzer.meaning import mcfacts
from analyzer.meaning.events import MIGRATION_REASON, Event, event_of, event_values
from analyzer.meaning.events.collect import Collector, collect_facts
from analyzer.meaning.events.facts import Fact, sent_to_ue, uri_host
from analyzer.meaning.events.factstore import FactStore, Named, read
from analyzer.meaning.events.floor import FloorCalls, keep_floor
from analyzer.meaning.events.preestablished import PreEstablished, is_setup
from analyzer.meaning.events.publications import PACKAGES, Change, Publications
from analyzer.meaning.events.shard import FactShare
from analyzer.meaning.problems import Problems
from analyzer.meaning.systems import SystemMap
from analyzer.messages.floor import FloorMessage

_AFTER = 1 << 62  # the position of what the end of the capture decides
#: Events to a packed run, and how many a capture must make before they are packed (``extract_events``
#: with ``packed``): a drive test's few thousand cost nothing more, a core capture's take ~70 bytes each.
EVENT_RUN, EVENT_HOLD = 4096, 32768

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
                 limits: Limits = DEFAULT_LIMITS, hold: float = math.inf):
        self.configured = systems
        self.migration_reason = migration_reason
        self.problems = problems
        self.limits = limits
        #: the events so far, in order of (time, frame, position, emission): packed beyond ``hold``
        self.events = SortedRuns(EVENT_RUN, hold, event_values, event_of)
        self.last: Event | None = None  # the latest made
        self.publications = Publications(problems, limits.publications)
        # call_id → (group|private, UE address, service, identity fields for the BYE's event), oldest first
        self.calls: OrderedDict[str, tuple[str, str, str | None, dict]] = OrderedDict()
        self.forgotten_calls: list = [0, None]  # calls forgotten beyond ``limits.calls``, the first frame
        self.floor = FloorCalls(limits.calls)  # where each call's media flows: floor events (``floor``)
        self.pre = PreEstablished(limits.calls)  # pre-established sessions, by Call-ID
        self.named = Named()  # the Call-IDs REFERs and INVITEs name (``factstore.Named``)
        self.systems: SystemMap = SystemMap([])  # (inferred before the first fact is read)
        self.position = 0  # of the fact being read: events of one time and frame come in this order

    def build(self, facts: Iterable[Fact], end: float | None = None, observed: Iterable[tuple] = (),
              floor: list | None = None, named: Named | None = None) -> tuple[SortedRuns, SystemMap]:
        """Events of ``facts`` (in ``fact_order``, read once); ``end``: when the capture ends (publications
        expire up to then); ``observed``: more (domain, server) pairs to infer systems from; ``floor``:
        floor control messages, given to the calls that negotiated their ports; ``named``: what pass 1
        knows of the facts — Call-IDs named, (domain, server) pairs (None: those of ``facts``)."""
        if named is None:
            facts = list(facts)
            named = Named.of(facts, self.limits)
        self.named = named
        inferred = SystemMap.infer(named.observed(observed), self.limits.domains, self.problems)
        if named.unpaired and self.problems is not None:
            self.problems.append(mcfacts.Problem(
                "table-full", f"more than {named.cap} distinct domain and server pairs in requests: later "
                f"ones do not count in inferring systems ({named.unpaired} in all); raise the cap with "
                "--limit domains=N"))
        self.systems = self.configured.merged_with(inferred) if self.configured else inferred
        deferred = []  # BYEs of calls not known yet
        floor = floor or []
        control = [m for m in floor if m.name == "MCPC"]  # (joins pre-established sessions to calls)
        self.floor.heard = {end for m in floor if m.name == "MCPT" for end in (m.src, m.dst)}
        for f in heapq.merge(facts, control, key=attrgetter("time")) if control else facts:
            if type(f) is FloorMessage:
                self.pre.control(self, f)
                continue
            handler, _ = _HANDLERS.get(f.method, (None, None))
            if handler is None:
                continue
            if f.method == "BYE" and f.call_id not in self.calls and f.call_id not in self.pre:
                if f.call_id in self.named.opened:  # (else no call it could end ever comes)
                    deferred.append(f)
            else:
                handler(self, f)
            self.position += 1
        self.position = _AFTER
        for f in deferred:
            if f.call_id in self.calls or f.call_id in self.pre:
                self._bye(f)
        self.pre.settle_all(self)
        for change in self.publications.expire(end):
            self._publication(change)
        for event in self.floor.events(floor):
            self._add(event)
        count, frame = self.forgotten_calls
        count += self.pre.forgotten
        if count and self.problems is not None:
            self.problems.append(mcfacts.Problem(
                "table-full", f"more than {self.limits.calls} calls awaited their BYE at once from frame "
                f"{frame} on: the oldest were forgotten, their BYE ends no call ({count} in all); raise the "
                "cap with --limit calls=N", (frame,)))
        return self.events, self.systems

    def emit(self, f: Fact, kind: str, *, to_ue: bool = False, **fields) -> None:
        ue, server = (f.server, f.client) if to_ue else (f.client, f.server)
        domain = fields.pop("domain", f.domain if not to_ue else uri_host(f.from_uri))
        system = self.systems.of_address(server) or self.systems.of_host(domain)
        fields.setdefault("outcome", _outcome(f))
        fields.setdefault("status", f.status)
        fields.setdefault("end", f.end)
        fields.setdefault("service", f.service)
        event = Event(kind, fields.pop("time", f.time), f.frames, "to-ue" if to_ue else "from-ue", ue, server,
                      system=system, call_id=f.call_id, domain=domain, all_frames=f.all_frames, **fields)
        self._add(event)

    def _add(self, event: Event) -> None:
        self.events.add((event.time, event.frame, self.position, len(self.events)), event)
        self.last = event

    # -- SIP ------------------------------------------------------------------------------------------
    def _register(self, f: Fact) -> None:
        kind = "deregistration" if f.expires == 0 else "registration"
        detail = "after a 401/407 challenge" if f.challenged else None
        if f.status in (401, 407):
            detail = "challenged, no authenticated retry in the capture"
        elif f.reason:  # a rejection: its status and Warning first
            detail = "; ".join(filter(None, (f.reason, detail)))
        self.emit(f, kind, impu=f.to_uri, instance=f.instance, detail=detail, impi=f.impi)
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
        common["evidence"] = "publish"
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
                      client_id=entry.client, impu=f.to_uri, detail=entry.status, evidence="notify")

    def _command(self, f: Fact) -> None:
        """An affiliation command the MC server sends a client (remote affiliation, negotiated mode): the
        client is (de)affiliated by another user's or a dispatcher's request. A command a client sends
        about someone else makes no event of its own (the target's events show what it did)."""
        if self.systems.of_address(f.client) is None:
            return
        for entry in f.affiliation.entries:
            kind = "affiliation" if entry.status == "affiliate" else "deaffiliation"
            self.emit(f, kind, to_ue=True, group=entry.group, impu=f.to_uri, evidence="remote",
                      detail="affiliation command")

    def implicit_affiliation(self, f: Fact, kind: str, group: str | None) -> None:
        """A successful chat join, or emergency / imminent-peril group call, affiliates the client to the
        group without any PUBLISH (24.379 cl. 9)."""
        evidence = "implicit-chat" if kind == "group-call-join" else \
            "implicit-emergency" if kind == "group-call-originate" and f.emergency else None
        if evidence and group and f.status is not None and f.status < 300:
            self.emit(f, "affiliation", group=group, impu=f.from_uri, client_id=f.client_id,
                      evidence=evidence, detail=f"implied by {kind}")

    def _invite(self, f: Fact) -> None:
        to_ue = sent_to_ue(f)
        ue = f.server if to_ue else f.client
        if f.call_id in self.calls:  # a re-INVITE inside a known call
            self.calls.move_to_end(f.call_id)
            return
        if f.call_id in self.pre:  # a re-INVITE modifying a pre-established session
            self.pre.touch(f.call_id)
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
            if is_setup(f, to_ue, self.named.referred):
                self.pre.setup(self, f)
            return
        identity = (f.mc_uri or f.called_party) if to_ue else None
        impu = f.to_uri if to_ue else f.from_uri
        media = f.answer_media if to_ue else f.offer_media  # (the UE's own SDP)
        self.emit(f, kind, to_ue=to_ue, group=group, peer=peer, identity=identity, impu=impu,
                  client_id=f.client_id, detail=f.reason, via="on-demand", media=media)
        started = self.last  # the call's event (an implicit affiliation may follow it)
        if not to_ue:
            self.implicit_affiliation(f, kind, group)
        if f.status is not None and f.status < 300:
            ids = {"group": group, "peer": peer, "identity": identity, "impu": impu, "client_id": f.client_id,
                   "via": "on-demand", "media": media}
            self.calls[f.call_id] = (family, ue, f.service, ids)
            self.floor.add_call(f, to_ue, started)
            if len(self.calls) > self.limits.calls:
                self.calls.popitem(last=False)
                self.forgotten_calls[0] += 1
                if self.forgotten_calls[1] is None:
                    self.forgotten_calls[1] = f.frames[0]
            if family == "private":
                self.emit(replace(f, time=f.end or f.time), "private-call-established", to_ue=to_ue,
                          peer=peer, identity=identity, impu=impu, client_id=f.client_id, via="on-demand")

    def _bye(self, f: Fact) -> None:
        if f.call_id in self.pre:
            self.pre.release(self, f)
            return
        family, ue, service, call = self.calls.pop(f.call_id)
        self.floor.end_call(f.call_id, f.time)
        to_ue, f = f.client != ue, replace(f, service=f.service or service)
        self.end_call(f, family, call, to_ue=to_ue)

    def _refer(self, f: Fact) -> None:
        self.pre.refer(self, f)

    def end_call(self, f: Fact, family: str, call: dict, *, to_ue: bool, **fields) -> None:
        """The event that ends a call: ``call`` holds the fields its set-up gave (``fields`` override)."""
        call = call | fields
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
    """An INVITE that names no MC call (no session type, recipient, caller), is no 3xx and no MC INVITE at
    all makes no event."""
    return bool(300 <= (f.status or 0) < 400 or f.session_type or f.recipients or f.calling_user
                or f.calling_group or f.service)  # an MC INVITE naming no call: a pre-established session


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
    "REFER": (_Builder._refer, _always),
    "MESSAGE": (_Builder._command, lambda f: f.affiliation is not None and f.affiliation.kind == "command"),
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
                   limits: Limits = DEFAULT_LIMITS, share: FactShare | None = None, packed: bool = False
                   ) -> tuple[list[Event] | SortedRuns, SystemMap]:
    """Decoded items (Messages and TlsHellos, capture order) → events in time order, and the systems.
    ``packed``: the events as made, packed once there are many (``EVENT_HOLD``), to be read in order as
    often as wanted: a core capture's are then ~70 bytes each, not ~650.

    ``capture_end`` says, once the items are read, when the capture's last packet was: a publication
    whose lifetime ran out by then expired. Without it, the last decoded item's time is the end.
    ``limits`` caps the tables (open transactions, calls, publications, inferred domains). ``share``
    (``fact_share``, given to the decode too): the facts the decoder's worker collected.
    """
    last = [None]
    floor: list[FloorMessage] = []  # floor control messages that can make events (bounded)

    def timed(items: Iterable):
        for item in items:
            last[0] = item.time if last[0] is None else max(last[0], item.time)
            keep_floor(floor, item, limits, problems)
            yield item

    store, observed = collect_facts(timed(items), problems, limits, meaningful=_meaningful,
                                    before_close=share.add_caps if share is not None else None)
    stores = [store]
    if share is not None:
        stores, observed = share.merged(stores, observed)
    ends = [t for t in (capture_end() if capture_end else None, last[0]) if t is not None]
    builder = _Builder(systems, migration_reason, problems, limits, EVENT_HOLD if packed else math.inf)
    named = Named.within(limits)
    for store in stores:
        named.update(store.named)
    events, systems = builder.build(read(*stores), max(ends) if ends else None, observed,
                                    floor[:limits.floor_messages], named)
    return (events if packed else list(events)), systems


def fact_share(problems: Problems, limits: Limits = DEFAULT_LIMITS) -> FactShare:
    """Pass 1 split with the decoder's worker (``analyzer.meaning.events.shard``): give it to the decode as
    ``DecodeOptions.share`` and to ``extract_events``; ``problems`` receives the worker's."""
    return FactShare(problems, limits, _meaningful)


def fact_collector(problems: list, limits: Limits = DEFAULT_LIMITS) -> Collector:
    """Pass 1 fed one item at a time (``feed``), for ``mcxa watch``: its facts so far (``so_far``) can go
    to ``build_events`` at any moment; ``close`` ends it, giving every fact (``factstore.read``)."""
    return Collector(problems, limits, _meaningful)


def build_events(facts: list[Fact] | FactStore, systems: SystemMap | None, migration_reason: re.Pattern,
                 problems: list | None, end: float | None, observed: Iterable[tuple] = (),
                 limits: Limits = DEFAULT_LIMITS, floor: list | None = None) -> tuple[list[Event], SystemMap]:
    """Pass 2 over ``facts`` (sorted by time, or a complete store: read once) up to ``end``: what
    ``extract_events`` gives after pass 1; ``floor``: the floor control messages so far (those
    ``keep_floor`` keeps, in capture order)."""
    builder = _Builder(systems, migration_reason, problems, limits)
    if isinstance(facts, FactStore):
        events, systems = builder.build(read(facts), end, observed, floor, facts.named)
    else:
        events, systems = builder.build(facts, end, observed, floor)
    return list(events), systems
