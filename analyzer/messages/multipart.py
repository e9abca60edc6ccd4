"""Body parts of a SIP/HTTP body: multipart/mixed and multipart/related (RFC 2046 §5.1), flattened.

MC requests carry SDP, resource-lists and mcptt-info in one multipart body, in any order, so callers
look parts up by content type (``find_part``) rather than by position. Bad multipart data yields what
could be read plus a problem line; only a body with nothing usable raises ``MalformedBody``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from analyzer.messages.parse import HeaderNames, MalformedBody, parse_fields, split_head
from analyzer.messages.records import Headers

__all__ = ["BodyPart", "BodyParts", "MalformedBody", "body_parts", "find_part", "parse_content_type"]

_MAX_NESTING = 8  # nested multiparts deeper than this are kept whole, not opened
_BOUNDARY_SHOWN = 70  # characters of a boundary quoted in a problem (RFC 2046 boundaries are 1-70)
_DEFAULT_PART_TYPE = "text/plain"  # RFC 2046 §5.1: a part without Content-Type is text/plain

_PARAM = re.compile(r';\s*+([^\s=;]++)\s*+(?:=\s*+("(?:[^"\\]++|\\.)*+"?|[^;]*+))?')  # possessive: linear
_QUOTED_PAIR = re.compile(r"\\(.)")
_NAMES = HeaderNames({})


def parse_content_type(value: str | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``'type/subtype'`` lower-cased, and its parameters as ``(lower-case name, unquoted value)`` pairs."""
    if not value:
        return "", ()
    media, _, rest = value.partition(";")
    params = []
    for m in _PARAM.finditer(";" + rest):
        raw = (m.group(2) or "").strip()
        if raw.startswith('"'):
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:])
        params.append((m.group(1).lower(), raw))
    return media.strip().lower(), tuple(params)


@dataclass(frozen=True, slots=True)
class BodyPart:
    """One leaf part: its media type (lower case, no parameters), parameters, part headers and bytes."""

    content_type: str
    params: tuple[tuple[str, str], ...]
    headers: Headers
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.params if k == name), default)

    @property
    def disposition(self) -> str | None:
        """The Content-Disposition type alone, lower case (e.g. ``recipient-list``)."""
        value = self.headers.get("content-disposition")
        return value.partition(";")[0].strip().lower() if value else None

    @property
    def content_id(self) -> str | None:
        return self.headers.get("content-id")


class BodyParts(list):
    """A list of ``BodyPart`` that also carries the problems met while splitting the body."""

    __slots__ = ("problems",)

    def __init__(self, parts: Iterable[BodyPart] = (), problems: Iterable[str] = ()):
        super().__init__(parts)
        self.problems: tuple[str, ...] = tuple(problems)


def body_parts(content_type: str | None, body: bytes) -> BodyParts:
    """Split ``body`` into leaf parts by its Content-Type; a non-multipart body is one part.

    An empty body has no parts. Raises ``MalformedBody`` only for a multipart body with no usable
    delimiter at all.
    """
    if not body:
        return BodyParts()
    media, params = parse_content_type(content_type)
    if not media.startswith("multipart/"):
        headers = Headers([("content-type", content_type)] if content_type else [])
        return BodyParts([BodyPart(media, params, headers, body)])
    parts: list[BodyPart] = []
    problems: list[str] = []
    _split(media, params, body, parts, problems, 0)
    return BodyParts(parts, problems)


def find_part(parts: Iterable[BodyPart], content_type_suffix: str) -> BodyPart | None:
    """The first part whose media type ends with the suffix (``'mcptt-info+xml'`` or the full type)."""
    suffix = content_type_suffix.lower()
    return next((p for p in parts if p.content_type.endswith(suffix)), None)


