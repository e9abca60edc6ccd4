"""Message filters for ``mcxa messages``: by method, Call-ID and user."""

from __future__ import annotations

import re
from dataclasses import dataclass

from analyzer.messages.floor import FloorMessage
from analyzer.messages.records import Message

#: Headers whose URIs name the users a SIP or HTTP message is about (IMPUs, MC service IDs in HTTP).
_USER_HEADERS = ("from", "to", "p-asserted-identity", "p-preferred-identity", "contact", "p-associated-uri",
                 "x-3gpp-intended-identity", "x-3gpp-asserted-identity")
#: The private identity (IMPI) a REGISTER authenticates with.
_IMPI = re.compile(r'\busername\s*=\s*"([^"]{0,256})"', re.I)
#: mc*-info elements naming a user (TS 24.379 annex F): request URI, calling user, called party, client
#: id — their text, inside an optional mcpttURI/mcpttString element. Bounded, so linear in the body.
_MC_ID = re.compile(rb"<(?:[\w.-]{1,40}:)?(?:mcptt|mcvideo|mcdata|mc)-(?:request-uri|calling-user-id|"
                    rb"calling-user-identity|called-party-id|client-id)\b[^>]{0,200}>\s{0,20}"
                    rb"(?:<[^>/]{1,60}>)?([^<]{1,512})", re.I)


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Keeps a message when every given criterion matches.

    ``methods``: a request's method, or for a response the method in its CSeq (so ``INVITE`` keeps the
    whole INVITE transaction; HTTP responses carry no method and never match). ``user``: case-insensitive
    substring of the Request-URI or HTTP target, of the From, To, P-Asserted-Identity,
    P-Preferred-Identity, Contact, P-Associated-URI or X-3GPP-*-Identity values, of the IMPI (Authorization
    username), or of an MC service ID or client id in an mc*-info body (looked at only when the text
    occurs in the body at all).

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
            haystack += [u for h in ("authorization", "proxy-authorization") for v in m.headers.getall(h)
                         for u in _IMPI.findall(v)]
            if not any(needle in value.lower() for value in haystack) and not _in_body(m.body, needle):
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


def _in_body(body: bytes, needle: str) -> bool:
    """Whether an MC ID element of the body names ``needle`` (lower case); the cheap test first."""
    wanted = needle.encode("utf-8", "replace")
    if not body or wanted not in body.lower():
        return False
    return any(wanted in found.lower() for found in _MC_ID.findall(body))


def _method(m: Message) -> str | None:
    if m.kind == "request":
        return (m.method or "").upper()
    cseq = m.cseq
    return cseq.split()[-1].upper() if cseq else None
