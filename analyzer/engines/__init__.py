"""Decoding engines: each turns a capture file into the same ``Message``/``TlsHello`` records.

The registry maps ``--engine`` names to a decode function; downstream stages never know which one ran.
``records`` holds what every engine gives (``Decoded``, ``DecodeStats``, ``DecodeOptions``, ``ReadStop``).
May import base, capture, transport and messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from analyzer.engines.records import (
    FATES,
    MAX_TLS_SERVERS,
    OTHER_TLS_SERVERS,
    Decoded,
    DecodeOptions,
    DecodeStats,
    ReadStop,
)

__all__ = ["ENGINES", "FATES", "KEYLOG_MARK", "MAX_TLS_SERVERS", "OTHER_TLS_SERVERS", "DecodeOptions",
           "DecodeStats", "Decoded", "ReadStop", "get_engine", "resolve_engine"]


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
