"""Anomalies are data: malformed packets and messages become named diagnostics with frame numbers.

A ``Diagnostics`` collector counts every occurrence per code but keeps only the first few records per
code, so memory stays flat on a capture with millions of broken packets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: Every diagnostic code, with one line saying what it means. Unknown codes are refused.
CODES: dict[str, str] = {
    "truncated-packet": "the capture file ends inside a packet record",
    "snaplen-cut": "packet was cut by the capture snap length; its payload is incomplete",
    "bad-timestamp": "a packet's timestamp is not a date (beyond years 1-9999, e.g. from pcapng if_tsresol/"
                     "if_tsoffset); the packet took the previous packet's time",
    "bad-record": "a pcap/pcapng record or block is malformed; the rest of the file could not be read",
    "bad-compression": "the gzip stream of a compressed capture is corrupt or cut short; reading stopped",
    "unsupported-encapsulation": "a packet inside a tunnel or PPP link this engine cannot open (compressed "
                                 "or encrypted PPP, tunnels nested too deep); it was not decoded",
    "read-error": "reading the capture failed for another reason (an I/O error, or tshark's own words); "
                  "reading stopped",
    "tshark-warning": "tshark said something on stderr that mcxa does not recognise (quoted as is)",
    "unknown-linktype": "interface link type is not decoded by this engine",
    "malformed-packet": "a link, IP or transport header is malformed",
    "malformed-esp": "an IPsec ESP packet is cut short or its trailer (padding, pad length) is invalid "
                     "(after decryption with the key given, or as NULL encryption); the packet was not used",
    "esp-auth-failed": "an IPsec ESP packet's ICV does not match the integrity key given (--esp-sa): wrong "
                       "key or damaged packet; the packet was not used",
    "fragment-incomplete": "IP fragments never completed into a datagram (or SCTP chunks into a message)",
    "tcp-gap": "bytes missing from a TCP stream (not captured); decoding resumed after the gap",
    "tcp-overlap-conflict": "overlapping TCP segments carried different bytes; the first copy was kept",
    "tcp-unfinished": "a TCP stream ended in the middle of a message",
    "malformed-sip": "bytes on a SIP flow did not parse as a SIP message",
    "malformed-http": "bytes on an HTTP flow did not parse as an HTTP message",
    "malformed-floor-control": "an MC media-plane control packet (RTCP APP MCPT, MCPC, MCV0-3) is cut short "
                               "or a field overruns it; the fields before the damage are kept",
    "junk-before-message": "bytes before a SIP/HTTP start line were skipped",
    "sip-no-content-length": "SIP message over a stream without Content-Length",
    "malformed-websocket": "a WebSocket frame could not be decoded",
    "malformed-tls": "a TLS flow's ClientHello was missing, broken or incomplete; its server name is unknown",
    "unsupported-protocol": "a TCP flow switched to (or a WebSocket carried) a protocol other than SIP/HTTP; "
                            "those bytes were skipped",
    "malformed-body": "a message body (multipart or XML) could not be parsed",
    "xml-rejected": "an XML body was refused by the hardened parser (entities, DTD, size or depth)",
    "over-limit": "a packet, datagram or message went over one of the caps on what is decoded (--limit); "
                  "what lay beyond the cap was skipped",
    "table-full": "a bounded table (e.g. open publications) was full: its least recently used entries were "
                  "forgotten, and what later refers to them is read without them",
}

KEEP_PER_CODE = 200  # records kept of each code (all are counted)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One anomaly: what (code), a one-line explanation, and the Wireshark frame numbers involved."""

    code: str
    message: str
    frames: tuple[int, ...] = ()
    severity: str = "warning"

    def __post_init__(self):
        if self.code not in CODES:
            raise ValueError(f"unknown diagnostic code {self.code!r}")

    def as_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "frames": list(self.frames)}


@dataclass(slots=True)
class Diagnostics:
    """Collects diagnostics of one capture: all counted, the first ``keep`` per code retained."""

    keep: int = KEEP_PER_CODE
    counts: Counter = field(default_factory=Counter)
    records: list[Diagnostic] = field(default_factory=list)

    def add(self, code: str, message: str, frames=(), severity: str = "warning") -> None:
        self.counts[code] += 1
        if self.counts[code] <= self.keep:
            self.records.append(Diagnostic(code, message, tuple(frames), severity))

    def wants(self, code: str) -> bool:
        """Would a diagnostic of ``code`` be kept? If not, it is counted now: a caller on a hot path then
        skips formatting its message (a capture of a million broken packets formats 200 of them)."""
        if self.counts[code] < self.keep:
            return True
        self.counts[code] += 1
        return False

    def merge(self, counts: dict[str, int], records: list[Diagnostic]) -> None:
        """Take in what another collector (e.g. a worker process's) gathered, keeping the caps."""
        kept = Counter(d.code for d in self.records)
        for d in records:
            if kept[d.code] < self.keep:
                kept[d.code] += 1
                self.records.append(d)
        self.counts.update(counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))
