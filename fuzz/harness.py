"""What every harness shares: the atheris glue, and one tiny record format for structured inputs.

A harness module defines ``load()``, which imports what it fuzzes and returns ``target(data: bytes)``.
The import happens inside ``load`` so that ``main`` can instrument mcxa's modules (coverage for libFuzzer)
before they are first imported; tests and the regression suite call ``load()`` directly, uninstrumented.
A target catches only the documented errors of what it drives (``InputError`` for file readers,
``MalformedMessage``...): anything else escaping it is a finding.

Structured inputs (a TCP conversation, a list of fragments) are *records*: a tag byte, a 2-byte
big-endian length, that many bytes; a last record cut short takes what is left. ``records`` and
``pack`` are the two directions, so seeds made from real captures and fuzzer mutations share one shape.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator

#: Packages whose code libFuzzer sees (coverage and comparison hooks). PyYAML is left out: instrumenting
#: its pure-Python scanner made the YAML harnesses 3x slower for coverage of code that is not ours.
INSTRUMENTED = ("analyzer",)

#: Records a structured input is cut into at most: bounds a target's work on one input.
MAX_RECORDS = 512


def records(data: bytes, limit: int = MAX_RECORDS) -> Iterator[tuple[int, bytes]]:
    """``(tag, body)`` pairs of a record-encoded input (see the module docstring)."""
    pos, n, count = 0, len(data), 0
    while pos < n and count < limit:
        tag = data[pos]
        size = int.from_bytes(data[pos + 1:pos + 3], "big")
        body = data[pos + 3:pos + 3 + size]
        pos += 3 + size
        count += 1
        yield tag, body


def pack(items: Iterable[tuple[int, bytes]]) -> bytes:
    """The inverse of ``records`` (bodies longer than 65 535 bytes are cut)."""
    out = bytearray()
    for tag, body in items:
        body = body[:0xFFFF]
        out += bytes((tag & 0xFF,)) + len(body).to_bytes(2, "big") + body
    return bytes(out)


#: A ``pieces`` cut from this value on means "in one piece".
WHOLE = 0x3F


def pieces(data: bytes, cut: int) -> list[bytes]:
    """``data`` in pieces of ``cut`` + 1 bytes (``cut`` >= ``WHOLE``: in one), so framers see every split."""
    if cut >= WHOLE or not data:
        return [data]
    size = 1 + cut
    return [data[i:i + size] for i in range(0, len(data), size)]


def main(load: Callable[[], Callable[[bytes], None]], argv: list[str] | None = None) -> None:
    """Run ``load()``'s target under atheris/libFuzzer with ``argv`` (libFuzzer flags, corpus dirs)."""
    import atheris

    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        target = load()
    atheris.Setup(list(sys.argv if argv is None else argv), target)
    atheris.Fuzz()
