"""Transactions and dialogs: RFC 3261 matching on scripted exchanges, then real captures against tshark."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from analyzer.meaning.transactions import Dialog, Transaction, TransactionTracker, track
from analyzer.messages.decode import to_message
from analyzer.messages.records import Headers, Message
from analyzer.transport.records import Payload

UE, SERVER, PEER = "10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060"


class Flow:
    """A scripted exchange: each message gets the next frame number and, unless told, 10 ms more time.

    Requests carry a top Via whose sent-by is the sender; responses echo it (sent-by = the receiver).
    """

    def __init__(self, transport: str = "udp"):
        self.frame, self.time, self.transport = 0, 1000.0, transport

    def _msg(self, text: str, src: str, dst: str, after: float) -> Message:
        self.frame += 1
        self.time += after
        payload = Payload(text.encode(), (self.frame,), self.time, src, dst, self.transport)
        return to_message(payload)[0]

    def req(self, method, branch="z9hG4bK-1", cseq=1, call_id="call-1", src=UE, dst=SERVER, from_tag="ft",
            to_tag=None, via=None, extra=(), after=0.01) -> Message:
        via = via or f"SIP/2.0/{self.transport.upper()} {src};branch={branch}"
        to = "<sip:bob@mcx.example>" + (f";tag={to_tag}" if to_tag else "")
        return self._msg(_text(f"{method} sip:bob@mcx.example SIP/2.0", via, from_tag, to, call_id,
                               f"{cseq} {method}", extra), src, dst, after)

    def resp(self, status, method, branch="z9hG4bK-1", cseq=1, call_id="call-1", src=SERVER, dst=UE,
             from_tag="ft", to_tag="tt", via=None, extra=(), after=0.01) -> Message:
        via = via or f"SIP/2.0/{self.transport.upper()} {dst};branch={branch}"
        to = "<sip:bob@mcx.example>" + (f";tag={to_tag}" if to_tag else "")
        return self._msg(_text(f"SIP/2.0 {status} Whatever", via, from_tag, to, call_id, f"{cseq} {method}",
                               extra), src, dst, after)


def _text(start, via, from_tag, to, call_id, cseq, extra) -> str:
    from_ = "<sip:alice@mcx.example>" + (f";tag={from_tag}" if from_tag else "")
    lines = [start, f"Via: {via}", f"From: {from_}", f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {cseq}",
             *extra, "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


def run(messages, **options) -> list:
    return list(track(messages, **options))


def txs(records) -> list[Transaction]:
    return [r for r in records if isinstance(r, Transaction)]


def dialogs(records) -> list[Dialog]:
    return [r for r in records if isinstance(r, Dialog)]


AUTH = ('Authorization: Digest username="alice", realm="mcx.example", nonce="n", uri="sip:mcx.example", '
        'response="0123"')


# --- registration challenge -------------------------------------------------------------------------------

def test_register_401_register_200_reads_as_one_authenticated_registration():
    f = Flow()
    msgs = [f.req("REGISTER", "z9hG4bK-r1", 1), f.resp(401, "REGISTER", "z9hG4bK-r1", 1),
            f.req("REGISTER", "z9hG4bK-r2", 2, from_tag="ft2", extra=(AUTH,)),
            f.resp(200, "REGISTER", "z9hG4bK-r2", 2)]
    first, second = txs(run(msgs))
    assert (first.status, second.status) == (401, 200)
    assert second.challenge_of is first and first.challenge_of is None
    assert first.request_frames == (1,) and first.final.frame == 2
    assert second.request_frames == (3,) and second.final.frame == 4
    assert second.response_time == pytest.approx(0.01)


def test_challenge_needs_credentials_consecutive_cseq_and_for_invite_the_same_from_tag():
    f = Flow()
    msgs = [f.req("REGISTER", "z9hG4bK-r1", 1), f.resp(401, "REGISTER", "z9hG4bK-r1", 1),
            f.req("REGISTER", "z9hG4bK-r2", 2),  # no credentials: a fresh registration
            f.resp(401, "REGISTER", "z9hG4bK-r2", 2),
            f.req("REGISTER", "z9hG4bK-r3", 4, extra=(AUTH,)),  # CSeq skips one
            f.resp(200, "REGISTER", "z9hG4bK-r3", 4),
            f.req("INVITE", "z9hG4bK-i1", 1, call_id="c2"), f.resp(407, "INVITE", "z9hG4bK-i1", 1, "c2"),
            f.req("ACK", "z9hG4bK-i1", 1, call_id="c2", to_tag="tt"),
            f.req("INVITE", "z9hG4bK-i2", 2, call_id="c2", from_tag="other", extra=("Proxy-" + AUTH,)),
            f.resp(403, "INVITE", "z9hG4bK-i2", 2, "c2", from_tag="other")]
    assert [t.challenge_of for t in txs(run(msgs))] == [None] * 5


def test_invite_407_retry_links_even_while_the_challenged_transaction_waits_for_its_ack():
    f = Flow()
    msgs = [f.req("INVITE", "z9hG4bK-i1", 1), f.resp(407, "INVITE", "z9hG4bK-i1", 1),
            f.req("INVITE", "z9hG4bK-i2", 2, extra=("Proxy-" + AUTH,)),
            f.resp(100, "INVITE", "z9hG4bK-i2", 2)]
    tracker = TransactionTracker()
    out = [r for m in msgs for r in tracker.feed(m)]
    assert [t.status for t in txs(out)] == [407]  # emitted when the retry showed the client moved on
    retry = txs(tracker.close())[0]
    assert retry.challenge_of is out[0] and retry.challenge_of.ack is None


# --- retransmissions -------------------------------------------------------------------------------------

def test_udp_request_and_response_retransmissions_are_collapsed_and_counted():
    f = Flow()
    msgs = [f.req("REGISTER", after=0), f.req("REGISTER", after=0.5), f.req("REGISTER", after=1.0),
            f.resp(200, "REGISTER"), f.req("REGISTER", after=0.01), f.resp(200, "REGISTER")]
    tracker = TransactionTracker()
    records = [r for m in msgs for r in tracker.feed(m)] + tracker.close()
    (tx,) = txs(records)
    assert tx.request.frame == 1 and tx.request_frames == (1, 2, 3, 5)
    assert tx.retransmissions == 3 and tx.response_retransmissions == 1
    assert tx.retransmitted_frames == (2, 3, 5, 6)
    assert tx.final.frame == 4 and tx.time == tx.request.time
    assert tracker.stats.retransmissions == 3 and tracker.stats.response_retransmissions == 1
    assert tracker.stats.transactions == 1


def test_provisional_responses_are_deduplicated_and_their_copies_counted():
    f = Flow()
    msgs = [f.req("INVITE"), f.req("INVITE", after=0.5), f.resp(100, "INVITE", to_tag=None),
            f.resp(100, "INVITE", to_tag=None), f.resp(180, "INVITE"), f.resp(183, "INVITE"),
            f.resp(486, "INVITE"), f.req("ACK", to_tag="tt")]
    (tx,) = txs(run(msgs))
    assert [m.status for m in tx.provisional] == [100, 180, 183]
    assert tx.retransmissions == 1 and tx.response_retransmissions == 1 and tx.retransmitted_frames == (2, 4)


def test_a_copy_seen_in_the_other_direction_is_a_copy_but_not_a_retransmission():
    f = Flow()
    msgs = [f.req("MESSAGE"), f.req("MESSAGE", src=PEER, dst=UE, via=f"SIP/2.0/UDP {UE};branch=z9hG4bK-1"),
            f.resp(200, "MESSAGE")]
    (tx,) = txs(run(msgs))
    assert tx.request_frames == (1, 2) and tx.retransmissions == 0


def test_udp_waits_for_late_copies_tcp_yields_at_the_final_response():
    udp, tcp = Flow(), Flow("tcp")
    tracker = TransactionTracker()
    assert tracker.feed(udp.req("OPTIONS")) == [] and tracker.feed(udp.resp(200, "OPTIONS")) == []
    late = tracker.feed(udp.req("OPTIONS", "z9hG4bK-2", 2, after=6.0))  # 6 s later: linger (5 s) passed
    assert [t.status for t in txs(late)] == [200]
    tracker = TransactionTracker()
    tracker.feed(tcp.req("OPTIONS"))
    assert [t.status for t in tracker.feed(tcp.resp(200, "OPTIONS"))] == [200]


# --- INVITE, ACK, BYE and the dialog -----------------------------------------------------------------------

def _call(f: Flow, middle=lambda f: [],
          bye_extra=("Reason: Q.850;cause=16;text=\"Normal call clearing\"",)) -> list[Message]:
    return [
        f.req("INVITE", "z9hG4bK-inv"),
        f.resp(100, "INVITE", "z9hG4bK-inv", to_tag=None),
        f.resp(180, "INVITE", "z9hG4bK-inv", to_tag="callee"),
        f.resp(200, "INVITE", "z9hG4bK-inv", to_tag="callee"),
        f.req("ACK", "z9hG4bK-ack", to_tag="callee"),
        *middle(f),
        # the callee hangs up: its own Via, From/To tags swapped
        f.req("BYE", "z9hG4bK-bye", 1, src=SERVER, dst=UE, from_tag="callee", to_tag="ft", extra=bye_extra,
              after=30.0),
        f.resp(200, "BYE", "z9hG4bK-bye", 1, src=UE, dst=SERVER, from_tag="callee", to_tag="ft"),
    ]


def test_invite_call_gives_invite_ack_and_bye_transactions_and_one_dialog():
    records = run(_call(Flow()))
    invite, ack, bye = txs(records)
    (dialog,) = dialogs(records)
    assert records[-1] is dialog  # after every transaction in it
    assert (invite.method, invite.status) == ("INVITE", 200)
    assert [m.status for m in invite.provisional] == [100, 180]
    assert invite.ack is None and invite.to_tags == ("callee",)
    assert (ack.method, ack.final, ack.orphan) == ("ACK", None, False)
    assert (bye.method, bye.status, bye.client, bye.server) == ("BYE", 200, SERVER, UE)
    assert [s.state for s in dialog.states] == ["early", "confirmed", "terminated"]
    assert [s.frame for s in dialog.states] == [3, 4, 7]
    assert (dialog.call_id, dialog.local_tag, dialog.remote_tag) == ("call-1", "ft", "callee")
    assert dialog.initial is invite and dialog.bye is bye and dialog.transactions == (ack, bye)
    assert dialog.ended_by == SERVER and dialog.end_cause == "bye"
    assert dialog.reason == 'Q.850;cause=16;text="Normal call clearing"'
    assert dialog.confirmed and dialog.method == "INVITE"


def test_in_dialog_transactions_belong_to_the_dialog():
    def middle(f):
        return [f.req("INVITE", "z9hG4bK-re", 2, to_tag="callee", after=1.0),
                f.resp(200, "INVITE", "z9hG4bK-re", 2, to_tag="callee"),
                f.req("ACK", "z9hG4bK-re-ack", 2, to_tag="callee"),
                f.req("INFO", "z9hG4bK-info", 5, src=SERVER, dst=UE, from_tag="callee", to_tag="ft"),
                f.resp(200, "INFO", "z9hG4bK-info", 5, src=UE, dst=SERVER, from_tag="callee", to_tag="ft")]

    records = run(_call(Flow(), middle))
    (dialog,) = dialogs(records)
    assert [(t.method, t.cseq) for t in dialog.transactions] == [
        ("ACK", 1), ("INVITE", 2), ("ACK", 2), ("INFO", 5), ("BYE", 1)]
    assert [s.state for s in dialog.states] == ["early", "confirmed", "terminated"]


def test_invite_486_ack_belongs_to_the_invite_transaction():
    f = Flow()
    msgs = [f.req("INVITE"), f.resp(100, "INVITE", to_tag=None), f.resp(486, "INVITE", to_tag="busy"),
            f.req("ACK", to_tag="busy")]
    records = run(msgs)
    (tx,) = txs(records)
    assert tx.status == 486 and tx.ack.frame == 4 and tx.request_frames == (1,)
    assert dialogs(records) == []  # no early dialog was ever made (RFC 3261 §12.1)


def test_cancel_487():
    f = Flow()
    msgs = [f.req("INVITE"), f.resp(180, "INVITE", to_tag="callee"),
            f.req("CANCEL", extra=('Reason: SIP;cause=487;text="user gave up"',)),
            f.resp(200, "CANCEL", to_tag="callee"), f.resp(487, "INVITE", to_tag="callee"),
            f.req("ACK", to_tag="callee")]
    records = run(msgs)
    invite, cancel = sorted(txs(records), key=lambda t: t.time)
    assert invite.cancelled and invite.status == 487 and invite.ack is not None
    assert (cancel.method, cancel.status, cancel.branch) == ("CANCEL", 200, "z9hG4bK-1")
    assert not cancel.cancelled
    (dialog,) = dialogs(records)
    assert [s.state for s in dialog.states] == ["early", "terminated"]
    assert (dialog.end_cause, dialog.ended_by, dialog.bye) == ("rejected", SERVER, None)


def test_forked_provisionals_make_two_early_dialogs_one_confirmed():
    f = Flow()
    msgs = [f.req("INVITE"), f.resp(180, "INVITE", to_tag="fork1", src=PEER),
            f.resp(180, "INVITE", to_tag="fork2"), f.resp(200, "INVITE", to_tag="fork2"),
            f.req("ACK", "z9hG4bK-ack", to_tag="fork2")]
    records = run(msgs)
    invite = txs(records)[0]
    assert invite.to_tags == ("fork1", "fork2") and invite.status == 200
    by_tag = {d.remote_tag: d for d in dialogs(records)}
    assert [s.state for s in by_tag["fork1"].states] == ["early", "terminated"]
    assert by_tag["fork1"].end_cause == "unconfirmed" and not by_tag["fork1"].confirmed
    assert [s.state for s in by_tag["fork2"].states] == ["early", "confirmed"]
    assert by_tag["fork2"].initial is invite is by_tag["fork1"].initial


def test_forked_2xx_with_different_to_tags_make_separate_confirmed_dialogs():
    f = Flow()
    msgs = [f.req("INVITE"), f.resp(200, "INVITE", to_tag="a"), f.resp(200, "INVITE", to_tag="b", src=PEER),
            f.resp(200, "INVITE", to_tag="a")]
    records = run(msgs)
    invite = txs(records)[0]
    assert invite.final.frame == 2 and [m.frame for m in invite.more_finals] == [3]
    assert invite.response_retransmissions == 1
    assert sorted(d.remote_tag for d in dialogs(records) if d.confirmed) == ["a", "b"]


def test_481_and_subscription_terminated_end_dialogs():
    f = Flow()
    msgs = [f.req("SUBSCRIBE", "z9hG4bK-s", extra=("Event: presence",)),
            f.resp(200, "SUBSCRIBE", "z9hG4bK-s", to_tag="notifier"),
            f.req("NOTIFY", "z9hG4bK-n1", 1, src=SERVER, dst=UE, from_tag="notifier", to_tag="ft",
                  extra=("Subscription-State: active;expires=600",)),
            f.resp(200, "NOTIFY", "z9hG4bK-n1", 1, src=UE, dst=SERVER, from_tag="notifier", to_tag="ft"),
            f.req("NOTIFY", "z9hG4bK-n2", 2, src=SERVER, dst=UE, from_tag="notifier", to_tag="ft",
                  extra=("Subscription-State: terminated;reason=timeout",)),
            f.resp(200, "NOTIFY", "z9hG4bK-n2", 2, src=UE, dst=SERVER, from_tag="notifier", to_tag="ft"),
            f.req("INVITE", "z9hG4bK-i", 1, call_id="c2"), f.resp(200, "INVITE", "z9hG4bK-i", 1, "c2"),
            f.req("UPDATE", "z9hG4bK-u", 2, call_id="c2", to_tag="tt"),
            f.resp(481, "UPDATE", "z9hG4bK-u", 2, "c2")]
    sub, inv = dialogs(run(msgs))
    assert sub.method == "SUBSCRIBE" and sub.end_cause == "subscription-terminated"
    assert sub.ended_by == SERVER and sub.states[-1].frame == 5 and len(sub.transactions) == 2
    assert inv.end_cause == "481" and inv.states[-1].frame == 10 and inv.bye is None


def test_notify_overtaking_the_subscribe_2xx_confirms_the_dialog():
    f = Flow()
    msgs = [f.req("SUBSCRIBE", "z9hG4bK-s"),
            f.req("NOTIFY", "z9hG4bK-n1", 1, src=SERVER, dst=UE, from_tag="notifier", to_tag="ft",
                  extra=("Subscription-State: active",)),
            f.resp(202, "SUBSCRIBE", "z9hG4bK-s", to_tag="notifier"),
            f.resp(200, "NOTIFY", "z9hG4bK-n1", 1, src=UE, dst=SERVER, from_tag="notifier", to_tag="ft")]
    (d,) = dialogs(run(msgs))
    assert [s.state for s in d.states] == ["confirmed"] and d.states[0].frame == 2
    assert [t.method for t in d.transactions] == ["NOTIFY"]


# --- timeouts, orphans, old peers --------------------------------------------------------------------------

def test_unanswered_request_is_given_up_after_the_timeout_and_at_close():
    f = Flow()
    tracker = TransactionTracker()
    assert tracker.feed(f.req("REGISTER")) == []
    assert tracker.feed(f.req("OPTIONS", "z9hG4bK-o", call_id="c2", after=31.0)) == []
    out = tracker.feed(f.req("OPTIONS", "z9hG4bK-o2", 2, call_id="c2", after=1.5))  # REGISTER + 32.5 s
    (gone,) = txs(out)
    assert (gone.method, gone.final, gone.answered, gone.response_time) == ("REGISTER", None, None, None)
    rest = txs(tracker.close())
    assert [(t.method, t.final) for t in rest] == [("OPTIONS", None), ("OPTIONS", None)]
    assert tracker.stats.unanswered == 3 and tracker.open_counts == (0, 0)


def test_a_ringing_invite_outlives_the_non_invite_timeout():
    f = Flow()
    tracker = TransactionTracker()
    tracker.feed(f.req("INVITE"))
    tracker.feed(f.resp(180, "INVITE"))
    assert tracker.feed(f.req("OPTIONS", "z9hG4bK-o", call_id="c2", after=60.0)) == []
    out = tracker.feed(f.resp(200, "INVITE", after=10.0))
    assert out == [] and tracker.open_counts[0] == 2
    (invite,) = [t for t in txs(tracker.close()) if t.method == "INVITE"]
    assert invite.status == 200 and not invite.orphan


def test_frames_name_the_frame_that_completed_each_message_and_all_frames_every_segment():
    f = Flow("tcp")  # the INVITE came in TCP segments 1-2, its 200 in 3-5
    invite, ok = replace(f.req("INVITE"), frames=(1, 2)), replace(f.resp(200, "INVITE"), frames=(3, 4, 5))
    [tx] = txs(run([invite, ok]))
    assert tx.request_frames == (2,) and tx.frames == (2, 5) and tx.all_frames == (1, 2, 3, 4, 5)


def test_orphan_response_still_yields_a_transaction():
    f = Flow()
    tracker = TransactionTracker()
    msgs = [f.resp(180, "INVITE", "z9hG4bK-x"), f.resp(200, "INVITE", "z9hG4bK-x")]
    (tx,) = txs([r for m in msgs for r in tracker.feed(m)] + tracker.close())
    assert tx.orphan and tx.request is None and tx.request_frames == ()
    assert tx.status == 200 and [m.status for m in tx.provisional] == [180]
    assert (tx.client, tx.server, tx.time, tx.response_time) == (UE, SERVER, msgs[0].time, None)
    assert tracker.stats.orphans == 1


def test_a_request_captured_after_its_response_is_not_an_orphan():
    f = Flow()
    ok = f.resp(200, "OPTIONS")
    request = f.req("OPTIONS", after=-0.005)  # out-of-order timestamps, as a merged capture gives
    (tx,) = txs(run([ok, request]))
    assert not tx.orphan and tx.request is request and tx.status == 200 and tx.time == request.time


def test_a_challenged_bye_ends_the_dialog_only_when_its_retry_is_answered():
    f = Flow()

    def middle(f):
        return [f.req("BYE", "z9hG4bK-b0", 2, to_tag="callee", after=5.0),
                f.resp(407, "BYE", "z9hG4bK-b0", 2, to_tag="callee")]

    records = run(_call(f, middle))
    (dialog,) = dialogs(records)
    assert dialog.bye.cseq == 1 and dialog.ended_by == SERVER  # the callee's BYE, not the rejected one
    assert [t.status for t in dialog.transactions if t.method == "BYE"] == [407, 200]
    tracker = TransactionTracker()
    for m in _call(Flow()):
        tracker.feed(m)
    tracker.close()
    assert tracker.stats.as_dict() == {"messages": 7, "transactions": 3, "retransmissions": 0,
                                       "response_retransmissions": 0, "orphans": 0, "unanswered": 0,
                                       "challenges": 0, "dialogs": 1, "confirmed_dialogs": 1,
                                       "evicted": 0, "evicted_dialogs": 0, "forgotten_challenges": 0}


def test_rfc2543_peers_match_on_call_id_cseq_and_from_tag():
    f = Flow()
    old = f"SIP/2.0/UDP {UE}"  # no branch at all
    msgs = [f.req("INVITE", via=old), f.req("INVITE", via=old, after=0.5),
            f.resp(200, "INVITE", via=old), f.req("ACK", via=old, to_tag="tt"),
            f.req("BYE", cseq=2, via=old + ";branch=1234", to_tag="tt"),
            f.resp(200, "BYE", cseq=2, via=old + ";branch=1234")]
    records = run(msgs)
    invite, ack, bye = txs(records)
    assert invite.status == 200 and invite.retransmissions == 1 and invite.branch is None
    assert ack.method == "ACK" and invite.ack is None  # ACK of a 2xx: a transaction of its own
    assert bye.status == 200 and bye.branch == "1234"
    assert dialogs(records)[0].end_cause == "bye"


def test_a_response_naming_another_call_id_does_not_answer_the_request_of_its_branch():
    """RFC 3261 §8.2.6.2: a response repeats its request's Call-ID; one that names another (mangled) is an
    orphan of its own, as Wireshark pairs requests and responses on Call-ID and CSeq."""
    f = Flow()
    found = txs(run([f.req("OPTIONS"), f.resp(200, "OPTIONS", call_id="mangled")]))
    request, answer = sorted(found, key=lambda t: t.orphan)
    assert request.call_id == "call-1" and request.final is None and not request.orphan
    assert answer.call_id == "mangled" and answer.orphan and answer.status == 200


def test_sent_by_default_port_and_a_response_via_rewritten_by_a_nat():
    f = Flow()
    msgs = [f.req("INVITE", via="SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1;rport"),
            f.resp(100, "INVITE", to_tag=None, via="SIP/2.0/UDP 10.0.0.1:5999;branch=z9hG4bK-1;rport=5060"),
            f.req("CANCEL", via="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1;rport"),
            f.resp(200, "CANCEL", via="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1"),
            f.resp(487, "INVITE"), f.req("ACK", to_tag="tt")]
    cancel, invite = txs(run(msgs))  # the CANCEL completes first
    assert invite.cancelled and not invite.orphan and not cancel.orphan
    assert [m.status for m in invite.provisional] == [100] and invite.ack is not None


def test_non_sip_items_only_pass_through_when_asked():
    f = Flow()
    http = Message("http", "request", "GET", "/profile", None, None, Headers([("host", "cms")]), b"", (3,),
                   1000.015, UE, SERVER, "tcp")
    msgs = [f.req("OPTIONS"), f.resp(200, "OPTIONS"), http]
    assert [type(r).__name__ for r in run(msgs)] == ["Transaction"]
    assert run(msgs, passthrough=True)[0] is http


def test_memory_is_bounded_by_open_transactions():
    f = Flow()
    tracker = TransactionTracker()
    peak = 0
    for i in range(2000):
        tracker.feed(f.req("REGISTER", f"z9hG4bK-{i}", i + 1, after=0.5))
        tracker.feed(f.resp(200, "REGISTER", f"z9hG4bK-{i}", i + 1))
        peak = max(peak, tracker.open_counts[0])
    assert peak <= 12  # ~ linger / spacing, not 2000
    assert len(txs(tracker.close())) <= 12 and tracker.stats.transactions == 2000


# --- real captures against tshark -------------------------------------------------------------------------

PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "captures" / "public"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                                  reason="tshark not installed: apt-get install tshark")


def _public(name: str) -> Path:
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"public capture {path} not present (shared captures folder missing)")
    return path


def _tshark(path: Path, *fields: str, filter_: str = "sip") -> list[list[str]]:
    cmd = ["tshark", "-r", str(path), "-Y", filter_, "-T", "fields", "-E", "separator=\t",
           *(a for f in fields for a in ("-e", f))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def _tracked(path: Path) -> tuple[list[Transaction], list[Dialog], dict[int, Message]]:
    from analyzer.engines.dpkt_engine import decode

    by_frame: dict[int, Message] = {}

    def items():
        for item in decode(str(path)).items:
            if isinstance(item, Message):
                by_frame[item.frame] = item
            yield item

    records = run(items())
    return txs(records), dialogs(records), by_frame


def _tshark_scope(copy: Message) -> bool:
    """Copies tshark's sip.resend can flag: requests other than ACK/CANCEL, and final responses."""
    if copy.kind == "request":
        return copy.method not in ("ACK", "CANCEL")
    return copy.status >= 200


