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
   instance or client IDs, or MC service IDs of one service in one system (two UEs that used one address
   at different times stay apart), nor at an address two such UEs used within the window (shared: an IMS
   core node, a NAT), and only within ``address_window`` seconds.

Events that name no identity at all (a TLS hello to the configuration server) join the session that used
their address closest in time.

Every step is linear in the events, and one pass over them (``SessionLinker``) keeps of each only a key:
identities are looked up in dicts, components add up their events without holding them and merge the
smaller into the larger (``analyzer.meaning.linking``), and the address steps sweep each address's users
in time order; then each event is routed to its session (``Linked.filled``), so a session can be judged
as soon as its last event is read. At most ``Limits.identities``
identities are linked; beyond, new ones are not (their events join a session by address), and a
``table-full`` problem says so.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from sys import intern

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.yamlfile import check_mapping, load_yaml
from analyzer.meaning.events import Event
from analyzer.meaning.linking import (
    REASON,
    Component,
    Identities,
    Link,
    attach_anonymous,
    flat,
    label,
    last_use,
    merge_by_address,
)
from analyzer.meaning.mcfacts import Problem

ADDRESS_WINDOW = 120.0

#: Token kinds, strongest evidence first.
_STRENGTH = {"instance": 5, "client": 4, "message": 3, "map": 2, "address": 1}



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
    """Identity tokens an event carries → their kind (each token one string object however many events
    name it: the linker keeps one per event)."""
    out = {}
    if e.instance:
        out[intern(f"instance:{e.instance}")] = "instance"
    if e.client_id:
        out[intern(f"client-id:{e.client_id}")] = "client-id"
    if e.identity:
        out[intern(f"mc-id:{e.identity}")] = "mc-id"
    if e.impu and e.impu != e.identity:
        out[intern(f"impu:{e.impu}")] = "impu"
    return out


def _ip(address: str) -> str:
    if address.startswith("["):
        return address[1:address.index("]")]
    return address.rsplit(":", 1)[0]


class SessionLinker:
    """Events in (time, frame) order, ``add``-ed one at a time, into UE sessions: one pass that keeps of each
    event only which identity token names it first (or where it came from, if none); ``close`` links them
    (see the module docstring for the evidence and its order) and says which session each event is in."""

    def __init__(self, identity_map: Iterable[tuple[str, str]] = (), address_window: float = ADDRESS_WINDOW,
                 max_identities: int = DEFAULT_LIMITS.identities, problems: list | None = None):
        self.ids = Identities(max_identities)
        self.identity_map, self.window, self.problems = identity_map, address_window, problems
        self.links: list[tuple[Link, str]] = []  # each link between identities, with a token of its own
        self.groups: dict[str, Component] = {}  # a root token → what the events naming its tokens sum up
        self.keys: list = []  # per event: its strongest token (its group is its root's), or its place among
        #   the anonymous
        self.anonymous: list[tuple] = []  # events naming nobody linked: (index, time, frame, end, system, ip,
        #   tokens)

    def add(self, e: Event) -> None:
        """1-3: the tokens named together in ``e`` are linked, strongest evidence first."""
        ids, index = self.ids, len(self.keys)
        named = _tokens(e)
        tokens = ids.register(named, e.frame)
        strongest, *others = sorted(tokens, key=lambda t: -_STRENGTH.get(_evidence(tokens[t]), 0)) or [None]
        for other in others:
            joined = ids.uf.union(strongest, other)
            if joined is not None:
                evidence = _evidence(tokens[strongest])
                reason = f"{REASON[evidence]} in {e.kind} (frame {e.frame})"
                self.links.append((Link(label(strongest), label(other), evidence, reason, e.frames),
                                   strongest))
                self._join(ids.uf.find(strongest), joined)
        ip = _ip(e.ue_address)
        if not tokens:
            self.keys.append(len(self.anonymous))
            self.anonymous.append((index, e.time, e.frame, e.end, e.system, ip, named))
            return
        root = ids.uf.find(strongest)
        group = self.groups.get(root) or self.groups.setdefault(root, Component())
        group.add(tokens)
        group.count_event(index, e.time, e.frame, e.end, e.system, ip, named, service=e.service)
        self.keys.append(strongest)

    def _join(self, root: str, joined: str) -> None:
        """The group of ``joined`` (a root no more) becomes part of ``root``'s as soon as they are linked:
        one group per device, not one per token its events name first (that was most of the linker's
        memory on a core capture)."""
        gone = self.groups.pop(joined, None)
        if gone is None:
            return
        kept = self.groups.get(root)
        if kept is None:
            self.groups[root] = gone
            return
        big, small = (kept, gone) if kept.count >= gone.count else (gone, kept)
        big.absorb(small)
        self.groups[root] = big

    def close(self) -> Linked:
        """4-5 and the events naming nobody; the sessions, named ``ue1``... in order of their first event."""
        ids, uf = self.ids, self.ids.uf
        for a, b in self.identity_map:  # 4: the user's identity map
            ta, tb = ids.by_value.get(a), ids.by_value.get(b)
            if ta and tb and uf.union(ta, tb) is not None:
                self.links.append((Link(a, b, "map", REASON["map"]), ta))
        components: dict[str, Component] = {}  # by root token, in order of their first event
        for key, group in sorted(self.groups.items(), key=lambda item: item[1].start[0]):
            comp = components.setdefault(uf.find(key), group)
            if comp is not group:
                comp.absorb(group)
        for link, token in self.links:
            components[uf.find(token)].links.append(link)
        merged = merge_by_address(components, self.window)
        placed = attach_anonymous(components, self.anonymous, self.window)
        if ids.unlinked and self.problems is not None:
            self.problems.append(Problem(
                "table-full", f"more than {ids.cap} UE identities from frame {ids.first_unlinked} on: the "
                "ones met after that are not linked (an event naming only those joins a session by address; "
                f"{ids.unlinked} in all); raise the cap with --limit identities=N", (ids.first_unlinked,)))
        ordered = sorted(components.values(), key=lambda c: c.start[1:])
        number = {id(c): i for i, c in enumerate(ordered)}
        route = array("I", (number[id(placed[key] if isinstance(key, int) else
                                      components[merged.find(uf.find(key))])] for key in self.keys))
        self.keys = self.anonymous = []
        return Linked([_session(f"ue{i}", c) for i, c in enumerate(ordered, start=1)], route,
                      [c.count for c in ordered])


