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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from analyzer.events import Event
from analyzer.yamlfile import check_mapping, load_yaml

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
    links: list[Link] = field(default_factory=list)


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


def build_sessions(events: Iterable[Event], identity_map: Iterable[tuple[str, str]] = (),
                   address_window: float = ADDRESS_WINDOW) -> list[UeSession]:
    """Group events into UE sessions (see the module docstring for the evidence and its order)."""
    events = sorted(events, key=lambda e: (e.time, e.frame))
    uf = _UnionFind()
    links: list[Link] = []
    kinds: dict[str, str] = {}

    # 1-3: tokens named together in one event, strongest evidence first
    for e in events:
        tokens = _tokens(e)
        kinds.update(tokens)
        for t in tokens:
            uf.find(t)
        ordered = sorted(tokens, key=lambda t: -_STRENGTH.get(_evidence(tokens[t]), 0))
        for other in ordered[1:]:
            if uf.union(ordered[0], other):
                evidence = _evidence(tokens[ordered[0]])
                links.append(Link(_label(ordered[0]), _label(other), evidence,
                                  f"{_REASON[evidence]} in {e.kind} (frame {e.frame})", e.frames))
    # 4: the user's identity map
    for a, b in identity_map:
        ta, tb = _known(a, kinds), _known(b, kinds)
        if ta and tb and uf.union(ta, tb):
            links.append(Link(a, b, "map", _REASON["map"]))

    components: dict[str, _Component] = {}
    anonymous: list[Event] = []
    for e in events:
        tokens = _tokens(e)
        if not tokens:
            anonymous.append(e)
            continue
        root = uf.find(next(iter(tokens)))
        comp = components.setdefault(root, _Component())
        comp.tokens.update(tokens)
        comp.events.append(e)
    for link in links:
        root = uf.find(_token_of(link.a, kinds))
        components[root].links.append(link)

    components = _merge_by_address(components, address_window)
    _attach_anonymous(components, anonymous, address_window)
    sessions = sorted(components.values(), key=lambda c: (c.events[0].time, c.events[0].frame))
    return [_session(f"ue{i}", c, kinds) for i, c in enumerate(sessions, start=1)]


def _evidence(token_kind: str) -> str:
    return {"instance": "instance", "client-id": "client"}.get(token_kind, "message")


def _label(token: str) -> str:
    return token.split(":", 1)[1]


def _token_of(label: str, kinds: dict[str, str]) -> str:
    return next(t for t in kinds if _label(t) == label)


def _known(value: str, kinds: dict[str, str]) -> str | None:
    return next((t for t in kinds if _label(t) == value), None)


def _spans(comp: _Component) -> dict[str, tuple[float, float]]:
    spans: dict[str, tuple[float, float]] = {}
    for e in comp.events:
        ip = _ip(e.ue_address)
        first, last = spans.get(ip, (e.time, e.time))
        spans[ip] = (min(first, e.time), max(last, e.end or e.time))
    return spans


def _device_ids(comp: _Component) -> tuple[set[str], set[str]]:
    return ({t for t in comp.tokens if t.startswith("instance:")},
            {t for t in comp.tokens if t.startswith("client-id:")})


def _contradict(a: _Component, b: _Component) -> bool:
    (ia, ca), (ib, cb) = _device_ids(a), _device_ids(b)
    return bool(ia and ib and not ia & ib) or bool(ca and cb and not ca & cb)


def _merge_by_address(components: dict[str, _Component], window: float) -> dict[str, _Component]:
    """5: join components that used one IP address back to back, unless device IDs contradict.

    Per address, components are taken in order of first use and each is compared with the one before
    it, so the work grows with the number of components, not its square.
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
            if _contradict(a, b):
                continue
            a.links.append(Link(_label(_first_token(a)), _label(_first_token(b)), "address",
                                f"{_REASON['address']}: {ip}"))
            a.tokens |= b.tokens
            a.events += b.events
            a.links += b.links
            uf.union(keep, gone)
            del components[gone]
    for comp in components.values():
        comp.events.sort(key=lambda e: (e.time, e.frame))
    return components


def _first_token(comp: _Component) -> str:
    return min(comp.tokens)


def _attach_anonymous(components: dict[str, _Component], anonymous: list[Event], window: float) -> None:
    users: dict[str, list[tuple[float, float, _Component]]] = {}
    for comp in components.values():
        for ip, (first, last) in _spans(comp).items():
            users.setdefault(ip, []).append((first, last, comp))
    for e in anonymous:
        ip = _ip(e.ue_address)
        best, best_gap = None, window
        for first, last, comp in users.get(ip, ()):
            gap = 0.0 if first <= e.time <= last else min(abs(e.time - first), abs(e.time - last))
            if gap <= best_gap:
                best, best_gap = comp, gap
        if best is None:
            best = components.setdefault(f"address:{ip}", _Component())
            users.setdefault(ip, []).append((e.time, e.time, best))
        best.events.append(e)
    for comp in components.values():
        comp.events.sort(key=lambda e: (e.time, e.frame))


def _session(name: str, comp: _Component, kinds: dict[str, str]) -> UeSession:
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
    return UeSession(name, identities, tuple(comp.links),
                     tuple((s, f, la) for s, (f, la) in systems.items()), addresses, tuple(comp.events))