CASES = ["sipnab__b2bua-asterisk.pcapng", "sngrep__aaa.pcap"]


@needs_tshark
@pytest.mark.parametrize("name", CASES)
def test_retransmissions_match_tshark(name):
    path = _public(name)
    flagged = {int(row[0]) for row in _tshark(path, "frame.number", filter_="sip.resend == 1")}
    transactions, _, by_frame = _tracked(path)
    ours = {f for t in transactions for f in t.retransmitted_frames}
    assert flagged and flagged <= ours
    assert {f for f in ours if _tshark_scope(by_frame[f])} == flagged
    # what tshark leaves out by design: CANCEL/ACK copies and repeated provisionals
    assert all(not _tshark_scope(by_frame[f]) for f in ours - flagged)


@needs_tshark
@pytest.mark.parametrize("name", CASES)
def test_final_responses_per_transaction_match_tshark(name):
    path = _public(name)
    expected: dict[tuple[str, str], set[int]] = defaultdict(set)
    for call_id, cseq, status in _tshark(path, "sip.Call-ID", "sip.CSeq", "sip.Status-Code"):
        key = (call_id, " ".join(cseq.split()))
        if status and int(status) >= 200:
            expected[key].add(int(status))
        elif not status and not cseq.endswith("ACK"):
            expected.setdefault(key, set())
    transactions, _, _ = _tracked(path)
    ours: dict[tuple[str, str], set[int]] = {}
    for t in transactions:
        if t.method != "ACK":
            ours[(t.call_id, f"{t.cseq} {t.method}")] = {m.status for m in (t.final, *t.more_finals) if m}
    assert ours == dict(expected)
    assert not any(t.orphan for t in transactions)
    assert all(t.final is not None for t in transactions if t.method != "ACK")


