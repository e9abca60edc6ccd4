"""XCAP request targets (RFC 4825 §6): root, AUID, users/global tree, XUI, document, node selector."""

from __future__ import annotations

import re
from urllib.parse import unquote

from analyzer.meaning.mcfacts.common import first
from analyzer.meaning.mcfacts.records import XcapTarget
from analyzer.messages.records import Message

_ABSOLUTE = re.compile(r"(?i)https?://([^/?#]*)")
_AUID = re.compile(r"(?i)^(?:org|com|net)\.[a-z0-9-]++(?:\.[a-z0-9_-]++)++$")  # possessive: no backtracking
_MC_AUID = re.compile(r"(?i)^org\.3gpp\.(mcptt|mcvideo|mcdata)\.")
_SCOPES = ("users", "global")
#: AUIDs without a vendor prefix (RFC 4825/4826/4827/5874…), recognised only in front of users/global.
_IETF_AUIDS = frozenset({"resource-lists", "rls-services", "pres-rules", "pidf-manipulation", "xcap-caps",
                         "xcap-directory", "org.openmobilealliance.groups"})
_NODE_SEPARATOR = "~~"


def request_target(message: Message) -> tuple[str | None, str, str | None]:
    """(host, path, query) of an HTTP request: host from an absolute-form target, else the Host header
    (lower case, port dropped); path not decoded."""
    target = (message.uri or "").strip()
    host = None
    m = _ABSOLUTE.match(target)
    if m:
        host = m.group(1).rpartition("@")[2]
        target = target[m.end():] or "/"
    if host is None:
        host = first(message.headers, "host")
    path, _, query = target.partition("#")[0].partition("?")
    return _strip_port(host), path, query or None


def _strip_port(host: str | None) -> str | None:
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0] or None
    return host.partition(":")[0] if host.count(":") == 1 else host or None


def xcap_target(message: Message) -> XcapTarget | None:
    """Where an HTTP request points in an XCAP tree, or None when its path has no XCAP shape.

    The AUID is the segment in front of ``users`` / ``global``, or failing that the first segment shaped
    like a vendor AUID (``org.3gpp.mcptt.user-profile``, ``org.openmobilealliance.groups``). Segments are
    percent-decoded after splitting, so an encoded XUI (``sip%3Aalice%40x``) reads as ``sip:alice@x``;
    everything after ``~~`` is the node selector.
    """
    if message.proto != "http" or message.kind != "request" or not message.uri:
        return None
    host, path, _ = request_target(message)
    raw = path.split("/")
    node = None
    if _NODE_SEPARATOR in raw:
        cut = raw.index(_NODE_SEPARATOR)
        node = "/".join(unquote(s) for s in raw[cut + 1:]) or None
        raw = raw[:cut]
    segments = [unquote(s) for s in raw]
    at = _auid_index(segments)
    if at is None:
        return None
    auid = segments[at]
    root = "/".join(segments[:at]) or "/"
    tail = segments[at + 1:]
    scope = xui = document = None
    if tail and tail[0].lower() in _SCOPES:
        scope = tail[0].lower()
        if scope == "users" and len(tail) > 1:
            xui, rest = tail[1] or None, tail[2:]
        else:
            rest = tail[1:]
        document = "/".join(rest) or None
    elif tail:
        document = "/".join(tail) or None
    m = _MC_AUID.match(auid)
    return XcapTarget((message.method or "").upper() or None, host, root, auid, scope, xui, document, node,
                      m.group(1).lower() if m else None)


def _auid_index(segments: list[str]) -> int | None:
    for i in range(1, len(segments) - 1):
        if segments[i + 1].lower() in _SCOPES and segments[i] and _AUID.match(segments[i]):
            return i
    for i in range(1, len(segments) - 1):
        if segments[i + 1].lower() in _SCOPES and segments[i].lower() in _IETF_AUIDS:
            return i
    return next((i for i, s in enumerate(segments) if _AUID.match(s)), None)
