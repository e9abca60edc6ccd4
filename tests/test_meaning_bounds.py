"""Issue 14: each table of the meaning stages is capped, says so when full, and stays linear on hostile input.

For each table: a tiny ``--limit`` makes a ``table-full`` diagnostic naming the cap appear on a sample (the
samples' verdicts under the default caps are guarded by ``mcxa replay`` and the other tests); a long hostile
stream leaves the table under its cap (structural, not timed); and the hostile shapes take linear time
(``tests.linear.assert_linear``: 10 KB against 1 MB of input).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.base.limits import DEFAULT
from analyzer.cli import main
from analyzer.meaning.events import MIGRATION_REASON, Event
from analyzer.meaning.events.collect import Collector
from analyzer.meaning.events.extract import _Builder, extract_events
from analyzer.meaning.events.facts import Fact
from analyzer.meaning.events.factstore import Named, read
from analyzer.meaning.events.publications import Publications
from analyzer.meaning.sessions import build_sessions
from analyzer.meaning.systems import SystemMap
from analyzer.meaning.transactions import Dialog, Transaction, TransactionTracker, track
from analyzer.messages.records import Headers, Message
from tests.linear import assert_linear
from tests.packets import sip_request, sip_response, udp_frame, write_pcap
from tests.test_publications import Script, pidf
from tests.test_transactions import AUTH, SERVER, UE, Flow

SAMPLE = Path(__file__).resolve().parents[1] / "sample_captures" / "two-ues-group-migration.pcapng"
CAP = 40
TINY = DEFAULT.with_overrides([f"transactions={CAP}", f"challenges={CAP}", f"dialogs={CAP}", f"calls={CAP}",
                               f"publications={CAP}", f"identities={CAP}", f"domains={CAP}"])
UNIT = 400  # bytes of input per step of a hostile shape (one to three SIP messages)


# --- a tiny --limit on a sample: the diagnostic names the cap ----------------------------------------------

MEANING_LIMITS = ["transactions", "calls", "publications", "identities", "domains"]  # dialogs: below


@pytest.mark.parametrize("name", MEANING_LIMITS)
def test_a_tiny_limit_says_which_table_was_full_and_how_to_raise_it(name, capsys):
    assert main(["events", str(SAMPLE), "--limit", f"{name}=1"]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "registration" in out  # the events are still listed
    full = [line for line in err.splitlines() if "[table-full]" in line]
    assert full and any("more than 1 " in line and f"--limit {name}=N" in line for line in full), err


def test_a_tiny_challenges_limit_on_a_generated_capture(tmp_path, capsys):
    frames = [frame for i in range(3) for frame in (
        udp_frame("10.0.0.1", "10.0.0.2", 5060, 5060, sip_request("REGISTER", f"r{i}")),
        udp_frame("10.0.0.2", "10.0.0.1", 5060, 5060, sip_response(401, "No", f"r{i}", method="REGISTER")))]
    write_pcap(tmp_path / "challenges.pcap", frames)
    assert main(["events", str(tmp_path / "challenges.pcap"), "--limit", "challenges=1"]) == ExitCode.OK
    [line] = [line for line in capsys.readouterr().err.splitlines() if "[table-full]" in line]
    assert "more than 1 401/407 challenges awaiting a retry at once from frame 4 on" in line
    assert "(2 in all)" in line and "--limit challenges=N" in line


def test_the_default_limits_leave_the_sample_alone(capsys):
    assert main(["events", str(SAMPLE)]) == ExitCode.OK
    assert "table-full" not in capsys.readouterr().err


# --- hostile shapes for the transaction tracker -------------------------------------------------------------

def _unanswered(f: Flow, i: int) -> list[Message]:
    """A request on a new Call-ID that nobody answers, all at one capture time (no timer ever fires)."""
    return [f.req("OPTIONS", f"z9hG4bK-o{i}", 1, call_id=f"o{i}", after=0.0)]


def _ringing(f: Flow, i: int) -> list[Message]:
    """An INVITE answered with a provisional response only: Timer C would keep it 180 s."""
    return [f.req("INVITE", f"z9hG4bK-r{i}", 1, call_id=f"r{i}", after=0.001),
            f.resp(180, "INVITE", f"z9hG4bK-r{i}", 1, call_id=f"r{i}", after=0.0)]


def _dialog_without_bye(f: Flow, i: int) -> list[Message]:
    return [f.req("INVITE", f"z9hG4bK-d{i}", 1, call_id=f"d{i}", after=0.001),
            f.resp(200, "INVITE", f"z9hG4bK-d{i}", 1, call_id=f"d{i}", after=0.0),
            f.req("ACK", f"z9hG4bK-a{i}", 1, call_id=f"d{i}", to_tag="tt", after=0.0)]


def _challenge_never_retried(f: Flow, i: int) -> list[Message]:
    return [f.req("REGISTER", f"z9hG4bK-c{i}", 1, call_id=f"c{i}", after=0.001),
            f.resp(401, "REGISTER", f"z9hG4bK-c{i}", 1, call_id=f"c{i}", after=0.0)]


def _notify_storm(f: Flow, i: int) -> list[Message]:
    """One subscription whose NOTIFYs never stop: the dialog would hold every one of them."""
    start = [f.req("SUBSCRIBE", "z9hG4bK-s", 1, call_id="s", after=0.0),
             f.resp(200, "SUBSCRIBE", "z9hG4bK-s", 1, call_id="s", after=0.0)] if i == 0 else []
    branch = f"z9hG4bK-n{i}"
    tags = {"from_tag": "tt", "to_tag": "ft", "call_id": "s"}
    return [*start, f.req("NOTIFY", branch, i + 1, src=SERVER, dst=UE, after=0.001, **tags),
            f.resp(200, "NOTIFY", branch, i + 1, src=UE, dst=SERVER, after=0.0, **tags)]


def _forks(f: Flow, i: int) -> list[Message]:
    """One INVITE answered by ever more forks, each ringing with its own To tag (an early dialog each)."""
    start = [f.req("INVITE", "z9hG4bK-k", 1, call_id="k", after=0.0)] if i == 0 else []
    return [*start, f.resp(180, "INVITE", "z9hG4bK-k", 1, call_id="k", to_tag=f"fork{i}", after=0.001)]


SHAPES = [_unanswered, _ringing, _dialog_without_bye, _challenge_never_retried, _notify_storm, _forks]


def stream(shape, size: int, transport: str = "udp") -> list[Message]:
    f = Flow(transport)
    return [m for i in range(max(1, size // UNIT)) for m in shape(f, i)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.__name__.strip("_"))
def test_every_tracker_table_stays_under_its_cap_on_a_long_hostile_stream(shape):
    messages = stream(shape, 3000 * UNIT)
    tracker = TransactionTracker(limits=TINY)
    peak: Counter = Counter()
    records = []
    for m in messages:
        records += tracker.feed(m)
        for table, size in tracker.table_sizes().items():
            peak[table] = max(peak[table], size)
    records += tracker.close()
    assert max(size for table, size in peak.items() if table != "timers") <= CAP, peak
    assert peak["timers"] <= 2 * 2 * CAP + 65, peak  # armed timers only, and a bounded share of stale ones
    requests = sum(m.kind == "request" and m.method != "ACK" for m in messages)
    answered = [r for r in records if isinstance(r, Transaction) and r.method != "ACK" and not r.orphan]
    assert len(answered) == requests  # every request is still yielded (an evicted one as at its timeout)
    assert all(any(f"--limit {name}=N" in text for name in ("transactions", "challenges", "dialogs"))
               for text, _ in tracker.overflows())
    assert tracker.overflows(), "a stream this long must hit a cap of 40"


def test_the_timer_heap_follows_open_transactions_not_the_capture():
    """Transactions that end normally leave no timers behind: over TCP even when capture time stands still;
    over UDP each lingers 5 s for copies, so the heap follows the ~250 open at once, not the 5000."""
    for transport, step in (("tcp", 0.0), ("udp", 0.01)):
        def finished(f: Flow, i: int, step=step) -> list[Message]:
            return [f.req("REGISTER", f"z9hG4bK-f{i}", i + 1, after=step),
                    f.resp(200, "REGISTER", f"z9hG4bK-f{i}", i + 1, after=step)]

        tracker = TransactionTracker()
        timers = holding = 0
        for m in stream(finished, 5000 * UNIT, transport):
            tracker.feed(m)
            timers, holding = max(timers, tracker.table_sizes()["timers"]), max(holding, tracker.holding)
        assert timers <= 2 * holding + 65 and holding < 300, transport


def test_dialogs_beyond_their_cap_are_yielded_early_and_it_is_said():
    f = Flow()
    tracker = TransactionTracker(limits=DEFAULT.with_overrides(["dialogs=1"]))
    records = [r for i in range(3) for m in _dialog_without_bye(f, i) for r in tracker.feed(m)]
    assert [d.call_id for d in records if isinstance(d, Dialog)] == ["d0", "d1"]  # the oldest, as they go
    assert [d.call_id for d in tracker.close() if isinstance(d, Dialog)] == ["d2"]
    [(message, frames)] = tracker.overflows()
    assert message.startswith("more than 1 SIP dialogs open at once from frame 5 on") and frames == (5,)
    assert "(2 in all)" in message and "--limit dialogs=N" in message


def test_the_events_stage_follows_no_dialogs():
    """It reads no Dialog record, so it keeps none, nor the transactions one would hold until its end."""
    collector = Collector([], DEFAULT)
    for m in stream(_notify_storm, 500 * UNIT):
        collector.feed(m)
    assert collector.tracker.table_sizes()["dialogs"] == 0
    assert collector.tracker.table_sizes()["dialog transactions"] == 0


@pytest.mark.parametrize("limits", [DEFAULT, TINY], ids=["default", "tiny"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.__name__.strip("_"))
def test_the_tracker_is_linear_on_hostile_shapes(shape, limits):
    assert_linear(lambda messages: list(track(messages, limits=limits)), lambda n: stream(shape, n))


# --- the events stage: challenges, HTTP requests, calls --------------------------------------------------

def test_challenges_nobody_retries_are_forgotten_but_a_late_retry_still_merges():
    f = Flow()
    collector = Collector([], TINY)
    peak = 0
    for m in stream(_challenge_never_retried, 3000 * UNIT):
        collector.feed(m)
        peak = max(peak, len(collector.challenged))
    assert peak <= 2 * 2 * CAP + 65  # what the tracker can still link, not the 3000 challenges
    f.time = 1e6
    retry = [f.req("REGISTER", "z9hG4bK-x1", 1, call_id="x"), f.resp(401, "REGISTER", "z9hG4bK-x1", 1, "x"),
             f.req("REGISTER", "z9hG4bK-x2", 2, call_id="x", extra=(AUTH,)),
             f.resp(200, "REGISTER", "z9hG4bK-x2", 2, "x")]
    for m in retry:
        collector.feed(m)
    [merged] = [fact for fact in read(collector.close()) if fact.call_id == "x"]
    assert merged.challenged and merged.status == 200


def test_http_requests_without_answers_are_capped_and_still_reported():
    problems: list = []
    collector = Collector(problems, TINY)
    for i in range(1, 1001):
        headers = Headers([("host", "cms")])
        collector.feed(Message("http", "request", "GET", f"/x{i}", None, None, headers, b"", (i,), 1000.0 + i,
                               UE, SERVER, "tcp"))
        assert len(collector.http_pending) <= CAP
    facts = list(read(collector.close()))
    assert len(facts) == 1000 and all(f.status is None for f in facts)
    [problem] = problems
    assert "HTTP requests" in problem.message and "--limit transactions=N" in problem.message


def _call(i: int) -> Fact:
    return Fact("INVITE", float(i), float(i) + 0.1, (i,), f"10.0.{i // 250}.{i % 250}:5060", "10.9.0.1:5060",
                200, call_id=f"call-{i}", session_type="private", recipients=("sip:bob@b.example",),
                domain="a.example")


def test_calls_never_ended_stay_under_the_cap_and_a_bye_of_a_kept_one_still_ends_it():
    problems: list = []
    builder = _Builder(None, MIGRATION_REASON, problems, TINY)
    calls = [_call(i) for i in range(1, 1001)]
    bye = Fact("BYE", 2000.0, 2000.1, (5000,), calls[-1].client, "10.9.0.1:5060", 200, call_id="call-1000")
    events, _ = builder.build([*calls, bye])
    assert len(builder.calls) <= CAP
    assert [e.kind for e in events].count("private-call-release") == 1
    [problem] = [p for p in problems if "calls" in p.message]
    assert "--limit calls=N" in problem.message and problem.frames == (CAP + 1,)


def test_a_bye_before_its_invite_still_ends_the_call_and_byes_of_calls_never_named_are_not_kept():
    """Two capture interfaces a little out of step: the BYE is stamped before its INVITE, and still ends the
    call once the capture is read. The BYEs of plain calls (no MC INVITE was kept: no call for them will
    ever be known) are let go as they come, not held to the end: 200,000 of them, read lazily, stay
    under a megabyte."""
    import tracemalloc

    call = _call(10)
    early_bye = Fact("BYE", 9.5, 9.6, (9,), call.client, "10.9.0.1:5060", 200, call_id="call-10")
    events, _ = _Builder(None, MIGRATION_REASON, [], DEFAULT).build([early_bye, call])
    assert [e.kind for e in events].count("private-call-release") == 1

    def plain_byes():
        for i in range(200_000):
            yield Fact("BYE", 100.0 + i, 100.1 + i, (i,), "10.0.0.1:5060", "10.9.0.1:5060", 200,
                       call_id=f"plain-{i}")

    tracemalloc.start()
    events, _ = _Builder(None, MIGRATION_REASON, [], DEFAULT).build(plain_byes(), named=Named())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(events) == 0 and peak < 1 << 20, peak


# --- publications: the cap from the limits, and one address shared by many UEs ----------------------------

def _publishers(n: int) -> list:
    """PUBLISHes from one proxy address, each of another UE (its own client ID): all share its address."""
    s = Script()
    for i in range(max(1, n // 900)):
        s.publish(etag=f"e{i}", impu=f"sip:+{i}@ims.example", ue="10.0.0.1:5060",
                  body=pidf([f"sip:G{i}@a.example"], entity=f"sip:u{i}@a.example", client=f"c{i}"))
    return s.items


def test_publications_take_their_cap_from_the_limits():
    problems: list = []
    pubs = Publications(problems, cap=CAP)
    assert pubs.cap == CAP
    events, _ = extract_events(_publishers(300 * 900), problems=problems, limits=TINY)
    assert sum(e.kind == "affiliation" for e in events) == 300
    assert any("--limit publications=N" in p.message for p in problems)


def test_tying_a_publish_stays_linear_when_many_ues_share_one_address():
    assert_linear(lambda items: extract_events(items), _publishers)


# --- UE sessions --------------------------------------------------------------------------------------------

def _ev(kind, time, address, frame, **ids) -> Event:
    return Event(kind, time, (frame,), "from-ue", address, "10.9.0.1:5060", "success", **ids)


def _many_ues(n: int) -> list[Event]:
    """UEs that each link an instance ID, an IMPU, an MC ID and a client ID (links the old code scanned)."""
    out = []
    for i in range(max(1, n // 200)):
        address = f"10.{i // 60000}.{i // 250 % 240}.{i % 250}:5060"
        out += [_ev("registration", i, address, 2 * i + 1, impu=f"sip:+{i}@ims.a", instance=f"urn:imei:{i}"),
                _ev("service-authorisation", i + 0.5, address, 2 * i + 2, identity=f"sip:u{i}@a",
                    impu=f"sip:+{i}@ims.a", client_id=f"c{i}")]
    return out


def _address_chain(n: int) -> list[Event]:
    """A big component that comes second on every address it shares: the old merge copied it each time."""
    out = []
    for i in range(max(1, n // 200)):
        address = f"10.1.{i // 250}.{i % 250}:5060"
        out += [_ev("registration", 10.0 * i, address, 2 * i + 1, impu=f"sip:small{i}@ims"),
                _ev("registration", 10.0 * i + 0.5, address, 2 * i + 2, impu="sip:big@ims")]
    return out


def _anonymous_on_one_address(n: int) -> list[Event]:
    """TLS hellos from one address, far apart in time, between UEs that used it."""
    out = []
    for i in range(max(1, n // 200)):
        out += [_ev("registration", 1000.0 * i, "10.1.0.1:5060", 2 * i + 1, impu=f"sip:{i}@ims",
                    instance=f"urn:imei:{i}"),
                Event("config-access-encrypted", 1000.0 * i + 500, (2 * i + 2,), "from-ue", "10.1.0.1:40000",
                      "10.9.0.2:443", "encrypted")]
    return out


@pytest.mark.parametrize("shape", [_many_ues, _address_chain, _anonymous_on_one_address],
                         ids=lambda s: s.__name__.strip("_"))
def test_sessions_are_linear(shape):
    assert_linear(build_sessions, shape)


def test_identities_beyond_the_cap_are_not_linked_and_it_is_said():
    events = _many_ues(200 * 100)
    problems: list = []
    sessions = build_sessions(events, max_identities=CAP, problems=problems)
    assert sum(len(s.events) for s in sessions) == len(events)  # every event still in a session
    named = {value for s in sessions for link in s.links if link.evidence != "address"
             for value in (link.a, link.b)}
    assert 0 < len(named) <= CAP  # the first UEs are linked as before; the rest are not
    [problem] = problems
    assert f"more than {CAP} UE identities" in problem.message and "--limit identities=N" in problem.message


def test_the_old_identity_linking_is_unchanged_under_the_cap():
    events = _many_ues(200 * 50)
    assert len(build_sessions(events)) == 50
    assert {link.evidence for s in build_sessions(events) for link in s.links} == {"instance", "client"}


# --- systems ------------------------------------------------------------------------------------------------

def _domains(n: int) -> list[tuple[str, str]]:
    return [(f"ims.op{i}.example", f"10.{i // 60000}.{i // 250 % 240}.{i % 250}:5060")
            for i in range(max(1, n // 40))]


def _infer_and_look_up(observations):
    systems = SystemMap.infer(observations)
    return [(systems.of_host(d), systems.server_kind(d), systems.of_address(a)) for d, a in observations]


def test_inferring_systems_and_looking_them_up_is_linear():
    assert_linear(_infer_and_look_up, _domains)


def test_a_host_name_of_many_labels_is_looked_up_in_linear_time():
    systems = SystemMap.infer([("a.example", None)])
    assert_linear(systems.of_host, lambda n: "x." * (n // 2) + "a.example")
    assert systems.of_host("x." * 1000 + "a.example") == "a.example"


def test_inferred_domains_are_capped_and_it_is_said():
    problems: list = []
    systems = SystemMap.infer(_domains(1000 * 40), limit=CAP, problems=problems)
    assert len(systems.systems) <= CAP and len(systems._addresses) <= CAP
    [problem] = problems
    assert "--limit domains=N" in problem.message
    assert systems.of_host("ims.op0.example") == "op0.example"
    assert systems.of_host("ims.op999.example") is None


def test_the_pairs_systems_are_inferred_from_are_capped_and_it_is_said():
    """A flood of requests, each to a domain of its own: pass 1 keeps four distinct (domain, server) pairs
    per domain the inference learns (``--limit domains``), counts the rest, and pass 2 says so."""
    facts = [Fact("REGISTER", float(i), None, (i + 1,), "10.0.0.1:5060", f"10.1.{i // 250}.{i % 250}:5060",
                  200, call_id=f"c{i}", domain=f"ims.op{i}.example") for i in range(100)]
    two = DEFAULT.with_overrides(["domains=2"])  # (eight pairs)
    named = Named.of(facts, two)
    assert len(named.pairs) == 8 and named.unpaired == 92
    assert list(named.observed()) == [(f.domain, f.server) for f in facts[:8]]
    merged = Named.within(two)
    merged.update(Named.of(facts[:6], two))
    merged.update(Named.of(facts[6:], two))
    assert len(merged.pairs) == 8 and merged.unpaired == 92
    problems: list = []
    _Builder(None, MIGRATION_REASON, problems, two).build(facts)
    flood = [p for p in problems if "domain and server pairs" in p.message]
    assert len(flood) == 1 and "(92 in all)" in flood[0].message and "--limit domains=N" in flood[0].message
