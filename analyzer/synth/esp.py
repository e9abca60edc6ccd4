"""IPsec ESP on Gm, as sec-agree sets it up (RFC 3329, TS 33.203) on a test network: every SIP datagram
between a UE's SIP port and its P-CSCF's travels in ESP, transport mode, NULL encryption with an
HMAC-SHA1-96 ICV (RFC 4303, RFC 2410, RFC 2404). Each direction of each UE/P-CSCF pair is one SA with its
own SPI and sequence numbers, like the two SA pairs sec-agree makes; SPIs and the integrity key come from
the scenario, so the same scenario gives the same bytes. ``sa_yaml`` writes them as an ``--esp-sa`` file,
with which mcxa checks every ICV (without it, mcxa still reads NULL-encrypted ESP).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from analyzer.synth.scenario import Scenario
from analyzer.transport.records import endpoint, endpoint_parts

ESP, UDP = 50, 17
P_CSCF_PORT = 5060
FIRST_SPI = 0x0000A001


def gm_sas(scenario: Scenario) -> dict[tuple[str, str], int]:
    """(source ip:port, destination ip:port) → SPI, both directions of every protected UE identity and its
    system's P-CSCF, in the scenario's order."""
    sas: dict[tuple[str, str], int] = {}
    for ue in scenario.ues.values():
        if ue.ipsec is None:
            continue
        for ident in ue.identities.values():
            ue_ep = endpoint(ident.address, ident.port)
            core = endpoint(scenario.systems[ident.system].sip_server, P_CSCF_PORT)
            for pair in ((ue_ep, core), (core, ue_ep)):
                sas.setdefault(pair, FIRST_SPI + len(sas))
    return sas


def integrity_key(scenario: Scenario) -> bytes:
    """The HMAC-SHA1 key of every SA (20 bytes), derived from the scenario's seed."""
    return hashlib.sha1(f"mcxa-synth-esp/{scenario.seed}".encode()).digest()


def seal(spi: int, seq: int, segment: bytes, key: bytes) -> bytes:
    """An ESP packet carrying the UDP ``segment``: header, payload, padding to 4 bytes, pad length, next
    header, and the ICV over all of it (NULL encryption: the payload stays readable)."""
    pad = -(len(segment) + 2) % 4
    signed = struct.pack(">II", spi, seq) + segment + bytes(range(1, pad + 1)) + bytes((pad, UDP))
    return signed + hmac.digest(key, signed, hashlib.sha1)[:12]


def sa_yaml(sas: dict[tuple[str, str], int], key: bytes, capture: str) -> str:
    """The ``--esp-sa`` file of ``capture``'s SAs."""
    lines = [f"# The IPsec SAs of {capture} (mcxa synth): NULL encryption, HMAC-SHA1-96.",
             "# mcxa reads the SIP without this file; with it (--esp-sa), every ICV is checked."]
    for (src, dst), spi in sas.items():
        (src_ip, _), (dst_ip, _) = endpoint_parts(src), endpoint_parts(dst)
        lines += [f"- spi: 0x{spi:08x}", f"  src: {src_ip}", f"  dst: {dst_ip}", "  encryption: null",
                  "  integrity: hmac-sha1-96", f'  integrity_key: "0x{key.hex()}"']
    return "\n".join(lines) + "\n"
