"""Pass 1 keeps its facts in a ``FactStore`` (sorted chunks, compressed once there are many) until pass 2
reads them once, in order: nothing a user sees may change with how they were kept."""

from __future__ import annotations

import pickle
import random
from dataclasses import replace
from pathlib import Path

import pytest

from analyzer.base import spill
from analyzer.cli import main
from analyzer.engines import DecodeOptions, get_engine
from analyzer.meaning.events import factstore
from analyzer.meaning.events.collect import collect_facts
from analyzer.meaning.events.extract import _meaningful
from analyzer.meaning.events.facts import fact_order, observations
from analyzer.meaning.events.factstore import FactStore, Named, read

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
PUBLIC = ROOT.parent / "shared" / "captures" / "public"
CAPTURES = [*sorted(SAMPLES.glob("*.pcapng")), *sorted((SAMPLES / "real").glob("*.pcap")),
            *sorted((ROOT / "tests" / "hostile" / "captures").glob("*.pcap*")),
            *(sorted(PUBLIC.glob("*.pcap*")) if PUBLIC.is_dir() else [])]


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of three facts, every one compressed."""
    monkeypatch.setattr(factstore, "CHUNK", 3)
    monkeypatch.setattr(factstore, "HOLD", 0)


def _facts(name: str = "group-migration-noisy.pcapng") -> list:
    """Real facts (bodies, affiliation sets, XCAP targets among them), in the order pass 1 made them."""
    decoded = get_engine("dpkt")(str(SAMPLES / name), DecodeOptions(workers=1))
    store, _ = collect_facts(decoded.items, [], meaningful=_meaningful)
    return list(read(store))


def test_a_store_gives_back_the_order_of_one_stable_sort_of_what_it_was_given(tiny_chunks):
    """Shuffled, with ties in time and whole duplicates: compressed chunks read back as the objects that
    went in, in ``fact_order`` and, for equal facts, in the order they were added."""
    facts = _facts()
    given = [*facts, *facts[:5], *(replace(f, time=facts[0].time) for f in facts[5:10])]
    random.Random(7).shuffle(given)
    store = FactStore()
    for seq, fact in enumerate(given):
        store.add(fact, seq)
    assert any(chunk.packed is not None for chunk in store.chunks)
    got = list(read(store))
    assert got == sorted(given, key=fact_order)
    assert [id(f) for f in sorted(given, key=fact_order)] != [id(f) for f in got]  # (read back: new objects)


def test_the_pairs_systems_are_inferred_from_are_known_before_pass_2_in_the_order_it_reads(tiny_chunks):
    """Facts added shuffled, over two stores (this process's and the worker's): the (domain, server)
    pairs come out, each as often as the facts showed it, in the order of the first fact showing each
    in pass 2's order — what inferring systems from the facts read in order gave."""
    facts = _facts()
    given = [*facts, *facts[:5]]
    random.Random(3).shuffle(given)
    mine, worker = FactStore(), FactStore(rank=1)
    for seq, fact in enumerate(given):
        (worker if seq % 3 == 0 else mine).add(fact, seq)
    named = Named()
    named.update(mine.named)
    named.update(FactStore.unpacked(pickle.loads(pickle.dumps(worker.packed(), 5))).named)
    in_order = sorted(given, key=lambda f: (fact_order(f), given.index(f) % 3 == 0))
    expected = [pair for f in in_order for pair in observations(f)]
    first = {pair: i for i, pair in reversed(list(enumerate(expected)))}
    assert list(named.observed()) == sorted(expected, key=first.__getitem__)
    assert list(named.observed([("x.example", "10.9.9.9:5060"), expected[0]]))[:3] == \
        [("x.example", "10.9.9.9:5060"), expected[0], expected[0]]


def test_a_chunk_is_read_back_only_when_its_first_fact_is_due(tiny_chunks, monkeypatch):
    """What keeps pass 2 small: facts added in about time order open about one chunk at a time."""
    facts = _facts()
    store = FactStore()
    for seq, fact in enumerate(facts):
        store.add(fact, seq)
    opened = []
    real = factstore._unpack
    monkeypatch.setattr(factstore, "_unpack", lambda packed: opened.append(1) or real(packed))
    facts_read = read(store)
    next(facts_read)
    assert len(opened) == 1
    rest = sum(1 for _ in facts_read)
    assert rest == len(facts) - 1 and len(opened) == len(store.chunks) > 3


