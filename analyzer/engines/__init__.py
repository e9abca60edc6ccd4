"""Decoding engines: each turns a capture file into the same ``Message``/``TlsHello`` records.

The registry maps ``--engine`` names to a decode function; downstream stages never know which one ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from analyzer.diagnostics import Diagnostics
from analyzer.messages.records import Message
from analyzer.transport.records import TlsHello


@dataclass(slots=True)
class DecodeStats:
    """What one decode saw, for the report's ``stats`` block and the progress line."""

    packets: int = 0
    sip_messages: int = 0
    http_messages: int = 0
    tls_hellos: int = 0
    bytes_read: int = 0
    last_time: float | None = None  # capture time of the last packet in the file (read so far)

    def count(self, item) -> None:
        if isinstance(item, TlsHello):
            self.tls_hellos += 1
        elif item.proto == "sip":
            self.sip_messages += 1
        else:
            self.http_messages += 1


@dataclass(slots=True)
class DecodeOptions:
    """Knobs every engine accepts."""

    sip_ports: frozenset[int] = frozenset((5060, 5061))
    workers: int = 2  # processes for one capture: 2 runs the transport stage in a worker (Linux)
    progress: Callable[[DecodeStats], None] | None = None  # called now and then while reading


@dataclass(slots=True)
class Decoded:
    """A decode in progress: iterate ``items``; ``stats`` and ``diagnostics`` fill as you go."""

    path: str
    items: Iterator[Message | TlsHello]
    stats: DecodeStats = field(default_factory=DecodeStats)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)


def get_engine(name: str) -> Callable[[str, DecodeOptions], Decoded]:
    from analyzer.engines import dpkt_engine

    engines = {"dpkt": dpkt_engine.decode}
    try:
        return engines[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r} (choose from {', '.join(engines)})") from None
