"""What UE sessions are linked from (``analyzer.meaning.sessions``): identity tokens joined in a union-find
(at most a cap of them), components that add up their events without holding them, and the address steps
(continuity of an address in time, and the events that name nobody).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from sys import intern

#: Each kind of evidence, as a link's reason begins.
REASON = {"instance": "same +sip.instance", "client": "same mcptt-client-id",
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


def label(token: str) -> str:
    """The identity a token names (``mc-id:sip:alice@a`` → ``sip:alice@a``): one string object however
    many links and identities name it."""
    return intern(token.split(":", 1)[1])


class UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: str, b: str) -> str | None:
        """Join ``b``'s set to ``a``'s: the root that joined (no longer one), or None if they were one."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        self.parent[rb] = ra
        return rb


class Identities:
    """The identity tokens met so far, linked by union-find: at most ``cap`` (later ones are not linked)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.uf = UnionFind()
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
                self.by_value.setdefault(label(token), token)
            known[token] = kind
        return known


@dataclass(slots=True)
class Component:
    """Linked identities and what their events add up to, without the events: sessions are linked in one
    pass over the events, each then routed to its session (``sessions.Linked``)."""

    tokens: set[str] = field(default_factory=set)
    links: list = field(default_factory=list)  # Links, and nested lists of them (a merge nests, in order)
    first: str = ""  # the smallest token: names the component in an address link
    instance: bool = False  # holds a +sip.instance token
    client: bool = False  # holds an mcptt-client-id token
    #: (system, service) where its events name an MC service ID: one device is one user there at a time
    users: set = field(default_factory=set)
    count: int = 0  # events
    start: tuple = (math.inf,)  # (index, time, frame) of its first event
    spans: dict = field(default_factory=dict)  # ip → [first, last moment] of its events that name someone
    seen: dict = field(default_factory=dict)  # (token, system) → [first time, last time, kind, first index]
    systems: dict = field(default_factory=dict)  # system → [first time, latest end (or time), first index]
    addresses: dict = field(default_factory=dict)  # ip → index of its first event there

    def add(self, tokens: Iterable[str]) -> None:
        """Linked tokens of its events."""
        for t in tokens:
            self.tokens.add(t)
            self.first = min(self.first, t) if self.first else t
            self.instance |= t.startswith("instance:")
            self.client |= t.startswith("client-id:")

    def count_event(self, index: int, time: float, frame: int, end: float | None, system: str | None,
                    ip: str, tokens: dict[str, str], named: bool = True, service: str | None = None) -> None:
        """An event is one of this component's: the ``index``-th, at ``ip``, carrying ``tokens`` (every
        identity token it names); ``named``: some of them are linked (else it joined by address)."""
        self.count += 1
        if index < self.start[0]:
            self.start = (index, time, frame)
        end = end or time
        for token, kind in tokens.items():
            _widen(self.seen, (token, system), time, time, index, kind)
        if named:
            if system and "mc-id" in tokens.values():
                self.users.add((system, service))
            span = self.spans.get(ip)
            if span is None:
                self.spans[ip] = [time, max(time, end)]
            else:
                span[0], span[1] = min(span[0], time), max(span[1], time, end)
        if system:
            _widen(self.systems, system, time, end, index)
        if index < self.addresses.get(ip, math.inf):
            self.addresses[ip] = index

    def absorb(self, other: Component) -> None:
        """``other``'s tokens, and what its events add up to, added to this one's (its links: see
        callers)."""
        self.tokens |= other.tokens
        if other.first and (not self.first or other.first < self.first):
            self.first = other.first
        self.instance |= other.instance
        self.client |= other.client
        self.count += other.count
        self.start = min(self.start, other.start)
        self.users |= other.users
        for ip, (first, last) in other.spans.items():
            span = self.spans.get(ip)
            if span is None:
                self.spans[ip] = [first, last]
            else:
                span[0], span[1] = min(span[0], first), max(span[1], last)
        for key, (first, last, *rest) in other.seen.items():
            _widen(self.seen, key, first, last, rest[1], rest[0])
        for system, (first, last, index) in other.systems.items():
            _widen(self.systems, system, first, last, index)
        for ip, index in other.addresses.items():
            if index < self.addresses.get(ip, math.inf):
                self.addresses[ip] = index


def last_use(span: list) -> float:
    """When a system was last used: its latest end, or its first use if that came later (an answer
    stamped before its request)."""
    return max(span[0], span[1])


def _widen(table: dict, key, first: float, last: float, index: int, *kind) -> None:
    """``table[key]``: [first, last, *kind, first index] widened to cover another use."""
    span = table.get(key)
    if span is None:
        table[key] = [first, last, *kind, index]
    else:
        span[0], span[1], span[-1] = min(span[0], first), max(span[1], last), min(span[-1], index)


def merge_by_address(components: dict[str, Component], window: float) -> UnionFind:
    """5: join components that used one IP address back to back, unless device IDs contradict; which
    root's component each root's is now in (``components``: by the root of each merged).

    Per address, components are taken in order of first use and each is compared with the one before
    it, so the work grows with the number of components, not its square. An address where two devices
    (``_contradict``) follow each other within the window is shared — an IMS core node through which a
    core-side capture sees many UEs reach the MC server, a NAT — and links nobody: each UE there stays
    one of its own unless stronger evidence joins them.
    """
    spans = {root: {ip: tuple(span)
                    for ip, span in sorted(comp.spans.items(), key=lambda item: comp.addresses[item[0]])}
             for root, comp in components.items()}
    by_ip: dict[str, list[str]] = {}
    for root, per_ip in spans.items():
        for ip in per_ip:
            by_ip.setdefault(ip, []).append(root)
    uf = UnionFind()
    for ip, roots in by_ip.items():
        roots.sort(key=lambda r: spans[r][ip][0])
        following = [(prev, cur) for prev, cur in pairwise(roots)
                     if spans[cur][ip][0] <= spans[prev][ip][1] + window]
        if any(keep != gone and _contradict(components[keep], components[gone])
               for keep, gone in ((uf.find(prev), uf.find(cur)) for prev, cur in following)):
            continue  # (shared; two of its users joined already, at another address, are one device)
        for prev, cur in following:
            keep, gone = uf.find(prev), uf.find(cur)
            if keep == gone:
                continue
            a, b = components[keep], components[gone]
            if _contradict(a, b):
                continue
            link = Link(label(a.first), label(b.first), "address", f"{REASON['address']}: {ip}")
            components[keep] = _joined(a, b, link)
            uf.union(keep, gone)
            del components[gone]
    return uf


def _contradict(a: Component, b: Component) -> bool:
    """Two devices (two components never share a token): both hold an instance ID, or both a client ID, or
    both an MC service ID of one service in one system (a device is one user there at a time)."""
    return (a.instance and b.instance) or (a.client and b.client) or not a.users.isdisjoint(b.users)


def _joined(a: Component, b: Component, link: Link) -> Component:
    """``b`` joined to ``a`` by ``link``: the smaller one's tokens and sums move (so merging stays linear),
    the links keep their order (``a``'s, this one, ``b``'s) by nesting."""
    big, small = (a, b) if len(a.tokens) + a.count >= len(b.tokens) + b.count else (b, a)
    big.absorb(small)
    big.links = [a.links, link, b.links]
    return big


class _Sweep:
    """The components that used one address, met in time order: which used it nearest to a moment?

    Moments only grow, so each component is passed once: of those that began using the address by now,
    the one that used it last contains the moment or is the nearest before it; the next to begin is the
    nearest after it."""

    __slots__ = ("best", "best_last", "next", "spans")

    def __init__(self, spans: list[tuple[float, float, Component]]):
        self.spans = sorted(spans, key=lambda span: span[0])
        self.next = 0
        self.best: Component | None = None
        self.best_last = -math.inf

    def nearest(self, t: float, window: float) -> Component | None:
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

    def began(self, t: float, comp: Component) -> None:
        self.best, self.best_last = comp, t


def attach_anonymous(components: dict[str, Component], anonymous: list[tuple], window: float
                      ) -> list[Component]:
    """Each event naming nobody linked joins the component that used its address nearest in time (or one
    of its own for the address): the component of each, in order."""
    users: dict[str, list[tuple[float, float, Component]]] = {}
    for comp in components.values():
        for ip, span in comp.spans.items():
            users.setdefault(ip, []).append((*span, comp))
    sweeps: dict[str, _Sweep] = {}
    placed = []
    for index, time, frame, end, system, ip, tokens in anonymous:  # in time order
        sweep = sweeps.get(ip) or sweeps.setdefault(ip, _Sweep(users.get(ip, [])))
        best = sweep.nearest(time, window)
        if best is None:
            best = components.setdefault(f"address:{ip}", Component())
            sweep.began(time, best)
        best.count_event(index, time, frame, end, system, ip, tokens, named=False)
        placed.append(best)
    return placed


def flat(links: list) -> list[Link]:
    """The links of a component in order, its nesting (``_joined``) undone."""
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
