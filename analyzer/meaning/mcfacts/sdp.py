"""The media endpoints an SDP body (RFC 4566) offers or answers: where the RTP, RTCP and MC floor control
of a call flow, so that media-plane messages can be tied to the dialog that negotiated them.

TS 24.380 §12 / TS 24.379 put MCPTT floor control on its own ``m=application PORT udp MCPTT`` line, its
audio on ``m=audio``; RTCP goes to the ``a=rtcp`` port (RFC 3605) or the RTP port + 1. Read line by line
(linear), at most ``MAX_MEDIA`` media lines; a port or address that does not parse is skipped."""

from __future__ import annotations

import ipaddress

from analyzer.meaning.mcfacts.common import Problems, parts
from analyzer.messages.records import Message

MAX_MEDIA = 16


def _address(text: str) -> str | None:
    """The connection address of a ``c=`` value (``IN IP4 198.51.100.1`` or ``…/127`` multicast TTL)."""
    words = text.split()
    if len(words) < 3:
        return None
    try:
        return str(ipaddress.ip_address(words[2].split("/")[0]))
    except ValueError:
        return None


def _port(text: str) -> int | None:
    text = text.split("/")[0]
    ok = text.isascii() and text.isdigit() and 0 < len(text) <= 5 and int(text) < 65536
    return int(text) if ok else None


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def media_endpoints(message: Message, problems: Problems = None) -> tuple[str, ...]:
    """``ip:port`` of every RTP, RTCP and floor-control port the SDP of ``message`` names (port 0, a media
    line refused, names none); () without SDP."""
    sdp = next((p for p in parts(message, problems) if p.content_type == "application/sdp"), None)
    if sdp is None:
        return ()
    session_ip: str | None = None
    media: list[list] = []  # [port, ip or None, rtcp port or None, kind]
    for raw in sdp.body.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if len(media) >= MAX_MEDIA:
                break
            words = line[2:].split()
            port = _port(words[1]) if len(words) > 1 else None
            media.append([port, None, None, words[0].lower() if words else ""])
        elif line.startswith("c="):
            ip = _address(line[2:])
            if media:
                media[-1][1] = ip
            else:
                session_ip = ip
        elif line.startswith("a=rtcp:") and media:
            media[-1][2] = _port(line[7:].split()[0]) if line[7:].split() else None
    out: dict[str, None] = {}
    for port, ip, rtcp, kind in media:
        ip = ip or session_ip
        if not port or ip is None:
            continue
        out[_endpoint(ip, port)] = None
        if kind in ("audio", "video"):
            rtcp = rtcp or (port + 1 if port < 65535 else None)
            if rtcp:
                out[_endpoint(ip, rtcp)] = None
    return tuple(out)
