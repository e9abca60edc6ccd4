"""Fuzzing mcxa: one atheris harness per parser, a whole-capture mutator, a runner.

    python -m fuzz list                          # the harnesses
    python -m fuzz seeds [HARNESS...]            # (re)build the seed corpora under fuzz/corpus/
    python -m fuzz run [HARNESS...] [--minutes N | --runs N] [--jobs J]
    python -m fuzz replay HARNESS FILE...        # run inputs through a harness's target, uninstrumented

Each parser harness is ``fuzz/fuzz_<name>.py`` (runnable alone: ``python -m fuzz.fuzz_sip CORPUS -runs=N``);
``capture`` is the structure-aware whole-capture mutator (``capture_mutator``), a seeded loop of its own.
Findings go to ``fuzz/findings/<harness>/``, campaign logs to ``fuzz/logs/`` (both gitignored);
``bench/fuzz_report.py`` sums the logs. This package imports no mcxa module at import time, so that a
harness can instrument mcxa's modules before their first import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")
FINDINGS = os.path.join(ROOT, "findings")
LOGS = os.path.join(ROOT, "logs")
DICTIONARIES = os.path.join(ROOT, "dictionaries")


@dataclass(frozen=True, slots=True)
class Harness:
    """One harness: what it fuzzes, its input size cap and its libFuzzer dictionary."""

    name: str
    about: str
    max_len: int = 4096  # libFuzzer -max_len: bytes of one input
    dictionary: str | None = None  # file in fuzz/dictionaries/

    @property
    def module(self) -> str:
        return f"fuzz.fuzz_{self.name}"


#: The whole-capture mutator's name (not a libFuzzer harness).
CAPTURE = "capture"

HARNESSES: dict[str, Harness] = {h.name: h for h in (
    Harness("pcap", "a capture file through the dpkt engine (pcap/pcapng/gzip reader and everything "
            "below)", 8192, "pcap.dict"),
    Harness("link", "link-layer decoders (LINK_DECODERS), GRE and GTP-U tunnels, the IP header", 2048),
    Harness("fragments", "IPv4/IPv6 fragment reassembly (FragmentReassembler)", 16384),
    Harness("esp", "IPsec ESP (EspReader: NULL heuristic, ICVs, AES-CBC/GCM, trailers) through the demux",
            8192, "sip.dict"),
    Harness("tcp", "TCP reassembly and one connection (TcpStream, TcpConnection), messages parsed", 8192,
            "sip.dict"),
    Harness("sctp", "SCTP DATA chunk reassembly (SctpAssembler)", 8192),
    Harness("sip", "SIP messages (parse_sip, to_message)", 8192, "sip.dict"),
    Harness("http", "HTTP/1.x messages (parse_http, to_message)", 8192, "http.dict"),
    Harness("framer", "the SIP/HTTP stream framer (MessageFramer), messages parsed", 4096, "sip.dict"),
    Harness("multipart", "multipart bodies and Content-Type parameters", 8192, "sip.dict"),
    Harness("xml", "the hardened XML parser and lookups by local name", 8192, "xml.dict"),
    Harness("websocket", "WebSocket framing, masking, permessage-deflate", 8192),
    Harness("tls", "the TLS ClientHello reader (server name)", 4096),
    Harness("floor", "MC media-plane control (RTCP APP MCPT/MCPC/MCV0-3 fields) and its prefilter signature",
            4096),
    Harness("rules", "rule files (strict YAML, load_rule), judged and rendered when they load", 4096,
            "yaml.dict"),
    Harness("scenario", "synth scenarios (parse_scenario), synthesised when they load", 4096, "yaml.dict"),
    Harness("expect", "replay expect files (check_expectations)", 4096, "yaml.dict"),
    Harness("mcfacts", "every MC fact extractor on a parsed message", 4096, "sip.dict"),
)}

#: Every name ``python -m fuzz run`` accepts.
NAMES = (*HARNESSES, CAPTURE)


def load_target(name: str):
    """The uninstrumented target of harness ``name`` (for ``capture``: the whole pipeline on a file's
    bytes), as the regression tests and ``python -m fuzz replay`` run it."""
    import importlib

    if name == CAPTURE:
        from fuzz.capture_mutator import Pipeline

        return Pipeline().run_file
    return importlib.import_module(HARNESSES[name].module).load()
