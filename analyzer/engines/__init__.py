"""Decoding engines: each turns a capture file into the same ``Message``/``TlsHello`` records.

The registry maps ``--engine`` names to a decode function; downstream stages never know which one ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

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
    tls_keylog: str | None = None  # NSS key log (SSLKEYLOGFILE) to decrypt TLS; the tshark engine only


@dataclass(slots=True)
class Decoded:
    """A decode in progress: iterate ``items``; ``stats`` and ``diagnostics`` fill as you go."""

    path: str
    items: Iterator[Message | TlsHello]
    stats: DecodeStats = field(default_factory=DecodeStats)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)


#: An engine name may carry a TLS key log: ``tshark+keylog=/path/to/keys`` (a plain string, so it
#: travels unchanged through batch workers and report options).
KEYLOG_MARK = "+keylog="


def get_engine(name: str) -> Callable[[str, DecodeOptions], Decoded]:
    from analyzer.engines import dpkt_engine, tshark_engine

    name, _, keylog = name.partition(KEYLOG_MARK)
    engines = {"dpkt": dpkt_engine.decode, "tshark": tshark_engine.decode, "auto": dpkt_engine.decode}
    try:
        engine = engines[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r} (choose from {', '.join(engines)})") from None
    if not keylog:
        return engine

    def with_keylog(path: str, options: DecodeOptions | None = None) -> Decoded:
        return engine(path, replace(options or DecodeOptions(), tls_keylog=keylog))

    return with_keylog


ENGINES = ("auto", "dpkt", "tshark")


def resolve_engine(name: str, tls_keylog: str | None = None,
                   warn: Callable[[str], None] | None = None) -> str:
    """``auto`` → dpkt, or tshark when a TLS key log is given (only tshark decrypts; ``warn`` says so).

    Returns the engine name to hand to ``get_engine``, carrying the key log if there is one.
    """
    if not tls_keylog:
        return "dpkt" if name == "auto" else name
    if name != "tshark" and warn:
        warn(f"mcxa: --tls-keylog needs the tshark engine; using --engine tshark instead of {name}")
    return f"tshark{KEYLOG_MARK}{tls_keylog}"
