"""Pre-established sessions (TS 24.379 cl. 6.3.3): calls made by REFER inside a session set up beforehand.

A UE sets up a session with its participating MC server ahead of any call: an INVITE that offers media
and names no group, peer or session type. Calls are then made with REFER — ``Refer-To`` names the group or
the user, the MC information rides in it (``analyzer.meaning.mcfacts.refer``), ``Target-Dialog`` names the
session when the REFER is sent outside its dialog — and released with a REFER whose ``Refer-To`` says
``method=BYE``. A re-INVITE or UPDATE modifies the session and makes no event; a BYE ends it (and the call
it carried, if any).

A REFER-made call gives the same event kinds as an on-demand one (``group-call-originate``,
``group-call-join``, ``private-call-setup``, and ``group-call-leave`` / ``private-call-release`` at its
end) with ``via: pre-established`` and the session's Call-ID as ``call_id``, so rules that follow a call by
its Call-ID match both. One session carries one call at a time. No ``private-call-established`` follows a
REFER: its 2xx accepts the request; the called user's answer is not signalled in SIP.

The server joins a session to a call the UE did not ask for (late entry, an incoming call) on the media
plane: pre-established session call control (24.380 §8.3, RTCP APP "MCPC") on the ports the session's SDP
negotiated (or, for a session set up before the capture, the UE's address). A Connect naming a group makes
``group-call-incoming`` (a private one ``private-call-setup`` towards the UE), decided by the UE's
Acknowledgement (Reason Code 0 accepted: success; 1 busy, 2 not accepted: failure; none when one was asked
for: no-answer); a Disconnect ends the session's call (``group-call-leave`` / ``private-call-release``).
Both carry ``via: pre-established`` and the session's Call-ID, so the late-entry step matches them as it
matches an INVITE.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from analyzer.meaning.events.facts import Fact
from analyzer.messages.floor import FloorMessage
from analyzer.transport.records import endpoint_parts

_GROUP_SESSIONS = {"prearranged": "group-call-originate", "chat": "group-call-join"}
#: 24.380 §8.3.3.8: the Reason Code of the UE's Acknowledgement of a Connect.
_ACK_REASONS = {0: "accepted", 1: "busy", 2: "not accepted"}
#: 24.380 §8.3.3.6: a Connect's Answer State (how the call was answered: by the user, or automatically).
_ANSWER_STATES = {0: "answer state unconfirmed", 1: "answer state confirmed"}


@dataclass(slots=True)
class _Session:
    ue: str  # the UE's address
    service: str | None
    ids: dict  # identity fields its events carry (impu, client_id)
    fact: Fact  # what set it up (its INVITE, or the first REFER of a session set up before the capture)
    ue_media: frozenset[str] = frozenset()  # the UE's ip:ports its SDP negotiated (media-plane control)
    call: tuple[str, dict] | None = None  # (group | private, the call's fields) while a call runs in it
    connect: FloorMessage | None = None  # an MCPC Connect awaiting the UE's Acknowledgement


def is_setup(f: Fact, to_ue: bool, referred: set[str]) -> bool:
    """An INVITE from the UE that names no call but is an MC one offering media, or that a REFER names."""
    if to_ue or f.session_type or f.recipients or f.calling_group or f.calling_user:
        return False
    return f.call_id in referred or bool(f.service and f.sdp)


class PreEstablished:
    """The pre-established sessions of one capture (at most ``cap`` at once, the least recent forgotten)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self.forgotten = 0
        #: Where each session's media-plane control flows → Call-ID: its SDP's ip:ports; the UE's host only
        #: for a session whose SDP the capture does not hold (a host may hide several UEs behind a NAT).
        self._by_media: dict[str, str] = {}

    def __contains__(self, call_id: object) -> bool:
        return call_id in self.sessions

    def touch(self, call_id: str) -> None:
        self.sessions.move_to_end(call_id)

    def _open(self, call_id: str, f: Fact, ids: dict) -> _Session:
        session = self.sessions[call_id] = _Session(f.client, f.service, ids, f, frozenset(f.offer_media))
        self.sessions.move_to_end(call_id)
        for key in _media_keys(f):
            self._by_media[key] = call_id
        if len(self.sessions) > self.cap:
            self._close(next(iter(self.sessions)))
            self.forgotten += 1
        return session

    def _close(self, call_id: str) -> _Session:
        session = self.sessions.pop(call_id)
        for key in _media_keys(session.fact):
            if self._by_media.get(key) == call_id:
                del self._by_media[key]
        return session

    def setup(self, builder, f: Fact) -> None:
        ids = {"impu": f.from_uri, "client_id": f.client_id}
        builder.emit(f, "pre-established-session", detail=f.reason, **ids)
        if f.status is not None and f.status < 300:
            self._open(f.call_id, f, ids)

    def refer(self, builder, f: Fact) -> None:
        """A REFER: a call asked for in a session, or (``method=BYE``) the release of the session's call."""
        key = f.target_dialog or f.call_id
        session = self.sessions.get(key)
        f = replace(f, call_id=key, service=f.service or (session.service if session else None))
        ok = f.status is not None and f.status < 300
        if f.refer_method == "BYE":
            if session is not None and session.call is not None:
                family, call = session.call
                builder.end_call(f, family, call, to_ue=False, via="pre-established")
                if ok:
                    session.call = None
                    builder.floor.end_call(key, f.time)
            return
        kind, fields = _call(f)
        if kind is None:
            return
        ids = session.ids if session is not None else {"impu": f.from_uri, "client_id": f.client_id}
        fields |= {"impu": ids["impu"] or f.from_uri, "client_id": ids["client_id"] or f.client_id,
                   "media": session.fact.offer_media if session is not None else ()}
        builder.emit(f, kind, detail=f.reason, via="pre-established", **fields)
        if ok:
            if session is None:  # set up before the capture began
                session = self._open(key, f, ids)
            self._started(builder, session, kind, fields)
            builder.implicit_affiliation(f, kind, fields.get("group"))

    def release(self, builder, f: Fact) -> None:
        """A BYE of the session: the call it carried ends with it."""
        self._settle(builder, f.call_id, self.sessions[f.call_id])
        session = self._close(f.call_id)
        to_ue = f.client != session.ue
        f = replace(f, service=f.service or session.service)
        if session.call is not None:
            family, call = session.call
            note = "; ".join(filter(None, ("the pre-established session was released", f.reason)))
            builder.end_call(replace(f, reason=note), family, call, to_ue=to_ue)
            builder.floor.end_call(f.call_id, f.time)
        builder.emit(f, "pre-established-session-release", to_ue=to_ue, detail=f.reason, **session.ids)

    # -- the media plane (24.380 §8.3) ------------------------------------------------------------------

    def control(self, builder, m: FloorMessage) -> None:
        """An MCPC message: the server connects the session to a call or disconnects it; the UE
        acknowledges. One on no known session's media makes no event (mcxa does not guess its UE)."""
        key = self._by_media.get(m.src) or self._by_media.get(m.dst) or self._by_media.get(_host(m.dst)) \
            or self._by_media.get(_host(m.src))
        session = self.sessions.get(key) if key else None
        if session is None:
            return
        from_ue = m.src in session.ue_media if session.ue_media else _host(m.src) == _host(session.ue)
        if m.message == "acknowledgement":
            if from_ue and session.connect is not None:
                self._settle(builder, key, session, m)
            return
        self._settle(builder, key, session)  # a Connect never acknowledged
        if m.message == "connect" and not from_ue:
            session.connect = m
        elif m.message == "disconnect" and session.call is not None:
            family, call = session.call
            kind = "group-call-leave" if family == "group" else "private-call-release"
            builder.emit(_fact(session, m.time, (m.frame,), to_ue=not from_ue), kind, to_ue=not from_ue,
                         outcome="success", status=None, detail="MCPC Disconnect", domain=session.fact.domain,
                         **call)
            session.call = None
            builder.floor.end_call(key, m.time)

    def settle_all(self, builder) -> None:
        """The capture is read: Connects still awaiting their Acknowledgement are decided without it."""
        for key, session in self.sessions.items():
            self._settle(builder, key, session)

    def _settle(self, builder, key: str, session: _Session, ack: FloorMessage | None = None) -> None:
        """The event of the session's pending Connect, decided by the UE's Acknowledgement ``ack``."""
        m, session.connect = session.connect, None
        if m is None:
            return
        code = ack.get("reason_code") if ack is not None else None
        if ack is None:
            outcome = "no-answer" if m.ack_requested else "success"
        else:
            outcome = "success" if code in (None, 0) else "failure"
        kind, fields = _connected(m)
        state = m.get("answer_state")
        answered = f"acknowledged: {_ACK_REASONS.get(code, code)}" if code is not None else None
        notes = ["MCPC Connect", _ANSWER_STATES.get(state) if isinstance(state, int) else None, answered,
                 None if ack is not None or not m.ack_requested else "no Acknowledgement"]
        frames = (m.frame, ack.frame) if ack is not None else (m.frame,)
        f = _fact(session, m.time, frames, to_ue=True, end=ack.time if ack is not None else None)
        fields |= session.ids | {"media": session.fact.offer_media}
        builder.emit(replace(f, call_id=key), kind, to_ue=True, outcome=outcome, status=None,
                     detail=", ".join(filter(None, notes)), via="pre-established", domain=session.fact.domain,
                     **fields)
        if outcome == "success":
            self._started(builder, session, kind, fields)

    @staticmethod
    def _started(builder, session: _Session, kind: str, fields: dict) -> None:
        """The session carries a call now (its event just emitted): its floor control flows on the
        session's media ports."""
        family = "private" if kind == "private-call-setup" else "group"
        session.call = (family, {**fields, "via": "pre-established"})
        builder.floor.add_call(session.fact, False, builder.last)


