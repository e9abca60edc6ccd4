#!/usr/bin/env python3
"""Write a core-side capture: what an MC server or P-CSCF sees of N UEs, SIP only, for benchmarks.

Each UE runs the whole example timeline (``analyzer/synth/examples/migration.yaml``: registration, service
authorisation, affiliations, group and private calls, the migration to system B and back, OPTIONS
keep-alives) minus what a SIP node never sees: the HTTP steps (token, profile retrieval) and the RTP
noise. UEs differ in every identity (MC IDs, IMPUs, instance and client ids, addresses, private-call
peers; ten UEs share each talk group) and arrive as a Poisson process of ``--rate`` UEs per second, so
about ``rate × 30 s`` UEs are active at any moment whatever N is: a bigger capture is a *longer* one,
not a denser one.

Memory stays flat: each UE is synthesised alone (``analyzer.synth.synthesize``: a few hundred packets),
just before the merge reaches its start, and the per-UE packet lists are merged by time through a heap
into one pcapng written in batches. Same ``--ues``, ``--seed`` and ``--rate``, same bytes. Beside the
capture, ``FILE.meta.json`` says what it holds (UEs, packets, SIP messages, most UEs active at once),
which ``bench_analyze.py`` reads for its per-UE figures.

    python bench/make_core_capture.py --ues 2000 --seed 1 -o bench/out/core-2000-1.pcapng
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import random
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analyzer.synth import Scenario, load_scenario, synthesize  # noqa: E402
from analyzer.synth.pcapng import pcapng_bytes  # noqa: E402
from analyzer.synth.scenario import STEP_KINDS, Identity, Noise, Step, Ue  # noqa: E402

EXAMPLE = REPO / "analyzer" / "synth" / "examples" / "migration.yaml"
APPLICATION = "mcxa bench/make_core_capture.py"
UES_PER_GROUP = 10
#: A UE's packets start at most this long before its timeline does (a TCP handshake takes 3 ms).
_LEAD = 0.010
_BATCH = 4096  # packets per write
#: First address of the UEs in each system of the example (UE i gets this + i + 1).
_ADDRESSES = {"A": ipaddress.IPv4Address("10.128.0.0"), "B": ipaddress.IPv4Address("10.192.0.0")}
_GROUP = re.compile(r"^sip:G(\d+)@")
_PEER = re.compile(r"^sip:([^@]+)@")


def template() -> Scenario:
    """The example as a SIP node sees it: without HTTP steps and RTP, keep-alives kept."""
    example = load_scenario(EXAMPLE)
    sip_steps = tuple(s for s in example.timeline if STEP_KINDS[s.do].proto == "sip")
    return replace(example, timeline=sip_steps, noise=Noise(0, example.noise.options_interval))


def ue_name(i: int) -> str:
    return f"ue{i:05d}"


def _identity(ident: Identity, i: int) -> Identity:
    """UE ``i``'s identity in one system: the example's, renumbered (mc ids, IMPU, IMPI, address)."""
    user, domain = ident.mc_id.split(":", 1)[1].split("@", 1)
    suffix = user.split(".", 1)[1] if "." in user else ""
    mc_id = f"sip:{ue_name(i)}{'.' + suffix if suffix else ''}@{domain}"
    impu_domain = ident.impu.split("@", 1)[1]
    impu = f"sip:+4917{i:08d}@{impu_domain}"
    address = str(_ADDRESSES[ident.system] + i + 1)
    return replace(ident, mc_id=mc_id, impu=impu, impi=impu.split(":", 1)[1].lstrip("+"), address=address)


def _step(step: Step, i: int, ue: str) -> Step:
    group = f"t{i // UES_PER_GROUP:04d}g"

    def rename_group(uri: str) -> str:
        return _GROUP.sub(lambda m: f"sip:{group}{m.group(1)}@", uri)

    peer = _PEER.sub(lambda m: f"sip:{m.group(1)}-{i:05d}@", step.peer) if step.peer else None
    return replace(step, ue=ue, groups=tuple(map(rename_group, step.groups)),
                   group=rename_group(step.group) if step.group else None, peer=peer)


def ue_scenario(base: Scenario, i: int, seed: int, start: float) -> Scenario:
    """UE ``i`` alone: the template's one UE renamed and renumbered, its own seed, starting at ``start``."""
    (ue,) = base.ues.values()
    name = ue_name(i)
    renamed = Ue(name, f"urn:gsma:imei:35209900-{i:06d}-0", f"{name}-{ue.service}-client",
                 {system: _identity(ident, i) for system, ident in ue.identities.items()}, ue.transport,
                 ue.service, ue.user_agent)
    return replace(base, name=f"{base.name} ({name})", seed=seed * 1_000_003 + i, start=start,
                   ues={name: renamed}, timeline=tuple(_step(s, i, name) for s in base.timeline))


