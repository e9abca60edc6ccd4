"""The tracker: SIP messages in capture order in, ``Transaction`` and ``Dialog`` records out as they end.

This module is the matching: which transaction, dialog and challenge each message belongs to. What is held,
and how it is let go (timers, caps, records), is ``tables``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from analyzer.meaning.transactions.headers import (
    challenge_key,
    cseq_of,
    loose_key,
    match_key,
    tag_of,
    top_via,
)
from analyzer.meaning.transactions.records import Dialog, Transaction
from analyzer.meaning.transactions.state import OpenTx
from analyzer.meaning.transactions.tables import TrackerTables
from analyzer.messages.records import Message

DIALOG_METHODS = frozenset(("INVITE", "SUBSCRIBE"))  # requests that create dialogs (RFC 3261, RFC 6665)


@dataclass(slots=True)
class TransactionTracker(TrackerTables):
    """Feed items in capture order; get ``Transaction`` and ``Dialog`` records as they complete."""

    # -- public API ---------------------------------------------------------------------------------

    def feed(self, item) -> list[Transaction | Dialog]:
        """Take one item; return the records it completed, in order.

        Timers fire on the item's capture time first. Items other than SIP messages (HTTP, TLS hellos)
        only move the clock.
        """
        out = self.advance(item.time)
        if isinstance(item, Message) and item.proto == "sip":
            self.stats.messages += 1
            if item.kind == "request":
                self._request(item, out)
            else:
                self._response(item, out)
            self._enforce_caps(item.frame, out)
        return out

    def advance(self, now: float) -> list[Transaction | Dialog]:
        """Move the clock to ``now`` (capture time) without an item: the records whose timers fired.
        A tracker fed only some of the messages (a shard) still sees the time of every one."""
        out: list = []
        if now > self._now:
            self._now = now
            self._expire(now, out)
        return out

    # -- requests -----------------------------------------------------------------------------------

    def _request(self, msg: Message, out: list) -> None:
        h = msg.headers
        call_id = h.get("call-id")
        cseq, _ = cseq_of(h.get("cseq"))
        if call_id is None or cseq is None:
            return self._unmatchable(msg, out)
        method = msg.method
        sent_by, branch = top_via(h.get("via"))
        from_tag = tag_of(h.get("from"))
        key = match_key(branch, sent_by, call_id, cseq, from_tag, method)
        if method == "ACK":
            inv = self._txs.get((*key[:-1], "INVITE"))
            if inv is not None and inv.final is not None and inv.final.status >= 300:
                if inv.ack is None:
                    inv.ack = msg
                else:
                    self._copy(inv, msg, request=True)
                return self._touch(inv, msg, out)
        tx = self._txs.get(key)
        if tx is not None and tx.request is not None:
            if tx.direction == (msg.src, msg.dst):
                self._copy(tx, msg, request=True)
            else:  # the same request seen on another hop without a Via of its own
                tx.frames.append(msg.frame)
            return self._touch(tx, msg, out)
        if tx is not None:  # responses came first (orphan so far): the request turns up late
            tx.request, tx.frames, tx.direction, tx.orphan = msg, [msg.frame], (msg.src, msg.dst), False
            tx.client, tx.server = msg.src, msg.dst
            tx.time = min(tx.time, msg.time)
        else:
            tx = self._open(key, method, msg, branch, call_id, cseq, from_tag, orphan=False)
        if method == "CANCEL":
            inv = self._txs.get((*key[:-1], "INVITE"))
            if inv is not None:
                inv.cancelled = True
        if "authorization" in h or "proxy-authorization" in h:
            self._link_challenge(tx, out)
        to_tag = tag_of(h.get("to")) if self.dialogs else None
        if to_tag is not None:
            self._in_dialog(tx, msg, call_id, from_tag, to_tag, out)
        elif self.dialogs:
            tx.initial = method in DIALOG_METHODS
            if method == "SUBSCRIBE":
                self._subscribes[(call_id, from_tag)] = tx
        self._touch(tx, msg, out)

    def _link_challenge(self, tx: OpenTx, out: list) -> None:
        ckey = challenge_key(tx)
        prev = self._challenges.get(ckey)
        if prev is None or prev.cseq != tx.cseq - 1:
            return
        del self._challenges[ckey]
        if prev.record is None:  # the client has moved on: the challenged transaction is over
            self._emit(prev, out)
        tx.challenge_of = prev.record
        self.stats.challenges += 1

    def _in_dialog(self, tx: OpenTx, msg: Message, call_id, from_tag, to_tag, out: list) -> None:
        d = self._dialogs.get((call_id, from_tag, to_tag)) or self._dialogs.get((call_id, to_tag, from_tag))
        if d is None and msg.method == "NOTIFY" and from_tag:  # NOTIFY may overtake its SUBSCRIBE's 2xx
            sub = self._subscribes.get((call_id, to_tag))
            if sub is not None:
                d = self._dialog(sub, from_tag, "confirmed", msg)
        if d is None or d.emitted:
            return
        self._dialogs.move_to_end(d.id)
        tx.dialog = d
        d.txs.append(tx)
        self._held += 1
        tx.dialogs.append(d)
        d.pending += 1
        if msg.method == "BYE" and d.bye is None:
            d.bye, d.ended_by, d.reason = tx, msg.src, msg.headers.get("reason")
        elif msg.method == "NOTIFY" and d.method == "SUBSCRIBE":
            state = (msg.headers.get("subscription-state") or "").split(";", 1)[0].strip().lower()
            if state == "terminated":
                d.end("subscription-terminated", msg, msg.src)

    # -- responses ----------------------------------------------------------------------------------

    def _response(self, msg: Message, out: list) -> None:
        h = msg.headers
        call_id = h.get("call-id")
        cseq, method = cseq_of(h.get("cseq"))
        if call_id is None or cseq is None or method is None:
            return self._unmatchable(msg, out)
        sent_by, branch = top_via(h.get("via"))
        from_tag = tag_of(h.get("from"))
        key = match_key(branch, sent_by, call_id, cseq, from_tag, method)
        tx = self._txs.get(key)
        if tx is None and key[0] == "b":  # §17.1.3: a client matches on branch and method alone
            tx = self._loose.get(loose_key(key))
        if tx is None:
            tx = self._open(key, method, msg, branch, call_id, cseq, from_tag, orphan=True)
        to_tag = tag_of(h.get("to"))
        status = msg.status
        seen = (status, to_tag, h.get("rseq"))
        if seen in tx.seen:
            self._copy(tx, msg, request=False)
            return self._touch(tx, msg, out)
        tx.seen.add(seen)
        if to_tag is not None:
            tx.to_tags[to_tag] = None
        if status < 200:
            tx.prov.append(msg)
        elif tx.final is None:
            tx.final, tx.answered = msg, msg.time
            if status in (401, 407):
                ckey = challenge_key(tx)
                self._challenges[ckey] = tx
                self._challenges.move_to_end(ckey)
        else:
            tx.more_finals.append(msg)
        if tx.initial and to_tag is not None:
            if 100 < status < 200:
                self._dialog(tx, to_tag, "early", msg)
            elif 200 <= status < 300:
                self._dialog(tx, to_tag, "confirmed", msg)
        if status >= 300 and tx.initial and tx.final is msg:
            for d in tx.dialogs:
                d.end("rejected", msg, msg.src)
        elif tx.dialog is not None and status >= 200 and tx.final is msg:
            d = tx.dialog
            if d.bye is tx and status in (401, 407):  # a challenged BYE: its retry will end the dialog
                d.bye = d.ended_by = d.reason = None
            elif d.bye is tx:
                d.end("bye", msg, d.ended_by)
            elif status in (481, 408):
                d.end(str(status), msg, msg.src)
        self._touch(tx, msg, out)

    # -- copies and messages of their own -----------------------------------------------------------

    def _copy(self, tx: OpenTx, msg: Message, request: bool) -> None:
        tx.copies.append(msg.frame)
        if request:
            tx.retrans += 1
            if msg.method == tx.method:  # not an ACK copy
                tx.frames.append(msg.frame)
        else:
            tx.resp_retrans += 1

    def _unmatchable(self, msg: Message, out: list) -> None:
        """A message without Call-ID or CSeq (the parser reported it): a transaction of its own, now."""
        cseq, method = cseq_of(msg.headers.get("cseq"))
        request = msg.kind == "request"
        tx = OpenTx(None, msg.method if request else method, msg, None, msg.headers.get("call-id"), cseq,
                 tag_of(msg.headers.get("from")), orphan=True)
        if request:
            tx.request, tx.frames, tx.client, tx.server = msg, [msg.frame], msg.src, msg.dst
        elif msg.status >= 200:
            tx.final, tx.answered = msg, msg.time
        else:
            tx.prov.append(msg)
        tx.segments = list(msg.frames)
        self._emit(tx, out)


def track(items: Iterable, passthrough: bool = False, **options) -> Iterator:
    """Transactions and dialogs of ``items`` (capture order), as they complete.

    ``passthrough=True`` also yields every item that is not a SIP message (HTTP messages, TLS hellos)
    untouched, in its place. ``options`` go to ``TransactionTracker``.
    """
    tracker = TransactionTracker(**options)
    for item in items:
        yield from tracker.feed(item)
        if passthrough and not (isinstance(item, Message) and item.proto == "sip"):
            yield item
    yield from tracker.close()
