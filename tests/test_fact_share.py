"""Pass 1 split with the decoder's worker (``analyzer.meaning.events.shard``): the worker collects the facts
of a share of the calls on dense signalling captures, and nothing a user sees may change because of it."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.engines import DecodeOptions, Handled, dpkt_engine, get_engine, parallel
from analyzer.meaning.events import shard
from analyzer.meaning.events.extract import _meaningful, fact_share
from analyzer.meaning.events.facts import collect_facts
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
    monkeypatch.setattr(shard.FactShare, "take", lambda self, r: real(self, r) or taken.append(self.facts))
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
    facts, observed = share.merged(*collect_facts(forwarded, problems, meaningful=_meaningful))
    assert facts == whole[0]
    assert sorted(observed) == sorted(whole[1])
    assert problems.found.counts == whole_problems.found.counts != {}
    assert sorted(problems.found.records, key=repr) == sorted(whole_problems.found.records, key=repr)


def test_the_worker_takes_no_share_where_media_outweigh_signalling():
    """A drive test: fewer SIP messages than one per ``DENSE`` packets, the worker (the slower side
    already) keeps none; the Call-IDs sent on before it decided stay with this process either way."""
    items = [i for i in _items("group-migration-compliant.pcapng") if isinstance(i, Message)]
    sip = [i for i in items if i.proto == "sip"]
    many = [replace(m, headers=_with_call_id(m, f"call-{n}")) for n, m in enumerate(sip * 10)]
    share = fact_share(Problems())
    sparse = list(share.worker(iter(many), lambda: shard.DENSE * shard.DECIDE_AFTER + 1))
    assert not any(isinstance(i, Handled) for i in sparse)
    dense = list(fact_share(Problems()).worker(iter(many), lambda: shard.DECIDE_AFTER))
    handled = [i for i, m in zip(dense, many, strict=True) if isinstance(i, Handled)]
    assert handled and all(isinstance(i, Message) for i in dense[:shard.DECIDE_AFTER])
    assert 0.1 < len(handled) / (len(many) - shard.DECIDE_AFTER) < 0.4  # about one call in SHARE


def _with_call_id(msg: Message, call_id: str) -> Headers:
    return Headers([(k, call_id if k == "call-id" else v) for k, v in msg.headers], lowered=True)