@needs_tshark
@pytest.mark.parametrize("name", CASES)
def test_confirmed_invite_dialogs_match_tshark(name):
    path = _public(name)
    rows = _tshark(path, "sip.Call-ID", "sip.from.tag", "sip.to.tag",
                   filter_='sip.Status-Code >= 200 && sip.Status-Code < 300 && sip.CSeq.method == "INVITE"')
    expected = {(call_id, frozenset((a, b))) for call_id, a, b in rows}
    _, found, _ = _tracked(path)
    ours = {(d.call_id, frozenset((d.local_tag, d.remote_tag))) for d in found
            if d.method == "INVITE" and d.confirmed}
    assert ours == expected
    assert len(expected) == {"sipnab__b2bua-asterisk.pcapng": 2, "sngrep__aaa.pcap": 0}[name]


@needs_tshark
@pytest.mark.parametrize("name", CASES)
def test_challenge_chains_match_tshark(name):
    path = _public(name)
    rows = _tshark(path, "sip.Call-ID", "sip.CSeq", "sip.Status-Code", "sip.from.tag", "sip.Authorization",
                   "sip.Proxy-Authorization")
    challenged = {(c, " ".join(q.split()), ft) for c, q, st, ft, _, _ in rows if st in ("401", "407")}
    expected = set()
    for call_id, cseq, status, from_tag, auth, proxy_auth in rows:
        if status or not (auth or proxy_auth):
            continue
        number, method = cseq.split()
        before = f"{int(number) - 1} {method}"
        prev = {(call_id, before, from_tag)}
        if method == "REGISTER":  # a new From tag on each REGISTER is normal (RFC 3261 §8.1.1.3, §10.2)
            prev = {(c, q, ft) for c, q, ft in challenged if (c, q) == (call_id, before)}
        if prev & challenged:
            expected.add((call_id, int(number), method))
    transactions, _, _ = _tracked(path)
    ours = set()
    for t in transactions:
        if t.challenge_of is not None:
            assert t.challenge_of.status in (401, 407) and t.challenge_of.cseq == t.cseq - 1
            assert t.challenge_of.call_id == t.call_id and t.challenge_of.method == t.method
            ours.add((t.call_id, t.cseq, t.method))
    assert ours == expected
    registers = [t for t in transactions if t.method == "REGISTER" and t.challenge_of is not None]
    if name == "sngrep__aaa.pcap":
        assert len(registers) == 9
        # REGISTER → 401 → REGISTER → 200 reads as one authenticated registration
        assert any(t.status == 200 and t.challenge_of.status == 401 for t in registers)


