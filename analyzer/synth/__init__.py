"""The scenario synthesiser: a YAML scenario in, a pcapng capture of MC signalling out.

No public capture of an MC migration exists, so mcxa makes its own, for tests, CI and users who want to
see a compliant migration or reproduce a disputed fault. The messages follow the shapes of
``shared/domain/REFERENCE.md`` and of the real-stack captures in ``sample_captures/real``; the packets are
what a host stack sends (fragments, TCP handshakes/ACKs/FINs, checksums).

    scenario = load_scenario("migration.yaml")      # InputError (one line, file:line: key) when bad
    result = synthesize(scenario)                    # deterministic: same scenario + seed, same bytes
    write_pcapng(result, "migration.pcapng")
    result.declared                                  # the SIP/HTTP messages, with Wireshark frame numbers

Stages: ``scenario`` (the format, model, loader) → ``procedures`` (registry: ``do:`` → timed sends, one
module per family, using the ``sip`` and ``http`` builders, with ``faults`` applied) → ``wire`` (packets,
frame numbers) → ``pcapng`` (the file). A side tool: it imports only ``analyzer.base`` and
``analyzer.transport``, nothing of the pipeline it feeds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from analyzer.synth.esp import gm_sas, integrity_key, sa_yaml
from analyzer.synth.faults import step_times
from analyzer.synth.pcapng import pcapng_bytes
from analyzer.synth.procedures import PROCEDURES, Context, add_noise
from analyzer.synth.scenario import Scenario, load_scenario, parse_scenario
from analyzer.synth.wire import Declared, Hello, Wire

__all__ = ["Declared", "Hello", "Scenario", "SynthResult", "load_scenario", "parse_scenario", "synthesize",
           "write_pcapng"]

_TAIL = 0.5  # without truncate_at, background noise runs this long after the last message


@dataclass(frozen=True, slots=True)
class SynthResult:
    """What ``synthesize`` made.

    ``packets``: (epoch time, Ethernet frame) in capture order. ``declared``: every SIP/HTTP message on the
    wire, in capture order, at the frame that completes it. ``hellos``: TLS ClientHellos (HTTPS steps carry
    no readable message). ``notes``: steps that had nothing to send (e.g. releasing a call that failed).
    """

    scenario: Scenario
    packets: tuple[tuple[float, bytes], ...]
    declared: tuple[Declared, ...]
    hellos: tuple[Hello, ...]
    notes: tuple[str, ...]
    esp_sas: dict[tuple[str, str], int] | None = None  # the IPsec SAs on Gm (UEs with ``ipsec``), by SPI
    esp_key: bytes = b""


def synthesize(scenario: Scenario) -> SynthResult:
    """Build every step of the timeline (in file order, at its faulted time), the noise, then the packets."""
    ctx = Context(scenario)
    for step, at in step_times(scenario.timeline):
        ctx.step = step
        PROCEDURES[step.do](ctx, step, at)
    ctx.step = None
    if scenario.truncate_at is not None:
        end = scenario.truncate_at
    else:
        end = max((s.time for s in ctx.sends), default=0.0) + _TAIL
    add_noise(ctx, end)
    local = frozenset(i.address for ue in scenario.ues.values() for i in ue.identities.values())
    sas, key = gm_sas(scenario), integrity_key(scenario)
    wire = Wire(scenario.seed, local, esp=sas, esp_key=key)
    wire.play(ctx.sends)
    packets, declared, hellos = wire.finish(round(scenario.start * 1_000_000), scenario.truncate_at)
    return SynthResult(scenario, tuple(packets), tuple(declared), tuple(hellos), tuple(ctx.notes),
                       sas or None, key)


def write_pcapng(result: SynthResult, path: str | os.PathLike) -> str | None:
    """Write the packets as pcapng (one section, one Ethernet interface, microsecond timestamps); with IPsec
    SAs, their ``--esp-sa`` file (YAML) beside it, ``NAME.esp-sa``, whose path is returned."""
    data = pcapng_bytes(result.packets)
    with open(path, "wb") as fh:
        fh.write(data)
    if not result.esp_sas:
        return None
    sa_path = os.fspath(path).removesuffix(".pcapng") + ".esp-sa"
    with open(sa_path, "w", encoding="utf-8") as fh:
        fh.write(sa_yaml(result.esp_sas, result.esp_key, os.path.basename(path)))
    return sa_path