def _call(f: Fact) -> tuple[str | None, dict]:
    """The event kind of the call a REFER asks for, and its subject (group or peer)."""
    session = f.session_type or ("private" if f.recipients or f.called_party else None)
    if session in _GROUP_SESSIONS:
        return _GROUP_SESSIONS[session], {"group": f.mc_uri or f.refer_target}
    if session == "private":
        return "private-call-setup", {"peer": (f.recipients[0] if f.recipients else None) or f.called_party
                                      or f.refer_target}
    return None, {}


def _connected(m: FloorMessage) -> tuple[str, dict]:
    """The event kind of the call a Connect joins the session to, and its subject: a group (the Group
    Identity, else the Session Identity's URI) or, for a private call, the inviting user."""
    kind, _, uri = str(m.get("session_identity") or "").partition(" ")
    group = m.get("group_id")
    if kind == "private" and not group:
        return "private-call-setup", {"peer": m.get("inviting_user_id") or None}
    return "group-call-incoming", {"group": group or uri or None}


def _fact(session: _Session, time: float, frames: tuple[int, ...], *, to_ue: bool,
          end: float | None = None) -> Fact:
    """The session's set-up fact standing for a media-plane message: its time and frames, and its
    client the sender (the server, when ``to_ue``)."""
    f = session.fact
    client, server = (f.server, f.client) if to_ue else (f.client, f.server)
    frames = tuple(sorted(set(frames)))
    return replace(f, time=time, end=end, frames=frames, all_frames=frames, client=client, server=server,
                   status=None, reason=None)


def _media_keys(f: Fact) -> tuple[str, ...]:
    """Where a session's media-plane control is looked for: the ip:ports its SDP named, else the UE's host."""
    media = (*f.offer_media, *f.answer_media)
    return media or (_host(f.client),)


def _host(text: str) -> str:
    """The address of an ``ip:port`` (``[v6]:port``)."""
    return endpoint_parts(text)[0] or text
