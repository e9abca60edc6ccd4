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

Not seen here: the media-plane call control of such sessions (RTCP APP "MCPC" Connect/Disconnect, 24.380
§8.3), by which the server joins a session to a call it did not ask for (late entry, an incoming call).
Those are meant to join a session's call with the same ``call_id`` once the media plane is decoded.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from analyzer.meaning.events.facts import Fact

_GROUP_SESSIONS = {"prearranged": "group-call-originate", "chat": "group-call-join"}


@dataclass(slots=True)
class _Session:
    ue: str  # the UE's address
    service: str | None
    ids: dict  # identity fields its events carry (impu, client_id)
    call: tuple[str, dict] | None = None  # (group | private, the call's fields) while a call runs in it


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

    def __contains__(self, call_id: object) -> bool:
        return call_id in self.sessions

    def touch(self, call_id: str) -> None:
        self.sessions.move_to_end(call_id)

    def _open(self, call_id: str, ue: str, service: str | None, ids: dict) -> _Session:
        session = self.sessions[call_id] = _Session(ue, service, ids)
        self.sessions.move_to_end(call_id)
        if len(self.sessions) > self.cap:
            self.sessions.popitem(last=False)
            self.forgotten += 1
        return session

    def setup(self, builder, f: Fact) -> None:
        ids = {"impu": f.from_uri, "client_id": f.client_id}
        builder.emit(f, "pre-established-session", detail=f.reason, **ids)
        if f.status is not None and f.status < 300:
            self._open(f.call_id, f.client, f.service, ids)

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
            return
        kind, fields = _call(f)
        if kind is None:
            return
        ids = session.ids if session is not None else {"impu": f.from_uri, "client_id": f.client_id}
        fields |= {"impu": ids["impu"] or f.from_uri, "client_id": ids["client_id"] or f.client_id}
        builder.emit(f, kind, detail=f.reason, via="pre-established", **fields)
        if ok:
            if session is None:  # set up before the capture began
                session = self._open(key, f.client, f.service, ids)
            family = "private" if kind == "private-call-setup" else "group"
            session.call = (family, {**fields, "via": "pre-established"})
            builder.implicit_affiliation(f, kind, fields.get("group"))

    def release(self, builder, f: Fact) -> None:
        """A BYE of the session: the call it carried ends with it."""
        session = self.sessions.pop(f.call_id)
        to_ue = f.client != session.ue
        f = replace(f, service=f.service or session.service)
        if session.call is not None:
            family, call = session.call
            note = "; ".join(filter(None, ("the pre-established session was released", f.reason)))
            builder.end_call(replace(f, reason=note), family, call, to_ue=to_ue)
        builder.emit(f, "pre-established-session-release", to_ue=to_ue, detail=f.reason, **session.ids)


def _call(f: Fact) -> tuple[str | None, dict]:
    """The event kind of the call a REFER asks for, and its subject (group or peer)."""
    session = f.session_type or ("private" if f.recipients or f.called_party else None)
    if session in _GROUP_SESSIONS:
        return _GROUP_SESSIONS[session], {"group": f.mc_uri or f.refer_target}
    if session == "private":
        return "private-call-setup", {"peer": (f.recipients[0] if f.recipients else None) or f.called_party
                                      or f.refer_target}
    return None, {}
