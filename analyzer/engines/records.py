"""What a decode gives, whatever the engine: its options, its running statistics (with the packet
accounting and where reading stopped) and the stream of records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.limits import Limits
from analyzer.messages.records import Message
from analyzer.transport.records import TlsHello

#: What became of each packet (``DecodeStats.accounting``); the counts add up to ``DecodeStats.packets``.
FATES: dict[str, str] = {
    "signalling": "carried SIP/HTTP message bytes or a TLS handshake, or belongs to a signalling flow "
                  "(its TCP handshake, acknowledgements, keep-alives)",
    "media": "UDP between ports above 1023 that starts like RTP/RTCP/SRTP version 2 (first byte 0x80-0xBF), "
             "dropped unread",
    "other": "not signalling: other protocols and flows (ARP, DNS, TCP flows that never carried SIP, HTTP "
             "or TLS, ...)",
    "diagnostic": "could not be decoded or followed (malformed header, unknown link type, compressed PPP, "
                  "fragments never completed, a message that did not parse ...): named by a diagnostic",
    "encrypted": "IPsec ESP the decoder could not open: encrypted with a key not given (--esp-sa) and not "
                 "NULL-encrypted; its SIP cannot be read (the report names the SPIs)",
    "unclassified": "tshark engine only: not shown by its signalling filter (media, other traffic, and the "
                    "segments of signalling flows that completed no message), not told apart",
}


@dataclass(frozen=True, slots=True)
class ReadStop:
    """Reading ended before the end of the file: the capture is incomplete from ``frame`` on."""

    code: str  # the diagnostic code: truncated-packet | bad-record | bad-compression | read-error
    frame: int  # the last frame read whole (0: none)
    offset: int | None  # byte offset where the damage starts (of the decompressed stream for gzip)
    reason: str  # one line, for people

    def text(self) -> str:
        at = f" at byte offset {self.offset}" if self.offset is not None else ""
        return f"reading stopped after frame {self.frame}{at}: {self.reason}"

    def as_dict(self) -> dict:
        return {"code": self.code, "after_frame": self.frame, "offset": self.offset, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict) -> ReadStop:
        """Back from ``as_dict`` (a report's ``reading``)."""
        return cls(d.get("code", "read-error"), d.get("after_frame", 0), d.get("offset"), d.get("reason", ""))


#: ``DecodeStats.tls_servers`` names at most this many servers; the ClientHellos of any further ones are
#: counted under ``OTHER_TLS_SERVERS``.
MAX_TLS_SERVERS = 256
OTHER_TLS_SERVERS = "(other servers)"


@dataclass(slots=True)
class DecodeStats:
    """What one decode saw, for the report's ``stats`` block and the progress line."""

    packets: int = 0
    sip_messages: int = 0
    http_messages: int = 0
    floor_messages: int = 0  # MC media-plane control messages (floor control, MCPC, MCVideo)
    tls_hellos: int = 0
    bytes_read: int = 0
    last_time: float | None = None  # capture time of the last packet in the file (read so far)
    #: fate (a key of ``FATES``) → packets; complete once the items are exhausted
    accounting: dict[str, int] = field(default_factory=dict)
    #: TLS server names (SNI, or the server address when there is none) → ClientHellos seen
    tls_servers: dict[str, int] = field(default_factory=dict)
    stopped: ReadStop | None = None  # set when reading ended before the end of the file
    tls_keylog: bool = False  # a TLS key log was used: the ClientHellos counted are those it did not open
    #: packets the capture file says its capture tool dropped (pcapng statistics), None when it says nothing
    capture_drops: int | None = None
    #: IPsec ESP packets not opened (``analyzer.transport.esp.EspReader.summary``), None when none
    esp: dict | None = None

    def count(self, item) -> None:
        if isinstance(item, TlsHello):
            self.tls_hellos += 1
            server = item.sni or item.dst
            if server in self.tls_servers or len(self.tls_servers) < MAX_TLS_SERVERS:
                self.tls_servers[server] = self.tls_servers.get(server, 0) + 1
            else:  # the table is bounded: later names are counted together
                self.tls_servers[OTHER_TLS_SERVERS] = self.tls_servers.get(OTHER_TLS_SERVERS, 0) + 1
        elif item.proto == "sip":  # (a Handled counts as the message it stands for)
            self.sip_messages += 1
        elif item.proto == "http":
            self.http_messages += 1
        else:  # media-plane control (``analyzer.messages.floor``)
            self.floor_messages += 1


@dataclass(frozen=True, slots=True)
class Handled:
    """A message the decoder's worker process gave to its ``WorkerShare`` instead of sending it on: only its
    capture time and protocol travel, so the clock and the counts downstream are those of every message."""

    time: float
    proto: str


class WorkerShare(Protocol):
    """Work of the consumer's that the decoder's worker process takes a share of (two cores balanced).

    Used only when the decode runs in a worker (``DecodeOptions.workers`` > 1 on a big capture): ``taken``
    then says so. In the worker, ``worker(items, packets)`` consumes the parsed items, keeps its share
    (yielding a ``Handled`` in the place of each) and yields the rest (``packets()``: packets read so far);
    once they are exhausted, ``result()`` returns what it made (picklable), which reaches ``take`` in the
    calling process before the decoded items end.
    """

    taken: bool

    def worker(self, items: Iterator, packets: Callable[[], int]) -> Iterator: ...

    def result(self) -> object: ...

    def take(self, result: object) -> None: ...


@dataclass(slots=True)
class DecodeOptions:
    """Knobs every engine accepts."""

    sip_ports: frozenset[int] = frozenset((5060, 5061))
    workers: int = 2  # processes for one capture: 2 runs the transport stage in a worker (Linux)
    progress: Callable[[DecodeStats], None] | None = None  # called now and then while reading
    tls_keylog: str | None = None  # NSS key log (SSLKEYLOGFILE) to decrypt TLS; the tshark engine only
    esp_sa: str | None = None  # YAML file of IPsec ESP SAs (``analyzer.transport.esp_sa``); dpkt engine only
    limits: Limits = DEFAULT_LIMITS  # caps on every table the decode keeps (``analyzer.base.limits``)
    parse_in_worker: bool = False  # with a worker: it parses the messages too (the consumer's work is heavy)
    #: path → binary file object to read instead of opening the path (``mcxa watch`` follows a capture
    #: still being written); dpkt engine only
    opener: Callable[[str], Any] | None = None
    share: WorkerShare | None = None  # with a worker that parses: its share of the consumer's work (dpkt)


@dataclass(slots=True)
class Decoded:
    """A decode in progress: iterate ``items``; ``stats`` and ``diagnostics`` fill as you go."""

    path: str
    items: Iterator[Message | TlsHello]
    stats: DecodeStats = field(default_factory=DecodeStats)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
