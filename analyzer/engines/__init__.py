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
    Handled,
    ReadStop,
    WorkerShare,
)

__all__ = ["ENGINES", "ESP_SA_MARK", "FATES", "KEYLOG_MARK", "MAX_TLS_SERVERS", "OTHER_TLS_SERVERS",
           "DecodeOptions", "DecodeStats", "Decoded", "Handled", "ReadStop", "WorkerShare", "get_engine",
           "resolve_engine"]


#: An engine name may carry a TLS key log: ``tshark+keylog=/path/to/keys`` (a plain string, so it
#: travels unchanged through batch workers and report options).
KEYLOG_MARK = "+keylog="
#: ... and an IPsec ESP SA file: ``dpkt+esp-sa=/path/to/sas.yaml`` (after the key log, if both).
ESP_SA_MARK = "+esp-sa="


def get_engine(name: str) -> Callable[[str, DecodeOptions], Decoded]:
    from analyzer.engines import dpkt_engine, tshark_engine

    name, _, esp_sa = name.partition(ESP_SA_MARK)
    name, _, keylog = name.partition(KEYLOG_MARK)
    engines = {"dpkt": dpkt_engine.decode, "tshark": tshark_engine.decode, "auto": dpkt_engine.decode}
    try:
        engine = engines[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r} (choose from {', '.join(engines)})") from None
    if not keylog and not esp_sa:
        return engine
    keys = {"tls_keylog": keylog or None, "esp_sa": esp_sa or None}

    def with_keys(path: str, options: DecodeOptions | None = None) -> Decoded:
        return engine(path, replace(options or DecodeOptions(), **keys))

    return with_keys


ENGINES = ("auto", "dpkt", "tshark")


def resolve_engine(name: str, tls_keylog: str | None = None,
                   warn: Callable[[str], None] | None = None, esp_sa: str | None = None) -> str:
    """``auto`` → dpkt, or tshark when a TLS key log is given (only tshark decrypts TLS; ``warn`` says so).

    Returns the engine name to hand to ``get_engine``, carrying the key log and the ESP SA file if given.
    """
    if not tls_keylog:
        name = "dpkt" if name == "auto" else name
    else:
        if name != "tshark" and warn:
            warn(f"mcxa: --tls-keylog needs the tshark engine; using --engine tshark instead of {name}")
        name = f"tshark{KEYLOG_MARK}{tls_keylog}"
    return f"{name}{ESP_SA_MARK}{esp_sa}" if esp_sa else name
