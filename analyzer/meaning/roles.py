"""Which role a server played for a UE — SIP core, MC server, CMS, IdMS, GMS — from what it did in the UE's
events, so a ladder labels its columns by role instead of by the same domain three times.

What the wire shows decides, never the address alone: the peer a UE registers with is its SIP core (on a
UE-side capture the MC server's requests reach the UE through it too, so it stays "SIP core"); a peer that
only carries MC requests (affiliation, calls...) is an MC server; an HTTP/TLS peer is a CMS, an IdMS or a GMS
by the document or token it served (and ``SystemMap.server_kind``'s host names). A server with several
roles shows them all (``CMS/GMS``); one that did none of these has none.
"""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.meaning.events import Event
from analyzer.meaning.systems import SystemMap, server_ip

SIP_CORE, MC_SERVER, CMS, IDMS, GMS = "SIP core", "MC server", "CMS", "IdMS", "GMS"
#: Order of several roles of one server.
ROLES = (SIP_CORE, MC_SERVER, CMS, IDMS, GMS)

_SIP_CORE_KINDS = frozenset({"registration", "deregistration"})
_HTTP_KINDS = frozenset({"profile-retrieval", "config-retrieval", "config-access-encrypted", "token-request"})


def event_role(e: Event, systems: SystemMap) -> str | None:
    """The role ``e`` shows its server in, or None when the event says nothing about it."""
    if e.kind in _SIP_CORE_KINDS:
        return SIP_CORE
    if e.kind not in _HTTP_KINDS:
        return MC_SERVER
    if e.kind == "token-request" or systems.server_kind(e.domain) == "idms":
        return IDMS
    host = (e.domain or "").split(".", 1)[0].lower()
    if e.kind == "config-retrieval" and (host == "gms" or "groups" in (e.detail or "").lower()):
        return GMS
    return CMS


def server_roles(events: Iterable[Event], systems: SystemMap) -> dict[str, str]:
    """Server IP address → its role(s) in ``events`` (``"CMS/GMS"`` for several; a SIP core that also
    relayed MC requests is the SIP core)."""
    seen: dict[str, set[str]] = {}
    for e in events:
        ip = server_ip(e.server)
        role = event_role(e, systems)
        if ip is not None and role is not None:
            seen.setdefault(ip, set()).add(role)
    roles = {}
    for ip, found in seen.items():
        if SIP_CORE in found:
            found.discard(MC_SERVER)
        roles[ip] = "/".join(r for r in ROLES if r in found)
    return roles
