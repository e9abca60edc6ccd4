"""``--ue``: finding UE sessions the way engineers name them.

A session is found by its id (``ue3``), by one of its IP addresses, or by any identity it used in any
system — MC service IDs (from the mc*-info bodies and the XCAP/HTTP requests), IMPUs, +sip.instance,
MC client ids — so a name used before a migration finds the session after it too — or by the IMPI its
registrations authenticated with.
"""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.meaning.sessions import UeSession


def find_sessions(sessions: Iterable[UeSession], wanted: str) -> list[UeSession]:
    """The sessions ``wanted`` names: its id; else those with an identity, IMPI or address equal to it (a
    ``sip:`` scheme may be left out, case ignored); else those with an identity or IMPI containing it."""
    sessions = list(sessions)
    by_id = [s for s in sessions if s.id == wanted]
    if by_id:
        return by_id
    low = wanted.strip().lower()
    whole = {low, f"sip:{low}"}
    exact = [s for s in sessions if any(name in whole for name in _names(s)) or low in s.addresses]
    return exact or [s for s in sessions if any(low in name for name in _names(s))]


def _names(s: UeSession) -> list[str]:
    """Every identity of the session, and the IMPIs of its registrations, in lower case."""
    return [*(i.value.lower() for i in s.identities), *(e.impi.lower() for e in s.events if e.impi)]
