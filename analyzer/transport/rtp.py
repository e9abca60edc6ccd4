"""RTP a UE received, counted per stream and never parsed: how many packets reached each of a few endpoints
(the ports a call's SDP gave the UE), and the first and last of them (frame, time) — for the interruption
as the user hears it.

A second walk of the capture, made after judging and only for the endpoints of the calls a migration left
and entered: the first pass stays as fast as before (its prefilter drops media unread). The reader's
prefilter keeps only UDP to those endpoints (fixed offsets on Ethernet; other link types through the link
registry). RTP is told from RTCP by RFC 5761's rule (payload type byte 192-223 is RTCP); IP fragments and
tunnels are not followed (a voice packet is small; tunnelled media is not counted).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from analyzer.base.diagnostics import Diagnostics
from analyzer.capture import open_capture
from analyzer.capture.link import LINK_DECODERS, BadFrame, CannotFollow
from analyzer.transport.ip import BadIp, parse_ip
from analyzer.transport.records import endpoint_parts

UDP = 17


@dataclass(slots=True)
class RtpCount:
    """The RTP packets one endpoint received."""

    packets: int
    first_frame: int
    first_time: float
    last_frame: int
    last_time: float


def _key(endpoint: str) -> bytes | None:
    """``ip:port`` (``[v6]:port``) as the bytes of its address and port, as packets carry them."""
    host, port = endpoint_parts(endpoint)
    try:
        return ipaddress.ip_address(host).packed + int(port).to_bytes(2, "big")
    except (ValueError, OverflowError):
        return None


def received(path: str, endpoints: Iterable[str]) -> dict[str, RtpCount]:
    """Endpoint → the RTP it received in the capture at ``path`` (endpoints that received none are absent)."""
    names = {k: e for e in endpoints if (k := _key(e)) is not None}
    if not names:
        return {}
    wanted = frozenset(names)
    counts: dict[bytes, RtpCount] = {}

    def prefilter(buf: bytes, s: int, e: int, linktype: int) -> bool:
        if linktype != 1 or e - s < 44:
            return True  # (the slow way below decides)
        if buf[s + 12] == 0x08 and buf[s + 13] == 0x00:
            if buf[s + 14] != 0x45:
                return True  # IP options
            return buf[s + 23] == UDP and buf[s + 30:s + 34] + buf[s + 36:s + 38] in wanted
        if buf[s + 12] == 0x86 and buf[s + 13] == 0xDD:
            return e - s >= 64 and buf[s + 20] == UDP and buf[s + 38:s + 54] + buf[s + 56:s + 58] in wanted
        return True

    with open_capture(path, Diagnostics()) as reader:
        reader.prefilter = prefilter
        for number, time, linktype, data, _ in reader:
            key = _rtp_to(linktype, data)
            if key is None or key not in wanted:
                continue
            count = counts.get(key)
            if count is None:
                counts[key] = RtpCount(1, number, time, number, time)
            else:
                count.packets += 1
                count.last_frame, count.last_time = number, time
    return {names[k]: c for k, c in counts.items()}


def _rtp_to(linktype: int, data: bytes) -> bytes | None:
    """The destination (address and port bytes) of an RTP packet in a frame, or None."""
    decoder = LINK_DECODERS.get(linktype)
    try:
        found = decoder(data) if decoder is not None else None
        if found is None:
            return None
        pkt = parse_ip(found[0], data, found[1])
    except (BadFrame, CannotFollow, BadIp):
        return None
    udp = pkt.payload
    if (pkt.proto != UDP or pkt.frag_id is not None or len(udp) < 10 or not 0x80 <= udp[8] < 0xC0
            or 192 <= udp[9] <= 223):
        return None
    return pkt.dst + udp[2:4]
