"""MC facts read from header fields: the MC service a message belongs to, Contact facts, Reason, Warning."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

from analyzer.meaning.mcfacts.common import (
    content_types,
    first,
    parse_params,
    request_method,
    services_in,
    split_unquoted,
    to_int,
    unquote_value,
    values,
)
from analyzer.meaning.mcfacts.records import ContactFacts, Reason, SipWarning
from analyzer.meaning.mcfacts.uri import name_addr
from analyzer.messages.records import Message

# --- MC service ---------------------------------------------------------------------------------------

#: Where a SIP message names its MC service, strongest first: (header, which patterns). ICSI in the service
#: headers (24.229; IS-282 C.2.6), ICSI and feature tags in Accept-Contact / Contact. After these come the
#: ``vnd.3gpp.mc*`` media types of the body, then of Accept (``_SIP_LAST``).
_ICSI_ONLY = {"icsi": True, "tags": False}
_ICSI_AND_TAGS = {"icsi": True, "tags": True}
_MEDIA_ONLY = {"icsi": False, "tags": False, "media": True}
_SIP_FIRST = (("p-asserted-service", _ICSI_ONLY), ("p-preferred-service", _ICSI_ONLY),
              ("accept-contact", _ICSI_AND_TAGS), ("contact", _ICSI_AND_TAGS))
_SIP_LAST = (("accept", _MEDIA_ONLY),)
_HTTP = (("content-type", _MEDIA_ONLY), ("accept", _MEDIA_ONLY))


def _evidence(message: Message) -> Iterator[str]:
    """MC services the message names, strongest evidence first, computed lazily (bodies last)."""
    headers = message.headers
    if message.proto == "http":
        if message.uri:
            yield from services_in(message.uri, icsi=False, tags=False, auid=True)
        sources = _HTTP
    else:
        for name, kinds in _SIP_FIRST:
            for value in values(headers, name):
                yield from services_in(value, **kinds)
        for ctype in content_types(message):  # a multipart is split only if the headers said nothing
            yield from services_in(ctype, **_MEDIA_ONLY)
        sources = _SIP_LAST
    for name, kinds in sources:
        for value in values(headers, name):
            yield from services_in(value, **kinds)


def mc_service(message: Message) -> str | None:
    """``mcptt`` | ``mcvideo`` | ``mcdata`` | None: the MC service the message belongs to.

    SIP: ICSI in P-Asserted-Service / P-Preferred-Service, ICSI (``g.3gpp.icsi-ref``, quoted,
    percent-encoded or not) and feature tags (``+g.3gpp.mcptt``, with or without ``+``, sub-tags like
    ``g.3gpp.mcdata.sds``) in Accept-Contact and Contact, then the ``application/vnd.3gpp.mc*`` media types
    of the body (parts of a multipart too) and of Accept. HTTP: the XCAP AUID in the path
    (``org.3gpp.mcptt.*``), then ``vnd.3gpp.mc*`` in Content-Type / Accept. The first found wins.
    """
    return next(_evidence(message), None)


def mc_services(message: Message) -> tuple[str, ...]:
    """Every MC service the message names, in ``mc_service`` order (one REGISTER may serve several)."""
    out: list[str] = []
    for service in _evidence(message):
        if service not in out:
            out.append(service)
    return tuple(out)


# --- Contact ------------------------------------------------------------------------------------------

def contacts(message: Message) -> tuple[ContactFacts, ...]:
    """Facts of every Contact value (repeated headers and comma-joined values, in order)."""
    register = request_method(message) == "REGISTER"
    fallback = to_int(first(message.headers, "expires")) if register else None
    return tuple(_contact(value, fallback) for value in values(message.headers, "contact", split=True))


def contact_facts(message: Message) -> ContactFacts | None:
    """Facts of the first Contact (see ``ContactFacts``); None without a Contact header."""
    found = contacts(message)
    return found[0] if found else None


def _contact(value: str, fallback_expires: int | None) -> ContactFacts:
    if value.strip() == "*":
        return ContactFacts(None, expires=fallback_expires, wildcard=True)
    parsed = name_addr(value)
    if parsed is None:
        return ContactFacts(None, expires=fallback_expires)
    params = parsed.params
    tags, icsi = set(), []
    instance = None
    for name, val in params:
        bare = name[1:] if name.startswith("+") else name
        if name.startswith("+") or bare.startswith(("g.", "sip.")):
            tags.add(bare)
        if bare == "sip.instance":
            instance = val.strip().removeprefix("<").removesuffix(">").strip() or None
        elif bare == "g.3gpp.icsi-ref":
            icsi += [unquote(u).strip() for u in val.split(",") if u.strip()]
    services = []
    for text in [*icsi, *(f"+{t}" for t in tags)]:
        for service in services_in(text):
            if service not in services:
                services.append(service)
    expires = to_int(parsed.param("expires"))
    return ContactFacts(parsed.uri, parsed.display, params, instance, frozenset(tags), tuple(icsi),
                        tuple(services), "isfocus" in (n for n, _ in params),
                        expires if expires is not None else fallback_expires)


# --- Reason, Warning ----------------------------------------------------------------------------------

def reasons(message: Message) -> tuple[Reason, ...]:
    """Every Reason header value (RFC 3326): ``SIP;cause=200;text="…"``, ``Q.850;cause=16``…"""
    out = []
    for value in values(message.headers, "reason", split=True):
        protocol, *rest = split_unquoted(value, ";")
        protocol = protocol.strip().upper()
        if not protocol:
            continue
        params = parse_params(";".join(rest))
        cause = next((to_int(v) for k, v in params if k == "cause"), None)
        text = next((v for k, v in params if k == "text"), None)
        out.append(Reason(protocol, cause, text))
    return tuple(out)


def reason(message: Message) -> Reason | None:
    """The first Reason value, or None."""
    found = reasons(message)
    return found[0] if found else None


# Possessive quantifiers (``*+``, ``++``) never give back what they matched: each piece of the grammar is
# unambiguous (a quoted string ends at its first unescaped quote), so the answers are those of the plain
# quantifiers, without the retries that made a long run of blanks inside the text quadratic.
_WARNING = re.compile(r'\s*+(\d{3})\s++(\S++)\s++("(?:[^"\\]++|\\.)*+"?)\s*+\Z')
_MC_CODE = re.compile(r"\s*+(\d{3})(?=\s|\Z)")  # the text after it, stripped, is the MC code's text


def warnings(message: Message) -> tuple[SipWarning, ...]:
    """Every Warning value (``code agent "text"``); for 399 the MC code at the start of the text
    (24.379 §4.4) is ``mc_code``. A value that does not follow the grammar keeps its whole text."""
    out = []
    for value in values(message.headers, "warning", split=True):
        m = _WARNING.match(value)
        if m is None:
            out.append(SipWarning(None, None, value.strip()))
            continue
        code, agent, text = int(m.group(1)), m.group(2), unquote_value(m.group(3))
        mc = _MC_CODE.match(text) if code == 399 else None
        out.append(SipWarning(code, agent, text, int(mc.group(1)) if mc else None,
                              (text[mc.end():].strip() or None) if mc else None))
    return tuple(out)