def arrivals(ues: int, seed: int, rate: float, first: float) -> list[float]:
    """Start times (epoch seconds) of the UEs: a Poisson process of ``rate`` per second from ``first``."""
    rng = random.Random(f"core-capture/{seed}")
    t, out = first, []
    for _ in range(ues):
        out.append(round(t, 6))
        t += rng.expovariate(rate)
    return out


@dataclass(slots=True)
class Counts:
    packets: int = 0
    sip_messages: int = 0
    max_active: int = 0  # most UEs with packets still to come at once
    first: float | None = None
    last: float | None = None


def packets(ues: int, seed: int, rate: float, counts: Counts) -> Iterator[tuple[float, bytes]]:
    """Every UE's packets, merged by time (ties: UE, then its own order); a UE is synthesised only when
    the merge reaches its start, and dropped once its last packet is out."""
    base = template()
    starts = arrivals(ues, seed, rate, base.start)
    heap: list[tuple[float, int, int, tuple]] = []
    following = 0
    while True:
        while following < ues and (not heap or starts[following] - _LEAD <= heap[0][0]):
            result = synthesize(ue_scenario(base, following, seed, starts[following]))
            counts.sip_messages += sum(1 for d in result.declared if d.proto == "sip")
            if result.packets:
                heapq.heappush(heap, (result.packets[0][0], following, 0, result.packets))
            following += 1
        if not heap:
            return
        counts.max_active = max(counts.max_active, len(heap))
        _, i, pos, own = heap[0]
        yield own[pos]
        if pos + 1 < len(own):
            heapq.heapreplace(heap, (own[pos + 1][0], i, pos + 1, own))
        else:
            heapq.heappop(heap)


def write_capture(path: Path, ues: int, seed: int, rate: float) -> dict:
    """Write the pcapng and its ``.meta.json``; return the metadata."""
    counts = Counts()
    header = pcapng_bytes((), APPLICATION)
    with open(path, "wb") as fh:
        fh.write(header)
        batch: list[tuple[float, bytes]] = []
        for packet in packets(ues, seed, rate, counts):
            if counts.first is None:
                counts.first = packet[0]
            counts.last = packet[0]
            counts.packets += 1
            batch.append(packet)
            if len(batch) >= _BATCH:
                fh.write(pcapng_bytes(batch, APPLICATION)[len(header):])
                batch.clear()
        fh.write(pcapng_bytes(batch, APPLICATION)[len(header):])
    meta = {"generator": "bench/make_core_capture.py", "ues": ues, "seed": seed, "rate": rate,
            "packets": counts.packets, "sip_messages": counts.sip_messages,
            "max_active_ues": counts.max_active,
            "seconds": round((counts.last or 0) - (counts.first or 0), 3), "bytes": path.stat().st_size}
    Path(f"{path}.meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ues", type=int, default=200, help="number of UEs (default 200)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=20.0,
                    help="UEs starting per second (default 20: ~600 active at once)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="the pcapng to write")
    args = ap.parse_args()
    if args.ues < 1 or not args.rate > 0:
        ap.error("--ues must be 1 or more and --rate more than 0")
    start = time.perf_counter()
    meta = write_capture(args.output, args.ues, args.seed, args.rate)
    print(f"{args.output}: {meta['ues']} UEs, {meta['packets']} packets, {meta['sip_messages']} SIP "
          f"messages, {meta['bytes'] / 1e6:.1f} MB, {meta['seconds']:.0f} s of traffic, at most "
          f"{meta['max_active_ues']} UEs active at once ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
