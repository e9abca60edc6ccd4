"""Structure-aware mutations of one SIP/HTTP message (start line, header fields, Content-Length, XML or
multipart body), for the whole-capture mutator.

Each mutation knows what a message looks like, so most results still frame and parse and go on to the
transactions, events and rules: header values are swapped with the same header of another message in the
capture (Call-IDs, tags and CSeqs collide, so transactions and dialogs interleave), element names come
from the MC vocabulary, and the Content-Length is usually fixed up after the body changed. A share of
mutations is plain byte-level damage, and a few aim at the known hostile shapes: long runs of blanks,
non-ASCII digits, folded lines, DOCTYPEs, deep nesting.
"""

from __future__ import annotations

import os
import random
import re

from fuzz import DICTIONARIES

_LINE = re.compile(rb"\r?\n")
_TAG = re.compile(rb"<([A-Za-z_][\w.:-]{0,40})")
_NON_ASCII_DIGITS = ("\u00b2", "\u00b9", "\u0663", "\uff11")  # each isdigit(), none is 0-9


def _dictionary(*names: str) -> list[bytes]:
    """Tokens of libFuzzer dictionary files ("..." with \\xNN escapes)."""
    tokens = []
    for name in names:
        with open(os.path.join(DICTIONARIES, name), encoding="ascii") as f:
            for line in f:
                line = line.strip()
                if line.startswith('"') and line.endswith('"'):
                    tokens.append(line[1:-1].encode("latin-1").decode("unicode_escape").encode("latin-1"))
    return tokens


TOKENS = _dictionary("sip.dict", "http.dict")
XML_TOKENS = _dictionary("xml.dict")
METHODS = [b"INVITE", b"REGISTER", b"PUBLISH", b"SUBSCRIBE", b"NOTIFY", b"BYE", b"ACK", b"CANCEL", b"MESSAGE",
           b"OPTIONS", b"PRACK", b"UPDATE", b"INFO", b"REFER", b"GET", b"POST", b"PUT", b"DELETE", b"HEAD"]


