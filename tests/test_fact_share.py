"""Pass 1 split with the decoder's worker (``analyzer.meaning.events.shard``): the worker collects the facts
of a share of the calls on dense signalling captures, and nothing a user sees may change because of it."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from analyzer.base.limits import Limits
from analyzer.cli import main
from analyzer.engines import DecodeOptions, Handled, dpkt_engine, get_engine, parallel
from analyzer.meaning.events import shard
from analyzer.meaning.events.collect import collect_facts
from analyzer.meaning.events.extract import _meaningful, fact_share
from analyzer.meaning.events.factstore import read
from analyzer.meaning.mcfacts import Problem
from analyzer.meaning.problems import Problems
from analyzer.messages.records import Headers, Message

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
PUBLIC = ROOT.parent / "shared" / "captures" / "public"
CAPTURES = [*sorted(SAMPLES.glob("*.pcapng")), *sorted((SAMPLES / "real").glob("*.pcap")),
            *sorted((ROOT / "tests" / "hostile" / "captures").glob("*.pcap*")),
            *(sorted(PUBLIC.glob("*.pcap*")) if PUBLIC.is_dir() else [])]

forking = pytest.mark.skipif(not parallel.available(), reason="no fork() on this platform: no worker process")


def _analyze(capsys, path: Path, jobs: str) -> tuple[int, str]:
    code = main(["analyze", str(path), "--format", "json", "--jobs", jobs, "-q"])
    return code, capsys.readouterr().out


@forking
def test_analyze_reports_the_same_bytes_whether_the_worker_took_a_share_or_not(capsys, monkeypatch):
    alone = {path: _analyze(capsys, path, "1") for path in CAPTURES}
    # a worker for every capture, sharing from the second SIP message on whatever the density
    monkeypatch.setattr(dpkt_engine, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(shard, "DECIDE_AFTER", 1)
    monkeypatch.setattr(shard, "DENSE", 10**9)
    taken = []
    real = shard.FactShare.take

    def take(self, result):
        real(self, result)
        taken.append(self.store.snapshot() if self.taken else [])

    monkeypatch.setattr(shard.FactShare, "take", take)
    for path in CAPTURES:
        assert _analyze(capsys, path, "2") == alone[path], path.name
    assert sum(map(len, taken)) > 50  # (the worker did take facts: the comparison means something)


def _items(name: str) -> list:
    decoded = get_engine("dpkt")(str(SAMPLES / name), DecodeOptions(workers=1))
    return list(decoded.items)


def _broken(items: list) -> list:
    """Every PUBLISH body cut in the middle of its XML: each is a problem to report with its frame."""
    return [replace(i, body=i.body[:len(i.body) // 2]) if isinstance(i, Message) and i.method == "PUBLISH"
            else i for i in items]


@pytest.mark.parametrize("one_in", [1, 2, 4])
@pytest.mark.parametrize("name", ["group-migration-compliant.pcapng", "private-migration-compliant.pcapng",
                                  "group-migration-noisy.pcapng"])
def test_facts_collected_apart_merge_into_what_one_collector_gives(name, one_in, monkeypatch):
    """Challenges and retries, timers, broken bodies: the worker's facts, pairs and problems, merged, are
    those of one pass over every message, in the same order (worker run in this process here)."""
    monkeypatch.setattr(shard, "SHARE", one_in)
    monkeypatch.setattr(shard, "DECIDE_AFTER", 1)
    items = _broken(_items(name))
    whole_problems = Problems()
    whole = collect_facts(items, whole_problems, meaningful=_meaningful)

    problems = Problems()
    share = fact_share(problems)
    forwarded = list(share.worker(iter(items), lambda: 1))
    share.take(pickle.loads(pickle.dumps(share.result(), 5)))  # (what crosses the pipe)
    assert sum(isinstance(i, Handled) for i in forwarded) > 0
    store, observed = collect_facts(forwarded, problems, meaningful=_meaningful)
    stores, observed = share.merged([store], observed)
    assert list(read(*stores)) == list(read(whole[0]))
    assert sorted(observed) == sorted(whole[1])
    assert problems.counts == whole_problems.counts != {}
    assert problems.records == whole_problems.records


def test_the_worker_takes_no_share_where_media_outweigh_signalling():
    """A drive test: fewer SIP messages than one per ``DENSE`` packets, the worker (the slower side
    already) keeps none; the Call-IDs sent on before it decided stay with this process either way."""
    items = [i for i in _items("group-migration-compliant.pcapng") if isinstance(i, Message)]
    sip = [i for i in items if i.proto == "sip"]
    many = [replace(m, headers=_call(m, n)) for n, m in enumerate(sip * 10)]
    share = fact_share(Problems())
    sparse = list(share.worker(iter(many), lambda: shard.DENSE * shard.DECIDE_AFTER + 1))
    assert not any(isinstance(i, Handled) for i in sparse)
    dense = list(fact_share(Problems()).worker(iter(many), lambda: shard.DECIDE_AFTER))
    handled = [i for i, m in zip(dense, many, strict=True) if isinstance(i, Handled)]
    assert handled and all(isinstance(i, Message) for i in dense[:shard.DECIDE_AFTER])
    assert 0.1 < len(handled) / (len(many) - shard.DECIDE_AFTER) < 0.4  # about one call in SHARE


def _call(msg: Message, n: int) -> Headers:
    """``msg``'s headers as those of call ``n``: a Call-ID and a top Via branch of its own."""
    new = {"call-id": f"call-{n}", "via": f"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{n}"}
    return Headers([(k, new.get(k, v)) for k, v in msg.headers], lowered=True)


