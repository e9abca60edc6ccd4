"""Floor events: MCPTT floor control messages (``analyzer.messages.floor``) given to the call, and so the
UE session, whose SDP negotiated the ports they flow between.

A call's INVITE (offer) and its 2xx (answer) name the ip:ports of its RTP, RTCP and floor control
(``mcfacts.media_endpoints``). A floor message whose source or destination is one of them, sent after the
INVITE and before the call's BYE, belongs to that call (the latest such call, when ports are reused); the
side that named the endpoint tells the direction: the UE's own endpoint is the one its SDP named. Floor
messages on a pre-established session's ports belong to the call the session carries at the time (made
by REFER, or joined by an MCPC Connect). Floor messages no call negotiated (a capture that starts
mid-call) are listed by ``mcxa messages`` but make no event: mcxa does not guess their call.
"""

from __future__ import annotations

from analyzer.base.limits import Limits
from analyzer.meaning.events import Event
from analyzer.meaning.events.facts import Fact
from analyzer.meaning.mcfacts import Problem
from analyzer.messages.floor import FloorMessage

#: Floor control message → event kind (the others — acks, queue position — make none).
FLOOR_KINDS = {"floor-request": "floor-request", "floor-granted": "floor-granted", "floor-deny": "floor-deny",
               "floor-taken": "floor-taken", "floor-release": "floor-release", "floor-idle": "floor-idle",
               "floor-revoke": "floor-revoke"}


#: Pre-established session call control messages ("MCPC"), given to the sessions (``preestablished``).
CONTROL = frozenset(("connect", "disconnect", "acknowledgement"))


def kept(message: FloorMessage) -> bool:
    """Is this media-plane message one the events stage needs (kept through pass 1)?"""
    if message.name == "MCPC":
        return message.message in CONTROL
    return message.name == "MCPT" and message.message in FLOOR_KINDS


def _detail(m: FloorMessage) -> str | None:
    """A short note: who has or asked for the floor, for how long, or why not."""
    bits = [f"{name.replace('_', ' ')} {m.get(name)}" for name in
            ("user_id", "granted_party", "duration", "reject_cause", "priority") if m.get(name) is not None]
    return ", ".join(bits) or None


class FloorCalls:
    """The media endpoints of the calls seen so far, and their floor events once the capture is read.

    Only the endpoints some floor message came from or went to are followed (``heard``; all when None):
    pass 1 has kept the floor messages already, and a core-side capture has none, where following every
    call's endpoints until the end held ~1 KB per call. Bounded: at most ``cap`` endpoints (the oldest
    forgotten first), each remembering its last ``_PER_ENDPOINT`` calls."""

    _PER_ENDPOINT = 8
    _ENDS_PER_CALL = 8  # ends remembered per Call-ID (a pre-established session's successive calls)

    def __init__(self, cap: int):
        self.cap = cap
        self.heard: set[str] | None = None
        #: endpoint → [(the call's event, the UE's own endpoint?)], oldest first
        self._by_endpoint: dict[str, list[tuple[Event, bool]]] = {}
        #: call_id of a followed call → when its calls ended (a pre-established session's calls share its
        #: Call-ID), oldest first
        self._ended: dict[str, list[float]] = {}
        self.forgotten = 0  # endpoints forgotten beyond the cap

    def add_call(self, f: Fact, to_ue: bool, call: Event) -> None:
        """An established call (INVITE answered 2xx) and the event that started it; ``to_ue``: the
        network invited the UE, so the UE's endpoints are those of the answer, else of the offer."""
        ue_side = set(f.answer_media if to_ue else f.offer_media)
        followed = False
        for endpoint in (*f.offer_media, *f.answer_media):
            if self.heard is not None and endpoint not in self.heard:
                continue
            followed = True
            calls = self._by_endpoint.setdefault(endpoint, [])
            calls.append((call, endpoint in ue_side))
            del calls[:-self._PER_ENDPOINT]
            if len(self._by_endpoint) > self.cap:
                del self._by_endpoint[next(iter(self._by_endpoint))]
                self.forgotten += 1
        if followed and call.call_id is not None and len(self._ended) < 4 * self.cap:
            self._ended.setdefault(call.call_id, [])

    def end_call(self, call_id: str | None, time: float) -> None:
        ends = self._ended.get(call_id) if call_id is not None else None
        if ends is not None and len(ends) < self._ENDS_PER_CALL:
            ends.append(time)

    def _call(self, endpoint: str, time: float) -> tuple[Event, bool] | None:
        best = None
        for call, ue_side in self._by_endpoint.get(endpoint, ()):
            ended = next((t for t in self._ended.get(call.call_id or "", ()) if t >= call.time), time)
            if call.time <= time <= ended and (best is None or call.time >= best[0].time):
                best = (call, ue_side)
        return best

    def events(self, messages: list[FloorMessage]) -> list[Event]:
        """One event per floor message tied to a call: the call's UE, identities, system and subject."""
        out = []
        for m in messages:
            if m.name != "MCPT":
                continue
            for endpoint, other in ((m.src, m.dst), (m.dst, m.src)):
                found = self._call(endpoint, m.time)
                if found is None:
                    continue
                call, ue_is_here = found
                ue, server = (endpoint, other) if ue_is_here else (other, endpoint)
                out.append(Event(
                    FLOOR_KINDS[m.message], m.time, (m.frame,), "from-ue" if m.src == ue else "to-ue", ue,
                    server, "success", service=call.service or "mcptt", system=call.system,
                    identity=call.identity, impu=call.impu, instance=call.instance, client_id=call.client_id,
                    group=call.group, peer=call.peer, call_id=call.call_id, detail=_detail(m),
                    domain=call.domain, all_frames=m.frames))
                break
        return out


def keep_floor(floor: list, item, limits: Limits, problems: list | None) -> None:
    """Add ``item`` to ``floor`` if it is a floor control message that can make an event, up to
    ``limits.floor_messages`` of them (one more marks the cap reported: pass ``floor[:cap]`` on)."""
    if not isinstance(item, FloorMessage) or not kept(item) or len(floor) > limits.floor_messages:
        return
    if len(floor) == limits.floor_messages:
        if problems is None:
            return
        problems.append(Problem(
            "table-full", f"more than {limits.floor_messages} floor control messages from frame {item.frame} "
            "on: later ones make no event; raise the cap with --limit floor_messages=N", (item.frame,)))
    floor.append(item)