def _split(media: str, params: tuple[tuple[str, str], ...], body: bytes, parts: list[BodyPart],
           problems: list[str], depth: int) -> None:
    boundary = next((v for k, v in params if k == "boundary"), None)
    if not boundary:
        boundary = _guess_boundary(body)
        if boundary is None:
            raise MalformedBody(f"{media[:40]} body without a boundary parameter or delimiter line")
        problems.append(f"{media[:40]} without boundary parameter; used "
                        f"{boundary[:_BOUNDARY_SHOWN]!r} from the body")
    chunks, closed = _chunks(body, boundary.encode("utf-8", "surrogateescape"))
    shown = boundary if len(boundary) <= _BOUNDARY_SHOWN else boundary[:_BOUNDARY_SHOWN] + "…"
    if not chunks:
        raise MalformedBody(f"{media[:40]} boundary {shown!r} not found in the body")
    if not closed:
        problems.append(f"{media[:40]} boundary {shown!r} has no closing delimiter")
    for number, chunk in enumerate(chunks, 1):
        part = _part(chunk, number, problems)
        if part.content_type.startswith("multipart/"):
            if depth + 1 < _MAX_NESTING:
                try:
                    _split(part.content_type, part.params, part.body, parts, problems, depth + 1)
                    continue
                except MalformedBody as exc:
                    problems.append(f"nested part {number}: {exc.reason}; kept whole")
            else:
                problems.append(f"multipart nested deeper than {_MAX_NESTING}; inner part kept whole")
        parts.append(part)


def _guess_boundary(body: bytes) -> str | None:
    # Best effort for a missing parameter: the first non-blank line, if it looks like "--boundary".
    line = body.lstrip(b"\r\n \t").split(b"\n", 1)[0].rstrip(b"\r \t")
    if line.startswith(b"--") and len(line) > 2 and not line.endswith(b"--"):
        return line[2:].decode("utf-8", "surrogateescape")
    return None


def _chunks(body: bytes, boundary: bytes) -> tuple[list[bytes], bool]:
    """The bytes between delimiter lines (preamble and epilogue dropped), and whether it was closed.

    A delimiter is ``--boundary`` at the start of a line followed only by white space; the line break
    in front of it belongs to it (RFC 2046 §5.1.1), so it is not part of the preceding part.
    """
    delimiter = b"--" + boundary
    chunks: list[bytes] = []
    content_start = -1
    pos = 0
    while True:
        i = body.find(delimiter, pos)
        if i < 0:
            break
        pos = i + len(delimiter)
        if i and body[i - 1] != 0x0A:
            continue
        closing = body.startswith(b"--", pos)
        eol = body.find(b"\n", pos)
        tail = body[pos + 2 if closing else pos: len(body) if eol < 0 else eol]
        if tail.strip() and not closing:
            continue  # "--boundaryX": a longer line that merely starts with the boundary
        if content_start >= 0:
            chunks.append(body[content_start:_line_break_start(body, i)])
        if closing:
            return chunks, True
        content_start = len(body) if eol < 0 else eol + 1
    if content_start >= 0:
        chunks.append(body[content_start:])
    return chunks, False


def _line_break_start(body: bytes, i: int) -> int:
    if i and body[i - 1] == 0x0A:
        i -= 1
        if i and body[i - 1] == 0x0D:
            i -= 1
    return i


def _part(chunk: bytes, number: int, problems: list[str]) -> BodyPart:
    raw_head, body_start = split_head(chunk, 0)
    if body_start < 0:
        raw_head, body_start = _headers_without_blank_line(chunk)
        problems.append(f"part {number}: no blank line after its headers" if raw_head
                        else f"part {number}: neither headers nor a blank line before its body")
    items, field_problems = parse_fields(raw_head, _NAMES)
    problems.extend(f"part {number}: {p}" for p in field_problems)
    headers = Headers(items, lowered=True)
    content_type = headers.get("content-type")
    media, params = parse_content_type(content_type)
    return BodyPart(media or _DEFAULT_PART_TYPE, params, headers, chunk[body_start:])


_HEADER_LINE = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]++[ \t]*+:")  # RFC 9110 token, then ':'


def _headers_without_blank_line(chunk: bytes) -> tuple[bytes, int]:
    # Some writers put the body right after the part headers. Take leading lines that look like header
    # fields (including folded continuations) as headers and the rest as body.
    pos = 0
    while pos < len(chunk):
        eol = chunk.find(b"\n", pos)
        end = len(chunk) if eol < 0 else eol + 1
        line = chunk[pos:end]
        if not (_HEADER_LINE.match(line) or (pos and line[:1] in (b" ", b"\t"))):
            break
        pos = end
    return chunk[:pos], pos