def test_the_worker_takes_whole_calls(monkeypatch):
    """Every message of a call goes one way (its transactions and challenges are matched in one place),
    about one call in ``SHARE`` to the worker; the calls seen before it decided stay here."""
    monkeypatch.setattr(shard, "DECIDE_AFTER", 8)
    items = [i for i in _items("group-migration-compliant.pcapng") if isinstance(i, Message)]
    sip = [replace(m, headers=_call(m, n // 4)) for n, m in enumerate(
        i for i in items if i.proto == "sip" for _ in range(4))]  # four messages of each call
    out = list(fact_share(Problems()).worker(iter(sip), lambda: 1))
    calls = [out[n:n + 4] for n in range(0, len(out), 4)]
    taken = [all(isinstance(i, Handled) for i in call) for call in calls]
    assert all(taken[n] or not any(isinstance(i, Handled) for i in call) for n, call in enumerate(calls))
    assert not any(taken[:shard.DECIDE_AFTER // 4]) and 0 < sum(taken) < len(taken)


def test_problems_kept_are_those_of_the_first_frames_whoever_found_them():
    """Past the records kept per code, the ones kept (and their order) depend on the frames alone: two
    sinks merged keep what one sink fed everything keeps."""
    found = [Problem("malformed-body", f"body {n}", (n,)) for n in (9, 3, 7, 1, 8, 2, 6, 4, 5, 0)]
    found += [Problem("xml-rejected", "entity", (n,)) for n in (4, 2)]
    one, left, right = Problems(keep=3), Problems(keep=3), Problems(keep=3)
    for n, problem in enumerate(found):
        one.append(problem)
        (left if n % 2 else right).append(problem)
    left.merge(right.counts, right.records)
    assert one.counts == left.counts == {"malformed-body": 10, "xml-rejected": 2}
    assert one.records == left.records
    assert [(d.code, d.frames) for d in one.records] == [
        ("malformed-body", (0,)), ("malformed-body", (1,)), ("malformed-body", (2,)), ("xml-rejected", (2,)),
        ("xml-rejected", (4,))]


def test_a_cap_hit_on_both_sides_is_one_diagnostic_counting_both(monkeypatch):
    """Each process caps its own tables; a cap hit in both is still one ``table-full`` line, from the first
    frame either hit it, with the times of both."""
    monkeypatch.setattr(shard, "SHARE", 2)
    monkeypatch.setattr(shard, "DECIDE_AFTER", 1)
    tiny = replace(Limits(), transactions=1)
    items = _items("two-ues-group-migration.pcapng")
    share = fact_share(Problems(), tiny)
    forwarded = list(share.worker(iter(items), lambda: 1))
    share.take(share.result())
    worker_full, _ = share._caps
    assert "transactions" in worker_full

    def lines(problems: Problems) -> list[str]:
        return [d.message for d in problems.records if "SIP transactions open" in d.message]

    alone = Problems()
    collect_facts(forwarded, alone, tiny, _meaningful)
    both = Problems()
    collect_facts(forwarded, both, tiny, _meaningful, before_close=share.add_caps)
    [mine], [merged] = lines(alone), lines(both)
    count = int(mine.rsplit("(", 1)[1].split()[0]) + worker_full["transactions"][1]
    assert f"({count} in all)" in merged
    first = min(int(mine.split("from frame ")[1].split()[0]), worker_full["transactions"][0])
    assert f"from frame {first} on" in merged
