"""What the extractors share: header lookup by long or compact name, parameter splitting, body parts and
XML documents read with problems reported instead of raised."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

from lxml import etree

from analyzer.meaning.mcfacts.records import SERVICES, Params, Problem
from analyzer.messages.multipart import BodyPart, body_parts
from analyzer.messages.parse import MalformedBody, MalformedMessage
from analyzer.messages.records import Headers, Message
from analyzer.messages.sip import COMPACT, parse_sip
from analyzer.messages.xml import XmlDoc, XmlRejected, parse_xml

#: long name -> compact form: our parser already expands compact names, but a ``Headers`` built elsewhere
#: (a test, another engine) may still carry them.
_SHORT = {long: short for short, long in COMPACT.items()}

Problems = list[Problem] | None


def values(headers: Headers, name: str, split: bool = False) -> list[str]:
    """Every value of a header under its long or compact name (``contact`` and ``m``)."""
    found = headers.getall(name, split)
    short = _SHORT.get(name)
    if short is not None and short in headers:
        found += headers.getall(short, split)
    return found


def first(headers: Headers, name: str) -> str | None:
    found = headers.get(name)
    if found is None and name in _SHORT:
        found = headers.get(_SHORT[name])
    return found


def report(problems: Problems, code: str, message: str) -> None:
    if problems is not None:
        problems.append(Problem(code, " ".join(message.split())[:300]))


def to_int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


def request_method(message: Message) -> str | None:
    """A request's method, or for a SIP response the method in its CSeq; upper case."""
    if message.kind == "request":
        return (message.method or "").upper() or None
    cseq = first(message.headers, "cseq")
    parts = cseq.split() if cseq else ()
    return parts[-1].upper() if len(parts) == 2 else None


def event_package(message: Message) -> str | None:
    """The Event header's package name, lower case, parameters dropped (``presence;id=1`` → ``presence``)."""
    value = first(message.headers, "event")
    if not value:
        return None
    return value.partition(";")[0].strip().lower() or None


# --- parameters ---------------------------------------------------------------------------------------

def split_unquoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes (backslash escapes honoured)."""
    if '"' not in text:
        return text.split(sep)
    out, start, quoted, escaped = [], 0, False, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


_QUOTED_PAIR = re.compile(r"\\(.)")


def unquote_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", value[1:-1])
    if value.startswith('"'):  # unterminated quote: keep what is there
        return _QUOTED_PAIR.sub(r"\1", value[1:])
    return value


def parse_params(text: str) -> Params:
    """``;a=1;b="x;y";flag`` (leading ``;`` optional) → ``(('a', '1'), ('b', 'x;y'), ('flag', ''))``."""
    params = []
    for item in split_unquoted(text, ";"):
        name, eq, val = item.partition("=")
        name = name.strip().lower()
        if name:
            params.append((name, unquote_value(val) if eq else ""))
    return tuple(params)


# --- services -----------------------------------------------------------------------------------------

_ICSI = re.compile(r"3gpp-service\.ims\.icsi\.(mcptt|mcvideo|mcdata)(?![a-z0-9-])")
_TAG = re.compile(r"(?<![\w.])\+?g\.3gpp\.(mcptt|mcvideo|mcdata)(?![\w-])")
_MEDIA = re.compile(r"vnd\.3gpp\.(mcptt|mcvideo|mcdata)[-.]")
_AUID = re.compile(r"org\.3gpp\.(mcptt|mcvideo|mcdata)\.")


def services_in(text: str, *, icsi: bool = True, tags: bool = True, media: bool = False,
                auid: bool = False) -> list[str]:
    """MC services named in a header value (lower-cased and percent-decoded first), in order of mention."""
    text = text.lower()
    if "%" in text:
        text = unquote(text)
    found: list[tuple[int, str]] = []
    for wanted, pattern in ((icsi, _ICSI), (tags, _TAG), (media, _MEDIA), (auid, _AUID)):
        if wanted:
            found.extend((m.start(), m.group(1)) for m in pattern.finditer(text))
    found.sort()
    out: list[str] = []
    for _, service in found:
        if service not in out:
            out.append(service)
    return out


def service_of_media(content_type: str) -> str | None:
    m = _MEDIA.search(content_type.lower())
    return m.group(1) if m else None


def service_of_namespace(namespace: str | None) -> str | None:
    """``urn:3gpp:ns:mcvideoPresInfo:1.0`` → ``mcvideo`` (any MC namespace naming its service)."""
    if not namespace:
        return None
    lowered = namespace.lower()
    return next((s for s in SERVICES if f":{s}" in lowered), None)


# --- bodies -------------------------------------------------------------------------------------------

_NESTED_SIP = "message/sip"  # third-party REGISTER: the UE's REGISTER travels inside (24.379 §7.3.1)


def parts(message: Message, problems: Problems = None) -> list[BodyPart]:
    """The leaf body parts of a message, a ``message/sip`` part opened one level; [] when there is none
    or the multipart cannot be split (then a problem is reported)."""
    if not message.body:
        return []
    ctype = first(message.headers, "content-type")
    try:
        found = body_parts(ctype, message.body)
    except MalformedBody as exc:
        report(problems, "malformed-body", f"{ctype or 'body'}: {exc.reason}")
        return []
    if not any(p.content_type == _NESTED_SIP for p in found):
        return list(found)
    out: list[BodyPart] = []
    for part in found:
        out.append(part)
        if part.content_type == _NESTED_SIP:
            try:
                inner = parse_sip(part.body)
                out.extend(body_parts(inner.headers.get("content-type"), inner.body))
            except (MalformedMessage, MalformedBody) as exc:
                report(problems, "malformed-body", f"message/sip part: {exc.reason}")
    return out


def content_types(message: Message) -> Iterator[str]:
    """The media types a message carries: its Content-Type, and if multipart each part's (split lazily)."""
    ctype = first(message.headers, "content-type")
    if not ctype:
        return
    yield ctype.lower()
    if ctype.lower().lstrip().startswith("multipart/") and message.body:
        try:
            for part in body_parts(ctype, message.body):
                yield part.content_type
        except MalformedBody:
            return


def find_media(found: list[BodyPart], suffix: str) -> BodyPart | None:
    return next((p for p in found if p.content_type.endswith(suffix)), None)


def read_xml(part: BodyPart, problems: Problems) -> XmlDoc | None:
    """The part's XML document, or None with a problem: refused by the hardened parser, or not XML."""
    try:
        return parse_xml(part.body)
    except XmlRejected as exc:
        report(problems, "xml-rejected", f"{part.content_type} part: {exc.reason}")
    except MalformedBody as exc:
        report(problems, "malformed-body", f"{part.content_type} part: {exc.reason}")
    except (etree.LxmlError, ValueError) as exc:  # belt and braces: lxml's own errors outside parse_xml
        report(problems, "malformed-body", f"{part.content_type} part: {exc}")
    return None