def test_the_workers_store_crosses_the_pipe_and_ties_after_this_processs(tiny_chunks):
    """Facts equal in ``fact_order`` in both processes: this process's first, as ``heapq.merge`` of two
    lists gives them."""
    facts = _facts()
    mine, worker = FactStore(), FactStore(rank=1)
    for seq, fact in enumerate(facts):
        (worker if seq % 3 == 0 else mine).add(fact, seq)
        if seq % 7 == 0:  # the same fact in both
            (mine if seq % 3 == 0 else worker).add(fact, 10_000 + seq)
    worker.add(facts[0], 0)
    crossed = FactStore.unpacked(pickle.loads(pickle.dumps(worker.packed(), 5)))
    expected = sorted([*mine.snapshot(), *worker.snapshot()], key=fact_order)
    got = list(read(mine, crossed))
    assert got == expected
    assert len(got) == mine.count + worker.count


def test_reading_lets_go_of_each_chunk_as_it_is_read(tiny_chunks):
    """Pass 2 reads the facts once: a chunk read holds nothing more (on a core-side capture the first
    32,768 facts, never compressed, stayed until pass 2 ended: a quarter of its peak)."""
    facts = _facts()
    store = FactStore()
    for seq, fact in enumerate(facts):
        store.add(fact, seq)
    facts_read = read(store)
    first = next(facts_read)
    holding = [c for c in store.chunks if c.facts is not None or c.packed is not None]
    assert first == min(facts, key=fact_order) and 0 < len(holding) < len(store.chunks)
    assert sum(1 for _ in facts_read) == len(facts) - 1
    assert all(c.facts is None and c.packed is None for c in store.chunks)


def test_a_snapshot_leaves_the_store_as_it_was(tiny_chunks):
    """``mcxa watch`` reads the facts so far at every tick; pass 1 goes on adding to the same store."""
    facts = _facts()
    store = FactStore()
    for seq, fact in enumerate(facts[:10]):
        store.add(fact, seq)
    challenge = (99, facts[10])
    assert store.snapshot([challenge]) == sorted([*facts[:11]], key=fact_order)
    for seq, fact in enumerate(facts[10:], start=10):
        store.add(fact, seq)
    assert list(read(store)) == sorted(facts, key=fact_order)


def test_the_referred_call_ids_are_known_before_pass_2_reads_a_fact():
    """A REFER's Target-Dialog makes an earlier INVITE a pre-established session: the store says which."""
    facts = _facts("group-migration-pre-established.pcapng")
    store = FactStore()
    for seq, fact in enumerate(facts):
        store.add(fact, seq)
    named = {f.target_dialog for f in facts if f.method == "REFER" and f.target_dialog}
    assert named and store.named.referred == named
    assert FactStore.unpacked(store.packed()).named.referred == named
    opened = {f.call_id for f in facts if f.method == "INVITE"} | \
        {f.target_dialog or f.call_id for f in facts if f.method == "REFER"}
    assert store.named.opened == opened


def _analyze(capsys, path: Path, jobs: str) -> tuple[int, str]:
    code = main(["analyze", str(path), "--format", "json", "--jobs", jobs, "-q"])
    return code, capsys.readouterr().out


def test_analyze_reports_the_same_bytes_however_the_facts_were_kept(capsys, monkeypatch):
    """Every sample, real and hostile capture: the facts all compressed in chunks of two (each chunk
    overlapping the next in time) and kept on disk give the report the facts held as objects give."""
    held = {path: _analyze(capsys, path, "1") for path in CAPTURES}
    monkeypatch.setattr(factstore, "CHUNK", 2)
    monkeypatch.setattr(factstore, "HOLD", 0)
    monkeypatch.setattr(spill, "SPILL_AFTER", 0)
    for path in CAPTURES:
        assert _analyze(capsys, path, "1") == held[path], path.name
        assert _analyze(capsys, path, "2") == held[path], path.name  # (the worker's facts, too)
