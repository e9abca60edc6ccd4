"""The media-plane control signature: which UDP payloads carry MC floor / call / transmission control.

TS 24.380 and TS 24.581 send them as RTCP APP packets (RFC 3550 §6.7: version 2, packet type 204) named
"MCPT", "MCPC" or "MCV0".."MCV3", one per packet, never in a compound packet (TS 24.380 §8.1), so the
name sits at bytes 8-11 of the datagram. Everything else between media ports (RTP, other RTCP, SRTP,
SRTCP whose name is encrypted) stays media, dropped unread. ``analyzer.messages.floor`` decodes them."""

from __future__ import annotations

APP = 204
#: The APP names decoded, and their first three bytes (what the prefilter compares).
APP_NAMES = frozenset((b"MCPT", b"MCPC", b"MCV0", b"MCV1", b"MCV2", b"MCV3"))
NAME_PREFIXES = frozenset(name[:3] for name in APP_NAMES)


def is_control(payload: bytes) -> bool:
    """Does this UDP payload start with an RTCP APP packet of a name in ``APP_NAMES``?"""
    return len(payload) >= 12 and payload[1] == APP and 0x80 <= payload[0] < 0xC0 \
        and payload[8:12] in APP_NAMES