@needs_tshark
def test_transaction_frames_over_tcp_are_where_tshark_shows_each_message_and_all_frames_keep_the_segments():
    path = SAMPLES / "real" / "sipp-mcptt-tcp-ipv6.pcap"  # three requests span two TCP segments each
    expected: dict[tuple[str, str], set[int]] = defaultdict(set)
    for frame, call_id, cseq in _tshark(path, "frame.number", "sip.Call-ID", "sip.CSeq"):
        expected[(call_id, " ".join(cseq.split()))].add(int(frame))
    transactions, _, by_frame = _tracked(path)
    ours = {(t.call_id, f"{t.cseq} {t.method}"): set(t.frames) for t in transactions}
    assert ours == expected and len(ours) == 7
    for t in transactions:
        assert t.request_frames == (t.request.frame,) and set(t.frames) <= set(t.all_frames)
        assert set(t.all_frames) == {f for n in t.frames for f in by_frame[n].frames}
    split = sorted(f for t in transactions for f in set(t.all_frames) - set(t.frames))
    assert split == [11, 16, 21]  # the first segments of the two PUBLISHes and the INVITE


# --- synthesised sample captures --------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.pcapng")), ids=lambda p: p.stem)
def test_sample_captures_have_no_orphans_and_every_request_answered(path):
    from analyzer.synth.scenario import load_scenario

    scenario_file = path.with_suffix(".yaml")
    if not scenario_file.exists():
        pytest.skip(f"no scenario beside {path.name}")
    scenario = load_scenario(scenario_file)
    transactions, found, _ = _tracked(path)
    assert transactions and not any(t.orphan for t in transactions)
    unanswered = [t for t in transactions if t.final is None and t.method != "ACK"]
    no_answer_faults = sum(step.fault.no_answer for step in scenario.timeline)
    if scenario.truncate_at is not None:  # only what was cut off by the end of the capture
        end = scenario.start + scenario.truncate_at
        assert all(t.time > end - 1.0 for t in unanswered)
    elif no_answer_faults:
        assert 0 < len(unanswered) <= no_answer_faults
    else:
        assert unanswered == []
    assert all(d.initial is not None and d.confirmed == (d.reached("confirmed") is not None) for d in found)
