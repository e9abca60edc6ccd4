"""Publications (RFC 3903; TS 24.379 cl. 9): where an MC client's affiliations really live.

A client's affiliation set (``Event: presence``) and its service settings (``Event: poc-settings``) are
each a *publication* at the MC server, named by the entity-tag the server gives in ``SIP-ETag``:

* **initial** — a PUBLISH with a body and no ``SIP-If-Match``; its 2xx names the publication;
* **refresh** — ``SIP-If-Match`` and no body: the state is kept, the lifetime renewed;
* **modify** — ``SIP-If-Match`` and a body: the body replaces the state (a full set, not a delta);
* **remove** — ``Expires: 0`` (often with no body, no Contact, a new Call-ID): the publication ends;
* **expiry** — no refresh before the lifetime the 2xx granted ran out: the publication ended then (only
  reported when the capture reaches that time).

Every 2xx may carry a new ``SIP-ETag``, which the next request must use. Failed requests (no 2xx) change
nothing. A PUBLISH is tied to its publication by entity-tag first (scoped to the event package and the
Request-URI host, whose server issued it); an initial PUBLISH, or one whose tag this capture never saw
issued, by the same UE (MC client ID, MC service ID, IMPU, or address, never two that contradict) and
service, and the change says so. A new initial publication of a UE replaces the one it already had for that
service at that server. Call-ID and Contact never tie anything.

``Publications.publish(fact)`` returns the ``Change``s a PUBLISH (and the expiries before it) made;
``expire(until)`` the expiries up to the end of the capture. Memory: at most ``Limits.publications`` live
publications (the least recently used is forgotten beyond, with a ``table-full`` problem) and a quarter as
many ended ones; one UE token (an address, which a proxy shares with all its UEs) ties to at most the
``_FANOUT`` most recent publications, so tying a PUBLISH costs the same however many are live.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, replace

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.meaning.events.facts import Fact
from analyzer.meaning.mcfacts import Problem

_FANOUT = 64  # live publications one token ties to, the most recent (a UE has a few per package and server)
PACKAGES = ("presence", "poc-settings")  # affiliation and service-authorisation publications
_TAG_SHOWN = 24  # characters of an entity-tag quoted in a note


@dataclass(frozen=True, slots=True)
class Change:
    """What one PUBLISH (or an expiry) did to one publication, for the events stage.

    ``added``/``removed``: groups the change adds or takes away (attempted ones when it failed);
    ``unknown``: it ended a publication whose groups the capture never showed. ``fact`` is the exchange
    (for an expiry, the last one that set the lifetime); ``time`` when the change happened.
    """

    transition: str
    event: str  # the event package
    fact: Fact
    time: float
    note: str  # which publication, how the PUBLISH was tied to it
    applied: bool  # a 2xx (or an expiry) made it happen
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    unknown: bool = False
    identity: str | None = None
    impu: str | None = None
    client_id: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class _Ended:
    """How a publication ended: ``expiry``, ``remove``, ``replaced`` (a new initial one of the same UE) or
    ``forgotten`` (the table was full)."""

    pub: _Publication
    cause: str
    when: float

    def text(self, now: float) -> str:
        how = {"expiry": "expired", "remove": "was removed",
               "replaced": "was replaced by a new initial PUBLISH",
               "forgotten": "was forgotten (too many publications)"}[self.cause]
        return f"(its publication {how} {max(now - self.when, 0.0):.1f} s before)"


class _Publication:
    """One live publication (mutable while the capture plays)."""

    __slots__ = ("client_id", "event", "expires_at", "fact", "granted", "groups", "identity", "impu", "key",
                 "scope", "service", "tag", "ue", "version")

    def __init__(self, key: int, f: Fact, groups: frozenset[str] | None, ids: dict):
        self.key, self.event, self.scope = key, f.event_package, f.domain
        self.service, self.ue = f.service, f.client
        self.identity, self.impu, self.client_id = ids["identity"], ids["impu"], ids["client_id"]
        self.groups, self.tag, self.version = groups, None, 0
        self.fact, self.granted, self.expires_at = f, None, None

    def tokens(self) -> list[tuple]:
        found = (("client", self.client_id), ("identity", self.identity), ("impu", self.impu),
                 ("ue", self.ue))
        return [(self.event, self.scope, kind, value) for kind, value in found if value]


def short(tag: str | None) -> str:
    if not tag:
        return "(no entity-tag)"
    return tag if len(tag) <= _TAG_SHOWN else tag[:_TAG_SHOWN] + "…"


def _transition(f: Fact) -> str | None:
    if f.expires == 0:
        return "remove"
    if f.if_match is None:
        return "initial" if f.has_body else None  # RFC 3903 §4.1: an initial PUBLISH carries a body
    return "modify" if f.has_body else "refresh"


def _stated(f: Fact) -> frozenset[str] | None:
    """The affiliation set a PUBLISH states (None: it states none, e.g. an info-only body)."""
    aff = f.affiliation
    if aff is None or aff.kind != "publish" or aff.clears:
        return None
    return aff.groups


class Publications:
    """The publications of one capture, fed PUBLISH facts in time order."""

    def __init__(self, problems: list | None = None, cap: int = DEFAULT_LIMITS.publications):
        self.problems = problems
        self.cap, self.ended_cap = cap, max(1, cap // 4)  # ended ones explain a late request naming one
        self.live: OrderedDict[int, _Publication] = OrderedDict()  # in order of last use
        self.by_tag: dict[tuple, int] = {}  # (event, scope, entity-tag) → key
        self.by_token: dict[tuple, dict[int, None]] = {}  # (event, scope, token kind, value) → keys
        self.ended: OrderedDict[tuple, _Ended] = OrderedDict()  # (event, scope, entity-tag) → how it ended
        self.timers: list[tuple[float, int, int, int]] = []  # (expires_at, seq, key, version)
        self.seq = 0
        self.full = False

    # -- public --------------------------------------------------------------------------------------
    def publish(self, f: Fact) -> list[Change]:
        """The expiries due before ``f`` was sent, then what ``f`` did (if it is a publication at all)."""
        out = self.expire(f.time, inclusive=False)
        if f.event_package in PACKAGES:
            change = self._publish(f)
            if change is not None:
                out.append(change)
        return out

    def expire(self, until: float | None, inclusive: bool = True) -> list[Change]:
        """Publications whose lifetime ran out by ``until`` (the end of the capture, or the next PUBLISH)."""
        out: list[Change] = []
        while until is not None and self.timers and (self.timers[0][0] < until
                                                     or (inclusive and self.timers[0][0] == until)):
            when, _, key, version = heapq.heappop(self.timers)
            pub = self.live.get(key)
            if pub is None or pub.version != version:
                continue
            self._end(pub, "expiry", when)
            note = (f"publication {short(pub.tag)} expired: no refresh within the {pub.granted} s granted at "
                    f"frame {pub.fact.frames[-1]}")
            out.append(self._change("expiry", pub, pub.fact, note, True, removed=pub.groups, time=when))
        return out

    # -- one PUBLISH ---------------------------------------------------------------------------------
    def _publish(self, f: Fact) -> Change | None:
        transition = _transition(f)
        if transition is None:
            return None
        affiliation = f.event_package == "presence"
        stated = _stated(f) if affiliation else None
        if affiliation and transition in ("initial", "modify") and stated is None:
            transition = "refresh" if f.if_match else None  # a body without pidf states no set
            if transition is None:
                return None
        pub, ref = self._tie(f)
        if pub is None and affiliation and f.affiliation is None and f.service is None:
            return None  # nothing says this presence publication is an MC one
        ok = f.status is not None and 200 <= f.status < 300
        if transition == "initial":
            change = self._initial(f, pub, stated, ref, ok)
        elif transition == "remove":
            change = self._remove(f, pub, ref, ok)
        else:
            change = self._update(f, pub, transition, stated, ref, ok)
        if f.status == 412 and f.if_match:
            unknown = f"the server did not know entity-tag {short(f.if_match)}"
            return replace(change, note=f"{change.note}: {unknown}")
        return change

    def _initial(self, f, old, stated, ref, ok) -> Change:
        """A new publication; one the same UE had for this service at this server ends (its set replaced)."""
        before = old.groups if old is not None and old.groups is not None else frozenset()
        after = stated if stated is not None else frozenset()
        removed = before - after if stated is not None else frozenset()
        ids = self._ids(f, old)
        if not ok:
            note = "initial PUBLISH" + (f", replacing {ref}" if old is not None else "")
            return self._change("initial", old, f, note, False, after - before, removed, ids=ids)
        pub = self._open(f, stated, ids)
        note = f"new publication {short(pub.tag)}" + (f", replacing {ref}" if old is not None else "")
        if old is not None:
            self._end(old, "replaced", f.time)
        return self._change("initial", pub, f, note, True, after - before, removed, ids=ids)

    def _remove(self, f, pub, ref, ok) -> Change:
        note = f"remove (Expires: 0) of {ref}"
        if pub is None or pub.groups is None:
            note += ": its groups are unknown"
        if pub is None:
            return self._change("remove", None, f, note, ok, unknown=True)
        if ok:
            self._end(pub, "remove", f.time)
        return self._change("remove", pub, f, note, ok, removed=pub.groups, unknown=pub.groups is None)

    def _update(self, f, pub, transition, stated, ref, ok) -> Change:
        """A refresh or a modify, of a publication tied to it or first seen now."""
        revived, note = False, f"{transition} of {ref}"
        if pub is None:
            if not ok:
                return self._change(transition, None, f, note, False, stated)
            pub, revived = self._adopt(f)
        before = pub.groups
        after = stated if transition == "modify" else before
        if before is None and after is not None:
            note += "; its earlier state is unknown"
        if not ok:
            return self._change(transition, pub, f, note, False, _added(after, before), _minus(before, after))
        pub.groups, tag = after, pub.tag
        self._renew(pub, f)
        if pub.tag != tag and tag is not None:
            note += f" (entity-tag now {short(pub.tag)})"
        if revived:  # its groups were reported gone (expiry, remove) but the server still knew the tag
            return self._change(transition, pub, f, f"{note}; the server still knew it: its groups count "
                                "again", True, after)
        return self._change(transition, pub, f, note, True, _added(after, before), _minus(before, after))

    # -- tying a request to a publication ----------------------------------------------------------------
    def _tie(self, f: Fact) -> tuple[_Publication | None, str]:
        """The publication a PUBLISH is about (None: not known), and how it was found, for people."""
        if f.if_match:
            key = (f.event_package, f.domain, f.if_match)
            pub = self.live.get(self.by_tag.get(key, -1))
            if pub is not None:
                return self._touch(pub), f"publication {short(pub.tag)}"
            ended = self.ended.get(key)
            why = f"entity-tag {short(f.if_match)} " + (ended.text(f.time) if ended
                                                        else "not issued in this capture")
            pub = self._same_ue(f)
            if pub is not None:
                return self._touch(pub), f"{why}, tied by UE and service to publication {short(pub.tag)}"
            return None, why
        pub = self._same_ue(f)
        if pub is None:
            return None, "no publication of this UE and service before"
        how = "tied by UE and service, without SIP-If-Match"
        return self._touch(pub), f"publication {short(pub.tag)} ({how})"

    def _same_ue(self, f: Fact) -> _Publication | None:
        """The most recently used live publication of the same UE, service and server, if any."""
        probe = _Publication(-1, f, None, _stated_ids(f))
        best = None
        for token in probe.tokens():  # strongest evidence first
            for key in self.by_token.get(token, ()):
                pub = self.live[key]
                if not _contradict(pub, probe) and (best is None or self._age(pub) > self._age(best)):
                    best = pub
            if best is not None:
                return best
        return None

    def _age(self, pub: _Publication) -> float:
        return pub.fact.end or pub.fact.time

    # -- the tables --------------------------------------------------------------------------------------
    def _open(self, f: Fact, groups: frozenset[str] | None, ids: dict) -> _Publication:
        if len(self.live) >= self.cap:
            oldest = self.live[next(iter(self.live))]
            self._end(oldest, "forgotten", f.time)
            if not self.full and self.problems is not None:
                self.full = True
                self.problems.append(Problem(
                    "table-full", f"more than {self.cap} publications at once: the least recently used are "
                    f"forgotten from frame {f.frames[0]} on; raise the cap with --limit publications=N",
                    f.frames[:1]))
        self.seq += 1
        pub = _Publication(self.seq, f, groups, ids)
        self.live[pub.key] = pub
        for token in pub.tokens():
            keys = self.by_token.setdefault(token, {})
            keys[pub.key] = None
            if len(keys) > _FANOUT:
                del keys[next(iter(keys))]
        self._renew(pub, f)
        return pub

    def _adopt(self, f: Fact) -> tuple[_Publication, bool]:
        """A publication first seen in mid-life: its tag was issued before the capture, or belongs to one
        that ended here. Returns it and whether its groups had been reported gone (and now count again)."""
        ended = self.ended.pop((f.event_package, f.domain, f.if_match), None)
        old = ended.pub if ended else None
        pub = self._open(f, old.groups if old else None, self._ids(f, old))
        return pub, bool(ended and ended.cause in ("expiry", "remove") and old.groups)

    def _renew(self, pub: _Publication, f: Fact) -> None:
        """A 2xx: the (new) entity-tag, the granted lifetime and the exchange that set them."""
        tag = f.etag or (pub.tag if pub.tag is not None else f.if_match)
        if tag != pub.tag:
            if pub.tag is not None and self.by_tag.get((pub.event, pub.scope, pub.tag)) == pub.key:
                del self.by_tag[(pub.event, pub.scope, pub.tag)]
            pub.tag = tag
            if tag is not None:
                self.by_tag[(pub.event, pub.scope, tag)] = pub.key
        lifetime = f.granted if f.granted is not None else f.expires
        pub.fact, pub.granted, pub.version = f, lifetime, pub.version + 1
        pub.expires_at = None if lifetime is None else (f.end or f.time) + lifetime
        if pub.expires_at is not None:
            heapq.heappush(self.timers, (pub.expires_at, self.seq, pub.key, pub.version))
            if len(self.timers) > 2 * len(self.live) + 64:  # drop the stale entries refreshes left behind
                self.timers = [t for t in self.timers if (p := self.live.get(t[2])) and p.version == t[3]]
                heapq.heapify(self.timers)

    def _touch(self, pub: _Publication) -> _Publication:
        self.live.move_to_end(pub.key)
        return pub

    def _end(self, pub: _Publication, cause: str, when: float) -> None:
        del self.live[pub.key]
        for token in pub.tokens():
            keys = self.by_token.get(token)
            if keys is not None:
                keys.pop(pub.key, None)
                if not keys:
                    del self.by_token[token]
        if pub.tag is not None:
            tag_key = (pub.event, pub.scope, pub.tag)
            if self.by_tag.get(tag_key) == pub.key:
                del self.by_tag[tag_key]
            if len(self.ended) >= self.ended_cap:
                self.ended.popitem(last=False)
            self.ended[tag_key] = _Ended(pub, cause, when)

    # -- records -------------------------------------------------------------------------------------
    @staticmethod
    def _ids(f: Fact, pub: _Publication | None) -> dict:
        """Who published: what the request says, else what the publication said (a bare remove names
        little)."""
        ids = _stated_ids(f)
        if pub is not None:
            ids = {name: value or getattr(pub, name) for name, value in ids.items()}
        return ids

    def _change(self, transition, pub, f, note, applied, added=None, removed=None, *, unknown=False,
                ids=None, time=None) -> Change:
        ids = ids or self._ids(f, pub)
        return Change(transition, f.event_package or "", f, f.time if time is None else time, note, applied,
                      frozenset(added or ()), frozenset(removed or ()), unknown,
                      identity=ids["identity"] or ids["impu"],  # the IMPU stands in for an MC service ID
                      impu=ids["impu"], client_id=ids["client_id"],
                      service=f.service or (pub.service if pub else None))


def _stated_ids(f: Fact) -> dict:
    """The identities a PUBLISH itself states: pidf entity / MC info request-uri, From, pidf tuple id."""
    aff = f.affiliation
    return {"identity": (aff.entity if aff else None) or f.mc_uri, "impu": f.from_uri,
            "client_id": (aff.client if aff else None) or f.client_id}


def _added(after: frozenset[str] | None, before: frozenset[str] | None) -> frozenset[str]:
    """Groups a new set adds: all of them when the earlier set is unknown."""
    return frozenset() if after is None else after - (before or frozenset())


def _minus(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str]:
    """Groups in ``a`` and not in ``b``; nothing when either set is unknown."""
    return a - b if a is not None and b is not None else frozenset()


def _contradict(a: _Publication, b: _Publication) -> bool:
    """Two publishers that name different client IDs, MC service IDs or IMPUs are not one UE; different
    MC services (both known) are not one publication."""
    pairs = ((a.client_id, b.client_id), (a.identity, b.identity), (a.impu, b.impu), (a.service, b.service))
    return any(x and y and x != y for x, y in pairs)
