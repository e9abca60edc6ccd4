"""SIP transactions and dialogs, rebuilt from messages in capture order (RFC 3261 §17 and §12).

A pure stage: ``TransactionTracker.feed(item)`` takes one decoded item at a time (SIP ``Message``s are
tracked; anything else with a ``time``, e.g. HTTP messages, only advances the clock) and returns the
``Transaction`` and ``Dialog`` records that completed; ``close()`` returns the rest at end of input.
``track(items)`` wraps both as an iterator. No I/O; all timers run on capture time.

Matching (RFC 3261 §17.1.3/§17.2.3): a request and its responses share the top Via branch and sent-by,
the CSeq number and the method (ACK and CANCEL answer to INVITE by branch). Peers without the
``z9hG4bK`` magic cookie (RFC 2543) are matched on Call-ID + CSeq + From tag instead. The CSeq number is
part of the key, so a client that reuses one branch for several requests still gets one transaction each.

When a record is yielded: a transaction stays open after its final response to absorb UDP copies of the
request, the response and (non-2xx INVITE) the ACK, until ``linger`` seconds pass with no copy (RFC 3261
Timer K/I, T4; 0 on TCP/TLS/SCTP). A non-2xx INVITE waits up to ``timeout`` for its ACK (Timer D). An
unanswered request is given up ``timeout`` seconds after its last copy (Timer F/B, 64·T1), an INVITE that
got a provisional answer after ``invite_timeout`` (Timer C). A dialog is yielded once it is terminated and
every transaction in it has been yielded, or at ``close()``. Memory therefore holds open transactions,
open dialogs, and answered 401/407 challenges for ``challenge_window`` seconds — never the capture.

Each of those tables is capped (``analyzer.base.limits``: ``transactions``, ``challenges``, ``dialogs``; the
transactions open dialogs hold count against ``transactions``). Beyond a cap the least recently active
entry goes as if its timer had fired (a transaction or dialog is yielded early, a challenge forgotten);
``stats`` counts them and ``overflows()`` says which caps were hit, for a ``table-full`` diagnostic.
A caller that needs no ``Dialog`` records (the events stage) passes ``dialogs=False``: then no dialog, and
none of the transactions a dialog would hold until its end, is kept at all.
"""

from analyzer.meaning.transactions.records import (
           END_CAUSES,
           STATES,
           Dialog,
           DialogState,
           TrackerStats,
           Transaction,
)
from analyzer.meaning.transactions.tables import CHALLENGE_WINDOW, TIMER_C, TIMER_F
from analyzer.meaning.transactions.tracker import TransactionTracker, track

__all__ = ["CHALLENGE_WINDOW", "END_CAUSES", "STATES", "TIMER_C", "TIMER_F", "Dialog", "DialogState",
           "TrackerStats", "Transaction", "TransactionTracker", "track"]
