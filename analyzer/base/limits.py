"""Every cap on what mcxa keeps in memory, in one place: a capture is hostile input.

Each table a capture can grow (TCP streams, reassembly buffers, IP fragments, SCTP messages, SIP
transactions and dialogs, calls, publications, UE identities) has a cap here. Hitting one is never fatal
and never silent: the oldest (least recently active) entries are evicted, counted and reported as a
``table-full`` (or a more specific) diagnostic naming the cap and how to raise it. The defaults fit a
core-side capture of tens of thousands of UEs in a few hundred MB; ``--limit NAME=VALUE`` (every command
that reads captures) raises or lowers any of them.

This module imports nothing of mcxa but its error class, so every stage may read it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace

from analyzer.base.errors import UsageError


@dataclass(frozen=True, slots=True)
class Limits:
    """The caps; each field's comment is its documentation (``mcxa --help`` and the README list them)."""

    # -- transport --------------------------------------------------------------------------------------
    tcp_streams: int = 50_000  # TCP connections followed at once; the least recently active is flushed
    tcp_buffered_bytes: int = 256 << 20  # bytes held by all TCP connections together (reassembly, framing,
    #   retransmission history); over it histories go first, then the least recently active connections
    tcp_pending_bytes: int = 1 << 20  # out-of-order bytes one direction holds before a hole becomes a gap
    tcp_pending_segments: int = 256  # out-of-order segments one direction holds, likewise
    tcp_history_bytes: int = 256 << 10  # delivered bytes one direction keeps to check retransmissions
    tcp_history_segments: int = 1024  # delivered segments one direction keeps, likewise
    ignored_flows: int = 65_536  # TCP flows remembered as not signalling (so their packets skip decoding)
    ip_fragments: int = 4096  # IP datagrams being reassembled at once
    ip_fragment_pieces: int = 1024  # fragments of one datagram (a real one has a few dozen at most)
    sctp_associations: int = 4096  # SCTP associations followed at once
    sctp_chunks: int = 4096  # chunks read from one SCTP packet (a real one bundles a few)
    sctp_partial_messages: int = 256  # fragmented SCTP user messages being reassembled at once
    sctp_partial_chunks: int = 1024  # DATA chunks of one fragmented SCTP user message
    sctp_partial_bytes: int = 1 << 20  # bytes of one fragmented SCTP user message
    message_bytes: int = 16 << 20  # one SIP/HTTP message body (and one WebSocket message)
    header_bytes: int = 64 << 10  # one SIP/HTTP start line and header section
    line_bytes: int = 8 << 10  # one SIP/HTTP start line or chunk-size line
    # -- meaning ----------------------------------------------------------------------------------------
    transactions: int = 50_000  # SIP transactions open at once (waiting for answers or copies; 4-6 KB each
    #   with their messages), and likewise HTTP requests awaiting their response
    challenges: int = 20_000  # answered 401/407 challenges awaiting their retry (each for 120 s; ~5 KB each)
    dialogs: int = 100_000  # SIP dialogs open at once, where followed (the transactions they hold count
    #   against ``transactions``): ``TransactionTracker``'s Dialog records; mcxa's commands need no dialogs
    calls: int = 100_000  # established calls whose end (BYE) is awaited
    publications: int = 4096  # live affiliation/service-authorisation publications (RFC 3903)
    identities: int = 1_000_000  # UE identities (MC IDs, IMPUs, instance and client IDs) linked into sessions
    domains: int = 10_000  # distinct domains (and server addresses) MC systems are inferred from
    floor_messages: int = 200_000  # MCPTT floor control messages kept to be given to their calls (events)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def with_overrides(self, pairs: list[str] | tuple[str, ...]) -> Limits:
        """``['tcp_streams=200000', ...]`` (from ``--limit``) applied to these limits; a bad one is a
        ``UsageError`` naming it."""
        changes: dict[str, int] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in self.names():
                hint = difflib.get_close_matches(name, self.names(), n=1)
                maybe = f"; did you mean '{hint[0]}'?" if hint else ""
                raise UsageError(f"--limit {pair!r}: expected NAME=NUMBER, NAME one of "
                                 f"{', '.join(self.names())}{maybe}")
            text = value.strip().replace("_", "")
            if not (text.isascii() and text.isdigit()) or int(text) < 1:
                raise UsageError(f"--limit {pair!r}: {value.strip()!r} is not a positive whole number")
            changes[name] = int(text)
        return replace(self, **changes)


#: The defaults.
DEFAULT = Limits()
