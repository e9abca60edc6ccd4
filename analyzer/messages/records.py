"""The message record every later stage reads, and its header multi-map."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


class Headers:
    """Immutable, ordered, case-insensitive multi-map of header fields.

    Names are stored in their canonical long lower-case form (SIP compact forms already expanded by the
    parser), values as the text after the colon with surrounding whitespace stripped and folded lines
    joined. A header repeated on several lines keeps one entry per line; ``getall(..., split=True)``
    also splits comma-joined values (outside quotes and angle brackets).
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: list[tuple[str, str]] | tuple[tuple[str, str], ...], lowered: bool = False):
        """``lowered=True``: the names are already canonical lower case (parsers say so, saving a pass)."""
        self._items = tuple(items) if lowered else tuple((n.lower(), v) for n, v in items)
        index: dict[str, list[str]] = {}
        for name, value in self._items:
            if name in index:
                index[name].append(value)
            else:
                index[name] = [value]
        self._index = index

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._index.get(name.lower())
        return values[0] if values else default

    def getall(self, name: str, split: bool = False) -> list[str]:
        values = self._index.get(name.lower(), [])
        if not split:
            return list(values)
        return [part for v in values for part in split_commas(v)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


def split_commas(value: str) -> list[str]:
    """Split a comma-joined header value, respecting quoted strings and <...> URIs."""
    parts, depth, quoted, start = [], 0, False, 0
    escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == "," and not depth:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded SIP or HTTP message with where and when it was seen.

    ``frames``: every frame that carried bytes of it; ``frame`` (the last) is where Wireshark shows it.
    ``body`` is the message body as sent after transfer decoding (HTTP chunked is undone).
    """

    proto: str  # sip | http
    kind: str  # request | response
    method: str | None
    uri: str | None  # SIP Request-URI or HTTP request target
    status: int | None
    reason: str | None
    headers: Headers
    body: bytes
    frames: tuple[int, ...]
    time: float
    src: str
    dst: str
    transport: str  # udp | tcp | tls | sctp
    framing: str | None = None  # websocket when carried in RFC 7118 frames
    reply_to: int | None = None  # HTTP response: frame of the request it answers

    def __post_init__(self):
        if self.proto not in ("sip", "http") or self.kind not in ("request", "response"):
            raise ValueError(f"bad message proto/kind {self.proto}/{self.kind}")

    @property
    def frame(self) -> int:
        return self.frames[-1]

    @property
    def call_id(self) -> str | None:
        return self.headers.get("call-id") if self.proto == "sip" else None

    @property
    def cseq(self) -> str | None:
        """CSeq normalised to ``"<number> <METHOD>"`` (single space)."""
        if self.proto != "sip":
            return None
        value = self.headers.get("cseq")
        return " ".join(value.split()) if value else None

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")