@dataclass(slots=True)
class Linked:
    """The UE sessions (their events not in them yet), and per event, in the order the linker was given
    them, the index of its session."""

    sessions: list[UeSession | None]  # (None once given with its events)
    route: array
    counts: list[int]  # events per session

    def filled(self, events: Iterable[Event]) -> Iterator[tuple[int, UeSession]]:
        """(index, session with its events) of each session as soon as its last event is read from
        ``events`` (those given to the linker, in that order); each is let go of here once given (read
        once)."""
        sessions, route, counts = self.sessions, self.route, self.counts
        pending: dict[int, list[Event]] = {}
        for index, e in enumerate(events):
            number = route[index]
            held = pending.get(number)
            if held is None:
                held = pending[number] = []
            held.append(e)
            if len(held) == counts[number]:
                del pending[number]
                session, sessions[number] = replace(sessions[number], events=tuple(held)), None
                yield number, session


def build_sessions(events: Iterable[Event], identity_map: Iterable[tuple[str, str]] = (),
                   address_window: float = ADDRESS_WINDOW, max_identities: int = DEFAULT_LIMITS.identities,
                   problems: list | None = None) -> list[UeSession]:
    """Group events into UE sessions (see the module docstring for the evidence and its order)."""
    events = sorted(events, key=lambda e: (e.time, e.frame))
    linker = SessionLinker(identity_map, address_window, max_identities, problems)
    for e in events:
        linker.add(e)
    linked = linker.close()
    sessions = linked.sessions
    for number, session in linked.filled(events):
        sessions[number] = session
    return sessions


def _evidence(token_kind: str) -> str:
    return {"instance": "instance", "client-id": "client"}.get(token_kind, "message")


def _session(name: str, comp: Component) -> UeSession:
    """The session of a component, its events not in it yet (``Linked.filled``)."""
    identities = tuple(Identity(label(token), kind, system, first, last)
                       for (token, system), (first, last, kind, _) in
                       sorted(comp.seen.items(), key=lambda item: (item[1][0], item[0][0], item[1][3])))
    systems = tuple((system, span[0], last_use(span))
                    for system, span in sorted(comp.systems.items(), key=lambda item: item[1][2]))
    addresses = tuple(sorted(comp.addresses, key=comp.addresses.__getitem__))
    return UeSession(name, identities, tuple(flat(comp.links)), systems, addresses, ())
