"""UE sessions: all events of one device, linked across MC systems and identity changes.

After migration the partner system gives the user a new MC service ID and IMPU (TS 23.280 §10.16.5.1), and
often the UE a new address, so grouping by identity alone sees two users. Identities are linked by
evidence, strongest first, and every link keeps its reason:

1. ``+sip.instance`` (the device's IMEI-based instance ID) — the same device;
2. ``mcptt-client-id`` — the same MC client;
3. the same message carrying two identities (an IMPU in From and an MC service ID in the MC info body,
   or the XUI of a profile retrieval and the bearer token's MC ID);
4. an identity map given by the user (``--identities FILE``);
5. continuity of the UE's IP address in time — weak: never used when the two sides carry different
   instance or client IDs (two UEs that used one address at different times stay apart), and only within
   ``address_window`` seconds.

Events that name no identity at all (a TLS hello to the configuration server) join the session that used
their address closest in time.

Every step is linear in the events: identities are looked up in dicts, components merge the smaller into
the larger, and the address steps sweep each address's users in time order. At most ``Limits.identities``
identities are linked; beyond, new ones are not (their events join a session by address), and a
``table-full`` problem says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.yamlfile import check_mapping, load_yaml
from analyzer.meaning.events import Event
from analyzer.meaning.mcfacts import Problem

ADDRESS_WINDOW = 120.0

#: Token kinds, strongest evidence first.
_STRENGTH = {"instance": 5, "client": 4, "message": 3, "map": 2, "address": 1}
_REASON = {"instance": "same +sip.instance", "client": "same mcptt-client-id",
           "message": "named together in one message", "map": "identity map",
           "address": "same IP address, continuous in time"}


@dataclass(frozen=True, slots=True)
class Link:
    """Why two identities are believed to be one device."""

    a: str
    b: str
    evidence: str  # instance | client | message | map | address
    reason: str  # for people: what was seen, where
    frames: tuple[int, ...] = ()  # the frames of the event that showed it (``Event.frames``, as Wireshark)


@dataclass(frozen=True, slots=True)
class Identity:
    value: str
    kind: str  # mc-id | impu | instance | client-id
    system: str | None
    first: float
    last: float


@dataclass(frozen=True, slots=True)
class UeSession:
    """One device: its identities (with link reasons), the systems it used, and its events in time order."""

    id: str
    identities: tuple[Identity, ...]
    links: tuple[Link, ...]
    systems: tuple[tuple[str, float, float], ...]  # (system, first, last) in order of first use
    addresses: tuple[str, ...]
    events: tuple[Event, ...]

    def mc_id(self, system: str | None = None) -> str | None:
        """The MC service ID used in ``system`` (first seen), or the first one at all; else an IMPU."""
        for kind in ("mc-id", "impu"):
            for ident in self.identities:
                if ident.kind == kind and (system is None or ident.system == system):
                    return ident.value
        return None

    def aliases(self, system: str | None = None) -> tuple[str, ...]:
        """MC service IDs and IMPUs used outside ``system``."""
        return tuple(i.value for i in self.identities
                     if i.kind in ("mc-id", "impu") and i.system != system)


@dataclass(slots=True)
class _Component:
    tokens: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)
    links: list = field(default_factory=list)  # Links, and nested lists of them (a merge nests, in order)
    first: str = ""  # the smallest token: names the component in an address link
    instance: bool = False  # holds a +sip.instance token
    client: bool = False  # holds an mcptt-client-id token

    def add(self, tokens: Iterable[str]) -> None:
        for t in tokens:
            self.tokens.add(t)
            self.first = min(self.first, t) if self.first else t
            self.instance |= t.startswith("instance:")
            self.client |= t.startswith("client-id:")


def load_identity_map(path) -> list[tuple[str, str]]:
    """``--identities FILE``: ``same: [[sip:alice@a..., sip:alice.b@b...], ...]`` — each list is one user."""
    data, where = load_yaml(path)
    check_mapping(data, where, (), {"same": list}, required=("same",))
    pairs = []
    for i, group in enumerate(data["same"]):
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(x, str) for x in group):
            raise where.error(("same", i), "expected a list of two or more identities")
        pairs += [(group[0], other) for other in group[1:]]
    return pairs


def _tokens(e: Event) -> dict[str, str]:
    """Identity tokens an event carries → their kind."""
    out = {}
    if e.instance:
        out[f"instance:{e.instance}"] = "instance"
    if e.client_id:
        out[f"client-id:{e.client_id}"] = "client-id"
    if e.identity:
        out[f"mc-id:{e.identity}"] = "mc-id"
    if e.impu and e.impu != e.identity:
        out[f"impu:{e.impu}"] = "impu"
    return out


def _ip(address: str) -> str:
    if address.startswith("["):
        return address[1:address.index("]")]
    return address.rsplit(":", 1)[0]


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[rb] = ra
        return True


class _Identities:
    """The identity tokens met so far, linked by union-find: at most ``cap`` (later ones are not linked)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.uf = _UnionFind()
        self.kinds: dict[str, str] = {}  # token → its kind
        self.by_value: dict[str, str] = {}  # identity → the first token naming it (identity maps name values)
        self.unlinked = 0  # identities met beyond the cap (each time)
        self.first_unlinked: int | None = None

    def register(self, tokens: dict[str, str], frame: int) -> dict[str, str]:
        """The tokens of one event that are (now) known."""
        known = {}
        for token, kind in tokens.items():
            if token not in self.kinds:
                if len(self.kinds) >= self.cap:
                    self.unlinked += 1
                    if self.first_unlinked is None:
                        self.first_unlinked = frame
                    continue
                self.kinds[token] = kind
                self.by_value.setdefault(_label(token), token)
            known[token] = kind
        return known

    def known(self, tokens: dict[str, str]) -> list[str]:
        return [t for t in tokens if t in self.kinds]


