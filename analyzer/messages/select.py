"""Message filters for ``mcxa messages``: by method, Call-ID and user."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.messages.floor import FloorMessage
from analyzer.messages.records import Message

#: Headers whose URIs name the users a SIP message is about.
_USER_HEADERS = ("from", "to", "p-asserted-identity", "p-preferred-identity", "contact")


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Keeps a message when every given criterion matches.

    ``methods``: a request's method, or for a response the method in its CSeq (so ``INVITE`` keeps the
    whole INVITE transaction; HTTP responses carry no method and never match). ``user``: case-insensitive
    substring of the Request-URI or HTTP target, or of the From, To, P-Asserted-Identity,
    P-Preferred-Identity or Contact values.

    A media-plane control message (``FloorMessage``) matches ``methods`` by its message name
    (``FLOOR-GRANTED``...), ``user`` by its user ID, granted party and group fields, and never a Call-ID.
    """

    methods: frozenset[str] = frozenset()
    call_id: str | None = None
    user: str | None = None

    def __call__(self, m: Message | FloorMessage) -> bool:
        if isinstance(m, FloorMessage):
            return self._floor(m)
        if self.methods and _method(m) not in self.methods:
            return False
        if self.call_id is not None and m.call_id != self.call_id:
            return False
        if self.user is not None:
            needle = self.user.lower()
            haystack = [m.uri or ""] + [v for h in _USER_HEADERS for v in m.headers.getall(h)]
            if not any(needle in value.lower() for value in haystack):
                return False
        return True

    def _floor(self, m: FloorMessage) -> bool:
        if (self.methods and m.message.upper() not in self.methods) or self.call_id is not None:
            return False
        if self.user is None:
            return True
        needle = self.user.lower()
        return any(needle in str(m.get(name) or "").lower() for name in _FLOOR_USER_FIELDS)


#: The fields of a media-plane control message that name users or groups.
_FLOOR_USER_FIELDS = ("user_id", "granted_party", "queued_user_id", "group_id", "inviting_user_id",
                      "session_identity")


def _method(m: Message) -> str | None:
    if m.kind == "request":
        return (m.method or "").upper()
    cseq = m.cseq
    return cseq.split()[-1].upper() if cseq else None
