"""The TCP connections one capture follows: found by address pair, swept when idle, capped and evicted.

A flow is followed from its SYN, or from the first segment that starts a SIP/HTTP message or a TLS
handshake. Memory is bounded three ways, so no capture can grow it without limit:

- connections idle for ``TCP_IDLE_TIMEOUT`` seconds of capture time are flushed and forgotten;
- at most ``Limits.tcp_streams`` are followed at once: a new one evicts the least recently active;
- the bytes all of them hold together (reassembly, framing, retransmission history) stay under
  ``Limits.tcp_buffered_bytes``: over it, retransmission histories go first (least recently active
  connections first; nothing decoded depends on them), then whole connections, down to 3/4 of the cap
  (so a capture that keeps hitting it pays one walk per quarter of the cap, not one per segment).

An evicted connection is flushed as the idle sweep does (what the end of its stream completes is
delivered, what it leaves unfinished is a ``tcp-unfinished`` diagnostic) and named in a ``table-full``
diagnostic that says which cap to raise; a later message on its address pair is picked up at its start
line. Flows that are not followed (not SIP/HTTP/TLS, or ended) are remembered, up to
``Limits.ignored_flows`` (then the oldest is forgotten, and one ``table-full`` diagnostic at the end says
how many), so their later packets skip decoding.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import Limits
from analyzer.transport.buffer import FramingLimits
from analyzer.transport.connection import TcpConnection
from analyzer.transport.records import DIAGNOSTIC, OTHER, SIGNALLING
from analyzer.transport.startline import looks_like_start_line
from analyzer.transport.tcp import TcpLimits

#: TCP connections idle this long (capture time) are flushed and forgotten, so memory does not grow with
#: the number of connections a long capture sees; a later message on one is picked up at its start line.
TCP_IDLE_TIMEOUT = 120.0
SYN = 0x02
TLS_HANDSHAKE = 0x16
_TIME, _KEY, _REVERSE, _PACKETS, _HELD = range(5)  # fields of a connection's record


class TcpFlows:
    """Every TCP connection of one capture: feeds segments to them, counts their packets' fates."""

    def __init__(self, diagnostics: Diagnostics, fates: dict[str, int], limits: Limits,
                 name: Callable[[bytes, int], str], idle_timeout: float = TCP_IDLE_TIMEOUT):
        self.diag = diagnostics
        self.fates = fates  # the demultiplexer's: packets are counted when their connection is forgotten
        self.limits = limits
        self._name = name
        self._tcp_limits = TcpLimits.of(limits)
        self._framing_limits = FramingLimits.of(limits)
        #: Both directions' 4-tuple keys (src ip, dst ip, sport, dport as raw bytes) → the connection.
        self.conns: dict[bytes, TcpConnection] = {}
        #: Flows no longer followed → the fate of their later packets: OTHER (not SIP/HTTP/TLS) or SIGNALLING
        #: (ended: a FIN, a RST; its last acknowledgements are still its own).
        self.ignored: OrderedDict[bytes, str] = OrderedDict()  # (not a dict: see _forget)
        # Per live connection, least recently active first: [last activity time, its two keys, packets so
        # far, bytes held], for the idle sweep, the caps and the accounting.
        self._activity: OrderedDict[TcpConnection, list] = OrderedDict()
        self._held = 0  # bytes held by all connections, as of each one's last segment
        self._forgotten = 0  # flows pushed out of ``ignored``
        self._idle_timeout = idle_timeout
        self._next_sweep: float | None = None  # capture time of the next idle sweep

    def __len__(self) -> int:
        """Connections followed now."""
        return len(self._activity)

    def segment(self, src: bytes, dst: bytes, data: bytes, number: int, time: float, weight: int,
                out: list) -> None:
        """One TCP segment (``data``: header and payload, header length checked) between IP addresses
        ``src`` and ``dst``; appends what it completes to ``out``."""
        ports = data[0:4]
        key = src + dst + ports
        conn = self.conns.get(key)
        flags, payload = data[13], data[(data[12] >> 4) << 2:]
        a = None  # the sender's name, made once it is needed
        if conn is None:
            fate = self.ignored.get(key)
            if not flags & SYN and (fate == OTHER or not (payload and (
                    looks_like_start_line(payload) or payload[0] == TLS_HANDSHAKE))):
                self.fates[fate or OTHER] += weight
                return
            reverse = dst + src + ports[2:] + ports[:2]
            a = self._name(src, (data[0] << 8) | data[1])
            if reverse == key:  # a LAND attack: both directions would be one
                self.diag.add("malformed-packet", f"frame {number}: TCP segment from {a} to itself (source "
                              "and destination are the same); not followed", (number,))
                self.fates[DIAGNOSTIC] += weight
                return
            if fate is not None:
                self.ignored.pop(key, None)
                self.ignored.pop(reverse, None)
            if len(self._activity) >= self.limits.tcp_streams:
                cap = self.limits.tcp_streams
                self._evict(out, f"{cap} connections were followed at once (--limit tcp_streams={cap} "
                                 "raises the cap)" if self.diag.wants("table-full") else None)
            conn = TcpConnection(a, self._name(dst, (data[2] << 8) | data[3]), self.diag,
                                 tcp_limits=self._tcp_limits, framing_limits=self._framing_limits)
            self.conns[key] = self.conns[reverse] = conn
            record = self._activity[conn] = [time, key, reverse, weight, 0]
        else:
            record = self._activity[conn]
            self._activity.move_to_end(conn)
            record[_TIME] = time
            record[_PACKETS] += weight
        if a is None:
            a = self._name(src, (data[0] << 8) | data[1])
        out.extend(conn.segment(a, int.from_bytes(data[4:8], "big"), flags, payload, number, time))
        if conn.finished:
            self._forget(conn)
        elif payload:  # (a bare ACK, SYN or FIN adds nothing held; what it releases is counted later)
            held = conn.memory
            self._held += held - record[_HELD]
            record[_HELD] = held
            if self._held > self.limits.tcp_buffered_bytes:
                self._relieve(out)
        if self._next_sweep is None or time >= self._next_sweep:
            self._sweep(time, out)
            self._next_sweep = time + self._idle_timeout / 4

    def close(self, out: list) -> None:
        """End of capture: flush every connection, count its packets."""
        for conn in list(self._activity):
            out.extend(conn.close())
            self._forget(conn, ignore=False)
        self.conns.clear()
        if self._forgotten:
            cap = self.limits.ignored_flows
            self.diag.add("table-full", f"{self._forgotten} TCP flows not followed (not SIP/HTTP/TLS, or "
                          f"ended) were forgotten, the oldest first, to remember at most {cap} (--limit "
                          f"ignored_flows={cap} raises the cap): their later packets were looked at again, "
                          "and an ended flow's last acknowledgements may be counted as other")

    # -- bounds --------------------------------------------------------------------------------------------

    def _sweep(self, now: float, out: list) -> None:
        """Flush and forget connections idle longer than the timeout."""
        for conn, record in list(self._activity.items()):
            if now - record[_TIME] > self._idle_timeout:
                out.extend(conn.close())
                self._forget(conn, ignore=False)

    def _relieve(self, out: list) -> None:
        """Over ``tcp_buffered_bytes``: drop retransmission histories, then evict connections, least
        recently active first, down to 3/4 of the cap."""
        cap = self.limits.tcp_buffered_bytes
        target = cap - cap // 4
        for conn, record in self._activity.items():
            if self._held <= target:
                return
            conn.drop_history()
            held = conn.memory
            self._held += held - record[_HELD]
            record[_HELD] = held
        while self._held > target and self._activity:
            self._evict(out, f"the TCP connections followed held over {cap} bytes together (--limit "
                             f"tcp_buffered_bytes={cap} raises the cap)" if self.diag.wants("table-full")
                        else None)

    def _evict(self, out: list, why: str | None) -> None:
        """Stop following the least recently active connection, as the idle sweep would, and say so (``why``
        None: the diagnostic was counted already, ``Diagnostics.wants``)."""
        conn = next(iter(self._activity))
        if why is not None:
            self.diag.add("table-full", f"{conn.name}: TCP connection no longer followed, the least recently "
                          f"active when {why}; a later message on it is picked up at its start line")
        out.extend(conn.close())
        self._forget(conn, ignore=False)

    def _forget(self, conn: TcpConnection, ignore: bool = True) -> None:
        """Drop a closed, uninteresting, idle or evicted connection; count its packets."""
        _, key, reverse, packets, held = self._activity.pop(conn)
        self._held -= held
        fate = SIGNALLING if conn.carried else OTHER
        # (a message cut off by the end of its stream is named by a tcp-unfinished diagnostic: its packets
        # count as that diagnostic's, like those of a message that did not parse)
        unfinished = min(conn.unfinished_frames, packets) if fate == SIGNALLING else 0
        self.fates[DIAGNOSTIC] += unfinished
        self.fates[fate] += packets - unfinished
        self.conns.pop(key, None)
        self.conns.pop(reverse, None)
        if ignore:
            ignored = self.ignored
            if len(ignored) >= 2 * self.limits.ignored_flows:  # (two keys per flow, always side by side)
                # O(1) in an OrderedDict; the first key of a plain dict whose front entries were deleted
                # takes a scan past their slots, O(n) per eviction.
                ignored.popitem(last=False)
                ignored.popitem(last=False)
                self._forgotten += 1
            ignored[key] = ignored[reverse] = fate