def build_sessions(events: Iterable[Event], identity_map: Iterable[tuple[str, str]] = (),
                   address_window: float = ADDRESS_WINDOW, max_identities: int = DEFAULT_LIMITS.identities,
                   problems: list | None = None) -> list[UeSession]:
    """Group events into UE sessions (see the module docstring for the evidence and its order)."""
    events = sorted(events, key=lambda e: (e.time, e.frame))
    order = {id(e): i for i, e in enumerate(events)}
    ids = _Identities(max_identities)
    uf = ids.uf
    links = _link(events, identity_map, ids)
    components: dict[str, _Component] = {}
    anonymous: list[Event] = []
    for e in events:
        tokens = ids.known(_tokens(e))
        if not tokens:
            anonymous.append(e)
            continue
        root = uf.find(tokens[0])
        comp = components.get(root) or components.setdefault(root, _Component())
        comp.add(tokens)
        comp.events.append(e)
    for link, token in links:
        components[uf.find(token)].links.append(link)

    components = _merge_by_address(components, address_window)
    _attach_anonymous(components, anonymous, address_window)
    for comp in components.values():
        comp.events.sort(key=lambda e: order[id(e)])
    if ids.unlinked and problems is not None:
        problems.append(Problem(
            "table-full", f"more than {ids.cap} UE identities from frame {ids.first_unlinked} on: the ones "
            "met after that are not linked (an event naming only those joins a session by address; "
            f"{ids.unlinked} in all); raise the cap with --limit identities=N", (ids.first_unlinked,)))
    sessions = sorted(components.values(), key=lambda c: (c.events[0].time, c.events[0].frame))
    return [_session(f"ue{i}", c) for i, c in enumerate(sessions, start=1)]


def _link(events: list[Event], identity_map: Iterable[tuple[str, str]], ids: _Identities) -> list[tuple]:
    """1-4: each link between identities, with a token of the component it belongs to."""
    links: list[tuple[Link, str]] = []
    for e in events:  # 1-3: tokens named together in one event, strongest evidence first
        tokens = ids.register(_tokens(e), e.frame)
        strongest, *others = sorted(tokens, key=lambda t: -_STRENGTH.get(_evidence(tokens[t]), 0)) or [None]
        for other in others:
            if ids.uf.union(strongest, other):
                evidence = _evidence(tokens[strongest])
                reason = f"{_REASON[evidence]} in {e.kind} (frame {e.frame})"
                links.append((Link(_label(strongest), _label(other), evidence, reason, e.frames), strongest))
    for a, b in identity_map:  # 4: the user's identity map
        ta, tb = ids.by_value.get(a), ids.by_value.get(b)
        if ta and tb and ids.uf.union(ta, tb):
            links.append((Link(a, b, "map", _REASON["map"]), ta))
    return links


def _evidence(token_kind: str) -> str:
    return {"instance": "instance", "client-id": "client"}.get(token_kind, "message")


def _label(token: str) -> str:
    return token.split(":", 1)[1]


def _spans(comp: _Component) -> dict[str, tuple[float, float]]:
    spans: dict[str, tuple[float, float]] = {}
    for e in comp.events:
        ip = _ip(e.ue_address)
        first, last = spans.get(ip, (e.time, e.time))
        spans[ip] = (min(first, e.time), max(last, e.end or e.time))
    return spans