def split(data: bytes) -> tuple[list[bytes], bytes, bytes]:
    """Head lines (start line first), the separator and the body."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = data.partition(sep)
        if found:
            return _LINE.split(head), sep, body
    return _LINE.split(data), b"", b""


def join(lines: list[bytes], sep: bytes, body: bytes) -> bytes:
    return b"\r\n".join(lines) + sep + body


def header_values(messages: list[bytes]) -> dict[bytes, list[bytes]]:
    """Lower-cased header name → values, over ``messages`` (the donors of a capture)."""
    found: dict[bytes, list[bytes]] = {}
    for m in messages:
        for line in split(m)[0][1:]:
            name, colon, value = line.partition(b":")
            if colon:
                found.setdefault(name.strip().lower(), []).append(value.strip())
    return found


def blanks(rng: random.Random) -> bytes:
    return rng.choice((b" ", b"\t", b" \t")) * rng.choice((2, 64, 1000, 20000))


def mutate_message(rng: random.Random, data: bytes, donors: dict[bytes, list[bytes]],
                   bodies: list[bytes]) -> bytes:
    """One mutation of a message; the Content-Length follows the body three times out of four."""
    lines, sep, body = split(data)
    op = rng.choices(_OPS, _WEIGHTS)[0]
    if op is _bytes:
        return _bytes(rng, data)
    lines, body = op(rng, lines, body, donors, bodies)
    if rng.random() < 0.75 and op is not _content_length:
        lines = [_set_length(line, len(body)) for line in lines]
    return join(lines, sep or b"\r\n\r\n", body)


def _set_length(line: bytes, n: int) -> bytes:
    name = line.partition(b":")[0].strip().lower()
    return line.partition(b":")[0] + b": " + str(n).encode() if name in (b"content-length", b"l") else line


def _pick(rng: random.Random, lines: list[bytes]) -> int:
    return rng.randrange(1, len(lines)) if len(lines) > 1 else 0


def _header_value(rng, lines, body, donors, bodies):
    i = _pick(rng, lines)
    name = lines[i].partition(b":")[0]
    pool = donors.get(name.strip().lower())
    choice = rng.random()
    if pool and choice < 0.6:
        value = rng.choice(pool)  # another message's value: ids collide, transactions interleave
    elif choice < 0.8:
        value = rng.choice(TOKENS)
    elif choice < 0.9:
        value = blanks(rng) + rng.choice(TOKENS)
    else:
        value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    lines[i] = name + b": " + value
    return lines, body


def _header_name(rng, lines, body, donors, bodies):
    i = _pick(rng, lines)
    names = [t for t in TOKENS if t.endswith(b": ") or t.endswith(b":")]
    lines[i] = rng.choice(names).rstrip(b": ") + b":" + lines[i].partition(b":")[2]
    return lines, body


def _lines(rng, lines, body, donors, bodies):
    i, j = _pick(rng, lines), _pick(rng, lines)
    kind = rng.randrange(4)
    if kind == 0 and len(lines) > 1:
        del lines[i]
    elif kind == 1:
        lines[i:i] = [lines[i]] * rng.choice((1, 2, 50))
    elif kind == 2:
        lines[i], lines[j] = lines[j], lines[i]
    else:  # fold: the rest of the line continues on the next one (RFC 3261 §7.3.1)
        cut = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:cut] + b"\r\n" + rng.choice((b" ", b"\t", blanks(rng))) + lines[i][cut:]
    return lines, body


def _start_line(rng, lines, body, donors, bodies):
    parts = lines[0].split(b" ", 2)
    kind = rng.randrange(5)
    if kind == 0 or len(parts) < 3:
        lines[0] = rng.choice(METHODS) + b" " + (parts[1] if len(parts) > 1 else b"sip:x@y") + b" SIP/2.0"
    elif kind == 1:
        status = rng.choice((100, 180, 183, 200, 202, 401, 403, 404, 408, 412, 481, 486, 487, 500, 503, 603,
                             rng.randrange(100, 700), rng.randrange(0, 10000)))
        lines[0] = rng.choice((b"SIP/2.0", b"HTTP/1.1")) + b" " + str(status).encode() + b" " + parts[-1]
    elif kind == 2:
        lines[0] = parts[0] + blanks(rng) + b" ".join(parts[1:]) + rng.choice((b"", blanks(rng)))
    elif kind == 3:
        pool = donors.get(b"to") or [b"sip:x@y"]
        lines[0] = parts[0] + b" " + rng.choice(pool).strip(b"<>") + b" " + parts[2]
    else:
        lines[0] = parts[0] + b" " + parts[1] + b" " + rng.choice((b"SIP/2.0", b"HTTP/1.1", b"SIP/3.0", b""))
    return lines, body


def _content_length(rng, lines, body, donors, bodies):
    value = rng.choice((str(rng.randrange(0, 2 * len(body) + 10)), "-1", "99999999999999999999", "",
                        " " * 100 + "0", rng.choice(_NON_ASCII_DIGITS) * rng.randrange(1, 4),
                        str(len(body)) + rng.choice(_NON_ASCII_DIGITS), "0x10", str(1 << 62)))
    found = [i for i, line in enumerate(lines)
             if line.partition(b":")[0].strip().lower() in (b"content-length", b"l")]
    line = b"Content-Length: " + value.encode("utf-8")
    if found:
        lines[rng.choice(found)] = line
    else:
        lines.append(line)
    return lines, body


def _body(rng, lines, body, donors, bodies):
    if rng.random() < 0.2 and bodies:
        return lines, rng.choice(bodies)
    if b"<" in body and rng.random() < 0.8:
        return lines, mutate_xml(rng, body)
    return lines, _bytes(rng, body)


def mutate_xml(rng: random.Random, body: bytes) -> bytes:
    """An XML-aware change: element names, duplicated or removed elements, values, DOCTYPEs, nesting."""
    tags = _TAG.findall(body)
    kind = rng.randrange(7)
    if kind == 0 and tags:
        old = rng.choice(tags)
        new = rng.choice([t for t in XML_TOKENS if t[:1] == b"<" and t[1:2].isalpha()] or [b"<x"])[1:]
        return body.replace(old, new.strip(b"<>/ "), rng.choice((1, -1)))
    if kind == 1 and tags:
        tag = rng.choice(tags)
        start = body.find(b"<" + tag)
        end = body.find(b"</" + tag, start)
        end = body.find(b">", end) + 1 if end > 0 else body.find(b">", start) + 1
        piece = body[start:end]
        return body[:end] + piece * rng.choice((0, 1, 2, 100)) + body[end:] if rng.random() < 0.7 \
            else body[:start] + body[end:]
    if kind == 2:
        return body.replace(b"affiliated", rng.choice((b"deaffiliated", b"affiliating", b"", b"x" * 300)))
    if kind == 3:
        return b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]>' + body
    if kind == 4:
        n = rng.choice((50, 99, 101, 5000))
        at = body.rfind(b"</")
        at = len(body) if at < 0 else at
        return body[:at] + b"<a>" * n + b"x" + b"</a>" * n + body[at:]
    if kind == 5:
        new = rng.choice((b"tel:", b"sips:", b"", b"sip:%00", b"sip:" + b"a" * 5000))
        return body.replace(b"sip:", new, 1)
    return _bytes(rng, body)


def _bytes(rng: random.Random, data: bytes) -> bytes:
    """Plain byte-level damage: flips, inserted tokens, deleted or duplicated ranges."""
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        n = len(data)
        kind = rng.randrange(5)
        at = rng.randrange(n + 1)
        if kind == 0 and n:
            data[min(at, n - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[at:at] = rng.choice(TOKENS + XML_TOKENS)
        elif kind == 2:
            del data[at:at + rng.choice((1, 4, 64, 1000))]
        elif kind == 3:
            data[at:at] = data[at:at + rng.choice((2, 16, 200))] * rng.choice((1, 3, 30))
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    return bytes(data)


_OPS = (_header_value, _header_name, _lines, _start_line, _content_length, _body, _bytes)
_WEIGHTS = (30, 6, 14, 8, 8, 20, 14)
