"""``--ue``: finding UE sessions the way engineers name them.

A session is found by its id (``ue3``), by one of its IP addresses, or by any identity it used in any
system — MC service IDs (from the mc*-info bodies and the XCAP/HTTP requests), IMPUs, +sip.instance,
MC client ids — so a name used before a migration finds the session after it too. An IMPI is found through
the IMPU it is part of (``491700000001@ims.a...`` is inside ``sip:+491700000001@ims.a...``).
"""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.meaning.sessions import UeSession


def find_sessions(sessions: Iterable[UeSession], wanted: str) -> list[UeSession]:
    """The sessions ``wanted`` names: its id; else those with an identity or address equal to it (a
    ``sip:`` scheme may be left out, case ignored); else those with an identity containing it."""
    sessions = list(sessions)
    by_id = [s for s in sessions if s.id == wanted]
    if by_id:
        return by_id
    low = wanted.strip().lower()
    whole = {low, f"sip:{low}"}
    exact = [s for s in sessions if any(i.value.lower() in whole for i in s.identities)
             or low in s.addresses]
    return exact or [s for s in sessions if any(low in i.value.lower() for i in s.identities)]