def _merge_by_address(components: dict[str, _Component], window: float) -> dict[str, _Component]:
    """5: join components that used one IP address back to back, unless device IDs contradict.

    Per address, components are taken in order of first use and each is compared with the one before
    it, so the work grows with the number of components, not its square. Two components never share a
    token, so they contradict when both hold an instance ID, or both a client ID.
    """
    spans = {root: _spans(comp) for root, comp in components.items()}
    by_ip: dict[str, list[str]] = {}
    for root, per_ip in spans.items():
        for ip in per_ip:
            by_ip.setdefault(ip, []).append(root)
    uf = _UnionFind()
    for ip, roots in by_ip.items():
        roots.sort(key=lambda r: spans[r][ip][0])
        for prev, cur in pairwise(roots):
            keep, gone = uf.find(prev), uf.find(cur)
            if keep == gone or spans[cur][ip][0] > spans[prev][ip][1] + window:
                continue
            a, b = components[keep], components[gone]
            if (a.instance and b.instance) or (a.client and b.client):
                continue
            link = Link(_label(a.first), _label(b.first), "address", f"{_REASON['address']}: {ip}")
            components[keep] = _joined(a, b, link)
            uf.union(keep, gone)
            del components[gone]
    return components


def _joined(a: _Component, b: _Component, link: Link) -> _Component:
    """``b`` joined to ``a`` by ``link``: the smaller one's tokens and events move (so merging stays linear),
    the links keep their order (``a``'s, this one, ``b``'s) by nesting."""
    big, small = (a, b) if len(a.tokens) + len(a.events) >= len(b.tokens) + len(b.events) else (b, a)
    big.tokens |= small.tokens
    big.events += small.events
    big.links = [a.links, link, b.links]
    big.first = min(a.first, b.first)
    big.instance |= small.instance
    big.client |= small.client
    return big


class _Sweep:
    """The components that used one address, met in time order: which used it nearest to a moment?

    Moments only grow, so each component is passed once: of those that began using the address by now,
    the one that used it last contains the moment or is the nearest before it; the next to begin is the
    nearest after it."""

    __slots__ = ("best", "best_last", "next", "spans")

    def __init__(self, spans: list[tuple[float, float, _Component]]):
        self.spans = sorted(spans, key=lambda span: span[0])
        self.next = 0
        self.best: _Component | None = None
        self.best_last = -math.inf

    def nearest(self, t: float, window: float) -> _Component | None:
        spans = self.spans
        while self.next < len(spans) and spans[self.next][0] <= t:
            _, last, comp = spans[self.next]
            self.next += 1
            if last >= self.best_last:
                self.best, self.best_last = comp, last
        before = max(t - self.best_last, 0.0)
        after = spans[self.next][0] - t if self.next < len(spans) else math.inf
        if min(before, after) > window:
            return None
        return self.best if before <= after else spans[self.next][2]

    def began(self, t: float, comp: _Component) -> None:
        self.best, self.best_last = comp, t


def _attach_anonymous(components: dict[str, _Component], anonymous: list[Event], window: float) -> None:
    users: dict[str, list[tuple[float, float, _Component]]] = {}
    for comp in components.values():
        for ip, (first, last) in _spans(comp).items():
            users.setdefault(ip, []).append((first, last, comp))
    sweeps: dict[str, _Sweep] = {}
    for e in anonymous:  # in time order
        ip = _ip(e.ue_address)
        sweep = sweeps.get(ip) or sweeps.setdefault(ip, _Sweep(users.get(ip, [])))
        best = sweep.nearest(e.time, window)
        if best is None:
            best = components.setdefault(f"address:{ip}", _Component())
            sweep.began(e.time, best)
        best.events.append(e)


def _flat(links: list) -> list[Link]:
    out, stack = [], [iter(links)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _session(name: str, comp: _Component) -> UeSession:
    seen: dict[tuple[str, str | None], list] = {}
    for e in comp.events:
        for token, kind in _tokens(e).items():
            key = (token, e.system)
            first_last = seen.setdefault(key, [e.time, e.time, kind])
            first_last[1] = max(first_last[1], e.time)
    identities = tuple(Identity(_label(token), kind, system, first, last)
                       for (token, system), (first, last, kind) in
                       sorted(seen.items(), key=lambda item: (item[1][0], item[0][0])))
    systems: dict[str, list[float]] = {}
    for e in comp.events:
        if e.system:
            span = systems.setdefault(e.system, [e.time, e.time])
            span[1] = max(span[1], e.end or e.time)
    addresses = tuple(dict.fromkeys(_ip(e.ue_address) for e in comp.events))
    return UeSession(name, identities, tuple(_flat(comp.links)),
                     tuple((s, f, la) for s, (f, la) in systems.items()), addresses, tuple(comp.events))
