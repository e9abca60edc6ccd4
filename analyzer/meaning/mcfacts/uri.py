"""SIP/TEL URIs and name-addr header values (RFC 3261 §19.1, §20.10; RFC 3966), taken apart leniently."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

from analyzer.meaning.mcfacts.common import parse_params, split_unquoted, unquote_value
from analyzer.meaning.mcfacts.records import NameAddr, Uri

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*+):")
#: The same identities come back in every request of a dialog and every refresh: the last few thousand
#: answers are kept (results are immutable; long texts, rare and maybe hostile, are never kept).
_REMEMBERED, _REMEMBER_UP_TO = 4096, 256


def _remembered(parse):
    cached = lru_cache(maxsize=_REMEMBERED)(parse)

    def lookup(text):
        return cached(text) if text and len(text) <= _REMEMBER_UP_TO else parse(text)

    lookup.__doc__, lookup.__wrapped__ = parse.__doc__, parse
    return lookup


@_remembered
def uri_parts(text: str | None) -> Uri | None:
    """Take a URI apart: ``sip:alice@[fd00::1]:5060;transport=tcp`` → scheme, user, host, port, params.

    Angle brackets around it are dropped. Returns None for empty text or text without a scheme.
    """
    if not text:
        return None
    text = text.strip()
    if text.startswith("<"):
        text = text[1:].partition(">")[0].strip()
    m = _SCHEME.match(text)
    if m is None:
        return None
    scheme = m.group(1).lower()
    rest = text[m.end():]
    if scheme in ("sip", "sips"):
        return _sip(text, scheme, rest)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        return Uri(text, scheme, unquote(number.strip()) or None, None, None, parse_params(params))
    if scheme in ("http", "https"):
        authority = rest[2:].split("/", 1)[0].split("?", 1)[0] if rest.startswith("//") else ""
        host, port = _hostport(authority.rpartition("@")[2])
        return Uri(text, scheme, None, host, port)
    return Uri(text, scheme)


def _sip(text: str, scheme: str, rest: str) -> Uri:
    full = rest
    rest = rest.partition("?")[0]  # URI headers (?Subject=…) are not part of the identity
    at = rest.find("@")
    user = None
    if at >= 0:
        name, colon, _ = rest[:at].partition(":")
        user = unquote(name.strip())
        if colon:  # "user:password@": the password is dropped, from the text too
            text = text[:len(text) - len(full)] + name + full[at:]
        rest = rest[at + 1:]
    hostport, _, params = rest.partition(";")
    host, port = _hostport(hostport)
    return Uri(text, scheme, user, host, port, parse_params(params))


def _hostport(text: str) -> tuple[str | None, int | None]:
    text = text.strip()
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""  # a bare IPv6 literal (not legal, but seen) has several colons
    port_number = int(port) if port.isascii() and port.isdigit() and len(port) <= 5 else None
    return host.strip().lower() or None, port_number


@_remembered
def name_addr(value: str | None) -> NameAddr | None:
    """``"Alice" <sip:alice@x;transport=tcp>;tag=1`` → display ``Alice``, the URI, header params ``tag``.

    Also bare addr-specs (``sip:alice@x;tag=1``: the parameters then belong to the header, RFC 3261
    §20) and ``tel:`` URIs. None for empty text.
    """
    if not value:
        return None
    text = value.strip()
    if not text:
        return None
    display = None
    rest = text
    if text.startswith('"'):
        end = _closing_quote(text)
        display = unquote_value(text[:end + 1]) if end > 0 else unquote_value(text)
        rest = text[end + 1:] if end > 0 else ""
    lt = rest.find("<")
    if lt >= 0:
        if display is None:
            display = rest[:lt].strip() or None
        gt = rest.find(">", lt)
        inner, tail = (rest[lt + 1:gt], rest[gt + 1:]) if gt >= 0 else (rest[lt + 1:], "")
        uri = uri_parts(inner)
        return NameAddr(display, uri, parse_params(tail))
    head, *params = split_unquoted(rest, ";")
    if head.strip().lower().startswith("tel:"):
        # a bare tel: URI keeps its own parameters (phone-context, ext…); only the tag is the header's
        own: list[str] = []
        tags: list[str] = []
        for p in params:  # one pass: a test ``p not in own`` per parameter was quadratic
            (tags if p.strip().lower().partition("=")[0].strip() == "tag" else own).append(p)
        return NameAddr(display, uri_parts(";".join([head, *own])), parse_params(";".join(tags)))
    return NameAddr(display, uri_parts(head), parse_params(";".join(params)))


def _closing_quote(text: str) -> int:
    escaped = False
    for i in range(1, len(text)):
        ch = text[i]
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return i
    return -1


def domain_of(uri: str | Uri | NameAddr | None) -> str | None:
    """The domain an identity belongs to: the host of a SIP URI (lower case, no port), or the
    ``phone-context`` of a ``tel:`` URI when it is a domain name. Accepts URI text or a name-addr value."""
    if isinstance(uri, NameAddr):
        uri = uri.uri
    elif isinstance(uri, str):
        uri = (name_addr(uri).uri if "<" in uri else uri_parts(uri)) if uri.strip() else None
    if uri is None:
        return None
    if uri.scheme == "tel":
        context = uri.param("phone-context")
        return context.lower() if context and not context.startswith("+") else None
    return uri.host
