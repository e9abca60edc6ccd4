"""The whole-capture mutator: seed captures mutated packet by packet, re-packed as valid pcap/pcapng, and run
through everything ``mcxa analyze`` does (decode, events, sessions, judge, report, text/JSON/JUnit/HTML with
ladders; the messages, events and sessions renderers too), in process.

    python -m fuzz.capture_mutator --seed 1 --runs 1000 [--findings PREFIX] [--stats FILE]

A seeded loop of its own (deterministic for a seed), not libFuzzer: a mutation must keep the capture
well-formed below the layer it damages, which byte-level mutation of a whole file rarely does. Most
mutations change the SIP/HTTP/XML payload of one packet (``mutations``), with IP/UDP lengths, checksums
and the sequence numbers of the TCP segments after it fixed up; others drop, duplicate, reorder, split or
fragment packets, cut them short, make a segment's two ends the same (LAND), move timestamps, change link
types, and pick the file format, timestamp resolution and offset. The stats count how many mutated
captures still yield messages, events and procedures: the proof that mutations reach the deep stages.

Any exception but the documented ``InputError`` is a crash, an input running longer than ``--timeout``
seconds a hang, the process growing past ``--rss-limit-mb`` a memory blow-up; each is saved under the
findings prefix (``crash-SHA1.pcapng`` and a ``.txt`` with the traceback).

``--split`` also judges each mutated capture the way a big one is judged on two cores (a forked decoder
whose worker collects the facts of a share of the calls, ``analyzer.meaning.events.shard``, forced on
whatever the size and density; the facts kept compressed in chunks of two, ``factstore``), streamed as
``analyze --format json`` streams it (the events packed in runs of two, the sessions judged as they are
whole, the procedures packed in runs of two, ``base.runs``; every packed run on disk, ``base.spill``) and
compares the capture's report with the one-process, listed report: any difference is a finding
(``differs-SHA1``, the first differing field in the ``.txt``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import traceback

from fuzz import FINDINGS
from fuzz.mutations import header_values, mutate_message
from fuzz.packets import TCP, UDP, Frame, layers, pcap_bytes, pcapng_bytes, rebuild
from fuzz.seeds import capture_files

MAX_FRAMES = 300  # frames kept of each seed capture: the first ones hold the procedures
SAVED_PER_SIGNATURE = 3  # findings kept per distinct traceback end (all are counted)


class Differs(Exception):
    """The two-process judgement of a capture differs from the one-process judgement."""


class Hang(BaseException):
    """Raised by the alarm in the middle of a slow input (a BaseException, so no handler swallows it)."""


class Seed:
    """One seed capture: its frames, and its messages' header values (donors for mutations)."""

    def __init__(self, path: str):
        from fuzz.packets import read_capture

        self.path = path
        self.frames = read_capture(path)[:MAX_FRAMES]
        payloads = [f.data[lay.payload:lay.end] for f in self.frames
                    if (lay := layers(f)) and lay.proto != 132 and lay.end > lay.payload]
        messages = [p for p in payloads if p[:1].isupper()]
        self.donors = header_values(messages)
        self.bodies = [m.partition(b"\r\n\r\n")[2] for m in messages if b"\r\n\r\n<" in m]


class Pipeline:
    """Everything ``mcxa analyze`` and the listing commands do with one capture, output thrown away."""

    def __init__(self):
        from analyzer.rules import load_rules

        self.rules = load_rules()
        fd, self.path = tempfile.mkstemp(prefix="mcxa-capture-", suffix=".pcapng",
                                         dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
        os.close(fd)

    def run_file(self, data: bytes, split: bool = False) -> tuple[int, int, int]:
        with open(self.path, "wb") as f:
            f.write(data)
        return self.run(self.path, split)

    def run(self, path: str, split: bool = False) -> tuple[int, int, int]:
        """Messages, events and procedures found; ``InputError`` (a file that is no capture) gives zeros.
        ``split``: raise ``Differs`` if the two-process judgement differs."""
        from analyzer.base.errors import InputError
        from analyzer.engines import DecodeOptions
        from analyzer.meaning.analysis import MeaningOptions, analyse_capture
        from analyzer.report import document as report
        from analyzer.report import events, junit, ladder_batch, messages, sessions
        from analyzer.report.accounting import summary_lines
        from analyzer.report.html import write_html
        from analyzer.report.text import write_text
        from analyzer.rules.judge import judge

        options = DecodeOptions(workers=1)
        try:
            analysis = analyse_capture(path, "dpkt", options, MeaningOptions(keep_messages=True))
        except InputError:
            return 0, 0, 0
        part = report.capture_report(analysis, judge(analysis, self.rules))
        doc = report.report([part], self.rules)
        sink = io.StringIO()
        write_text(doc, sink)
        json.dumps(doc, ensure_ascii=False)
        junit.write_junit(doc, sink)
        drawn = ladder_batch.capture_ladders(analysis, part["procedures"], "dpkt", options)
        write_html(doc, sink, ladders={path: drawn}, mode="all")
        report.exit_code(doc)
        found = [m for m in analysis.messages or () if hasattr(m, "proto")]
        messages.write_jsonl(found, sink)
        events.write_table(analysis, sink, lambda row: True)
        sessions.write_text(analysis, sink)
        summary_lines(analysis.stats)
        if split:
            _compare(part, self._split_part(path))
        return len(found), len(analysis.events), len(part["procedures"])

    def _split_part(self, path: str) -> dict:
        from functools import partial

        from analyzer.base import spill
        from analyzer.base.runs import SortedRuns
        from analyzer.engines import DecodeOptions, dpkt_engine
        from analyzer.meaning.analysis import MeaningOptions, analyse_capture
        from analyzer.meaning.events import extract, factstore, shard
        from analyzer.report import document as report

        knobs = ((dpkt_engine, "PARALLEL_MIN_BYTES", 0), (shard, "DECIDE_AFTER", 1),
                 (shard, "DENSE", 1 << 62), (factstore, "CHUNK", 2), (factstore, "HOLD", 0),
                 (extract, "EVENT_RUN", 2), (extract, "EVENT_HOLD", 0), (report, "PROCEDURES_HELD", 0),
                 (report, "SortedRuns", partial(SortedRuns, size=2)), (spill, "SPILL_AFTER", 0))
        saved = [getattr(module, name) for module, name, _ in knobs]
        for module, name, value in knobs:
            setattr(module, name, value)
        try:
            analysis = analyse_capture(path, "dpkt", DecodeOptions(workers=2), MeaningOptions(streamed=True))
            return report.capture_report(analysis, report.Procedures(analysis, self.rules))
        finally:
            for (module, name, _), value in zip(knobs, saved, strict=True):
                setattr(module, name, value)


def _compare(alone: dict, split: dict, where: str = "capture") -> None:
    """Raise ``Differs`` naming the first field where the reports differ (timings aside)."""
    if isinstance(alone, dict) and isinstance(split, dict):
        for key in sorted(set(alone) | set(split), key=str):
            if key not in ("timing", "seconds"):
                _compare(alone.get(key), split.get(key), f"{where}.{key}")
    elif isinstance(alone, list) and isinstance(split, list) and len(alone) == len(split):
        for i, (a, b) in enumerate(zip(alone, split, strict=True)):
            _compare(a, b, f"{where}[{i}]")
    elif alone != split:
        raise Differs(f"{where}: one process {str(alone)[:300]!r}, two {str(split)[:300]!r}")


# -- mutations of a whole capture -------------------------------------------------------------------------

def mutate(rng: random.Random, seed: Seed) -> bytes:
    """A mutated copy of ``seed``, as the bytes of a pcap or pcapng file."""
    frames = list(seed.frames)
    for _ in range(1 + (rng.random() < 0.4) + (rng.random() < 0.15)):
        if frames:
            rng.choices(_OPS, _WEIGHTS)[0](rng, frames, seed)
    return _write(rng, frames)


def _payload(rng: random.Random, frames: list[Frame], seed: Seed) -> None:
    """Mutate one packet's SIP/HTTP payload; later segments of its TCP direction move with its length."""
    candidates = [i for i, f in enumerate(frames) if (lay := layers(f)) and lay.proto in (UDP, TCP)
                  and lay.end > lay.payload]
    if not candidates:
        return
    i = rng.choice(candidates)
    frame = frames[i]
    lay = layers(frame)
    old = frame.data[lay.payload:lay.end]
    new = mutate_message(rng, old, seed.donors, seed.bodies)[:65000]
    frames[i] = rebuild(frame, lay, new)
    if lay.proto == TCP and len(new) != len(old):
        _shift(frames, i, lay.flow(frame.data), len(new) - len(old))


def _shift(frames: list[Frame], after: int, flow: bytes, delta: int) -> None:
    for j in range(after + 1, len(frames)):
        lay = layers(frames[j])
        if lay and lay.proto == TCP and lay.flow(frames[j].data) == flow:
            d = frames[j].data
            frames[j] = rebuild(frames[j], lay, d[lay.payload:lay.end],
                                int.from_bytes(d[lay.l4 + 4:lay.l4 + 8], "big") + delta)


def _packets(rng: random.Random, frames: list[Frame], seed: Seed) -> None:
    """Drop, duplicate (a retransmission), swap, or flood with copies."""
    i = rng.randrange(len(frames))
    kind = rng.randrange(5)
    if kind == 0:
        del frames[i]
    elif kind == 1:
        frames.insert(rng.randrange(i, len(frames) + 1), frames[i])
    elif kind == 2:
        j = rng.randrange(len(frames))
        frames[i], frames[j] = frames[j], frames[i]
    elif kind == 3:
        frames[i:i + 1] = [frames[i]] * rng.choice((10, 200, 2000))
    else:
        frames[i:] = frames[i:][::-1]


def _cut(rng: random.Random, frames: list[Frame], seed: Seed) -> None:
    """A packet cut by the snap length (captured bytes < length on the wire)."""
    i = rng.randrange(len(frames))
    f = frames[i]
    frames[i] = f._replace(data=f.data[:rng.randrange(len(f.data) + 1)])


def _split(rng: random.Random, frames: list[Frame], seed: Seed) -> None:
    """A TCP segment sent as two (or a UDP datagram as IPv4 fragments)."""
    candidates = [i for i, f in enumerate(frames) if (lay := layers(f)) and lay.end - lay.payload > 1]
    if not candidates:
        return
    i = rng.choice(candidates)
    f = frames[i]
    lay = layers(f)
    data = f.data[lay.payload:lay.end]
    if lay.proto == TCP:
        cut = rng.randrange(1, len(data))
        seq = int.from_bytes(f.data[lay.l4 + 4:lay.l4 + 8], "big")
        first, second = rebuild(f, lay, data[:cut]), rebuild(f, lay, data[cut:], seq + cut)
        frames[i:i + 1] = [second, first] if rng.random() < 0.3 else [first, second]
    elif lay.proto == UDP and lay.version == 4:
        frames[i:i + 1] = _fragments(rng, f, lay)


def _fragments(rng: random.Random, f: Frame, lay) -> list[Frame]:
    from fuzz.packets import checksum

    d = f.data
    header, datagram = bytearray(d[lay.ip:lay.l4]), d[lay.l4:lay.end]
    size = 8 * rng.choice((1, 8, 64, 180))
    out = []
    for off in range(0, len(datagram), size):
        piece = datagram[off:off + size]
        h = bytearray(header)
        h[2:4] = (len(h) + len(piece)).to_bytes(2, "big")
        h[6:8] = ((0x2000 if off + size < len(datagram) else 0) | off // 8).to_bytes(2, "big")
        h[10:12] = b"\0\0"
        h[10:12] = checksum(bytes(h)).to_bytes(2, "big")
        data = d[:lay.ip] + bytes(h) + piece
        out.append(Frame(f.time, f.linktype, data, len(data)))
    if rng.random() < 0.3:
        rng.shuffle(out)
    if rng.random() < 0.1:
        del out[rng.randrange(len(out))]
    return out


def _headers(rng: random.Random, frames: list[Frame], seed: Seed) -> None:
    """Damage below the payload: a header byte, LAND (source = destination), a link type."""
    i = rng.randrange(len(frames))
    f = frames[i]
    lay = layers(f)
    kind = rng.randrange(3)
    if kind == 0 and lay:
        d = bytearray(f.data)
        at = rng.randrange(lay.payload)
        d[at] = rng.randrange(256)
        frames[i] = f._replace(data=bytes(d))
    elif kind == 1 and lay and lay.proto in (UDP, TCP):
        d = bytearray(f.data)
        size = 4 if lay.version == 4 else 16
        src = lay.ip + (12 if lay.version == 4 else 8)
        d[src + size:src + 2 * size] = d[src:src + size]
        d[lay.l4 + 2:lay.l4 + 4] = d[lay.l4:lay.l4 + 2]
        frame = f._replace(data=bytes(d))
        frames[i] = rebuild(frame, lay, frame.data[lay.payload:lay.end])
    else:
        frames[i] = f._replace(linktype=rng.choice((0, 1, 9, 12, 101, 108, 113, 228, 229, 239, 276, 147,
                                                    rng.randrange(300))))


def _times(rng: random.Random, frames: list[Frame], seed: Seed) -> None:
    """Timestamps out of order, all equal, far in the past or future, or jumping past the idle timeouts."""
    i = rng.randrange(len(frames))
    kind = rng.randrange(4)
    if kind == 0:
        frames[i] = frames[i]._replace(time=rng.choice((0.0, 1.0, 4e9, 1e11, frames[i].time - 3600)))
    elif kind == 1:
        frames[i:] = [f._replace(time=f.time + rng.choice((-100.0, 130.0, 86400.0))) for f in frames[i:]]
    elif kind == 2:
        frames[:] = [f._replace(time=frames[0].time) for f in frames]
    else:
        frames[i], frames[-1] = frames[-1], frames[i]


def _write(rng: random.Random, frames: list[Frame]) -> bytes:
    frames = [f._replace(orig_len=max(f.orig_len, len(f.data))) for f in frames]
    if rng.random() < 0.35 and len({f.linktype for f in frames}) <= 1:
        return pcap_bytes(frames, nanos=rng.random() < 0.3, big=rng.random() < 0.2)
    tsresol = rng.choice((6,) * 12 + (9, 3, 0, 0x80 | 20, 0x80 | 63, 19, 0x7F, 0xFF))
    tsoffset = rng.choice((0,) * 12 + (-1_700_000_000, 1 << 40, (1 << 63) - 1, -(1 << 63)))
    return pcapng_bytes(frames, tsresol, tsoffset, big=rng.random() < 0.2)


_OPS = (_payload, _packets, _cut, _split, _headers, _times)
_WEIGHTS = (70, 8, 3, 8, 6, 5)


# -- the loop -----------------------------------------------------------------------------------------------

class Loop:
    """Mutate, run, count; findings saved under ``prefix``; hangs and memory watched."""

    def __init__(self, seed: int, prefix: str, timeout: float, rss_limit_mb: int, stats_path: str | None,
                 split: bool = False):
        self.rng = random.Random(seed)
        self.split = split
        self.prefix = prefix
        self.timeout = timeout
        self.rss_limit = rss_limit_mb << 20
        self.stats_path = stats_path
        self.seeds = [Seed(p) for p in capture_files()]
        self.pipeline = Pipeline()
        self.stats = {"executions": 0, "seconds": 0.0, "crashes": 0, "hangs": 0, "ooms": 0, "differs": 0,
                      "reached": {"messages": 0, "events": 0, "procedures": 0}}
        self.signatures: dict[str, int] = {}
        self.current: bytes | None = None
        self.started_at = 0.0

    def run(self, runs: int | None, seconds: float | None) -> dict:
        signal.signal(signal.SIGALRM, self._alarm)
        threading.Thread(target=self._watch, daemon=True).start()
        begin = time.monotonic()
        try:
            while (runs is None or self.stats["executions"] < runs) and \
                    (seconds is None or time.monotonic() - begin < seconds):
                self.one(mutate(self.rng, self.rng.choice(self.seeds)))
                if self.stats["executions"] % 500 == 0:
                    self.stats["seconds"] = time.monotonic() - begin
                    self.save_stats()
        except KeyboardInterrupt:  # the runner stops a campaign: keep what was done
            pass
        self.stats["seconds"] = time.monotonic() - begin
        self.save_stats()
        return self.stats

    def one(self, data: bytes) -> None:
        self.current, self.started_at = data, time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            reached = self.pipeline.run_file(data, self.split)
        except Differs:
            self.finding("differs", data, traceback.format_exc())
            reached = (0, 0, 0)
        except Hang:
            self.finding("timeout", data, f"input ran longer than {self.timeout} s\n{traceback.format_exc()}")
            reached = (0, 0, 0)
        except Exception:
            self.finding("crash", data, traceback.format_exc())
            reached = (0, 0, 0)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.current = None
        self.stats["executions"] += 1
        for stage, n in zip(("messages", "events", "procedures"), reached, strict=True):
            self.stats["reached"][stage] += n > 0

    def finding(self, kind: str, data: bytes, text: str) -> None:
        self.stats[{"crash": "crashes", "timeout": "hangs", "oom": "ooms", "differs": "differs"}[kind]] += 1
        lines = text.strip().splitlines()
        signature = f"{kind}:{lines[-1][:200] if lines else ''}:{lines[-3] if len(lines) > 2 else ''}"
        self.signatures[signature] = self.signatures.get(signature, 0) + 1
        if self.signatures[signature] > SAVED_PER_SIGNATURE:
            return
        suffix = ".pcapng" if data[:4] == b"\x0a\x0d\x0d\x0a" else ".pcap"
        path = f"{self.prefix}{kind}-{hashlib.sha1(data).hexdigest()}{suffix}"
        with open(path, "wb") as f:
            f.write(data)
        with open(path + ".txt", "w") as f:
            f.write(text)
        print(f"capture: {kind}: {path}: {lines[-1] if lines else ''}", file=sys.stderr, flush=True)

    def save_stats(self) -> None:
        if self.stats_path:
            with open(self.stats_path, "w") as f:
                json.dump(self.stats, f)

    def _alarm(self, signum, frame) -> None:
        raise Hang()

    def _watch(self) -> None:
        """Memory and stuck-in-C watchdog: save the input, then end the process (the runner restarts)."""
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            time.sleep(0.25)
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page
            data = self.current
            if data is None:
                continue
            if rss > self.rss_limit:
                kind, why = "oom", f"resident memory {rss >> 20} MB exceeds {self.rss_limit >> 20} MB"
            elif time.monotonic() - self.started_at > 3 * self.timeout:
                kind, why = "timeout", f"input ran longer than {3 * self.timeout} s (stuck outside Python)"
            else:
                continue
            self.finding(kind, data, why)
            self.stats["executions"] += 1
            self.save_stats()
            os._exit(3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.capture_mutator",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=int)
    budget.add_argument("--seconds", type=float)
    parser.add_argument("--findings", default=os.path.join(FINDINGS, "capture", ""),
                        help="path prefix of saved findings")
    parser.add_argument("--stats", help="write the counts here as JSON")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--rss-limit-mb", type=int, default=1024)
    parser.add_argument("--split", action="store_true",
                        help="also judge on two processes and report any difference (see above)")
    args = parser.parse_args(argv)
    os.makedirs(os.path.dirname(args.findings) or ".", exist_ok=True)
    runs = args.runs if args.runs is not None or args.seconds is not None else 1000
    loop = Loop(args.seed, args.findings, args.timeout, args.rss_limit_mb, args.stats, args.split)
    stats = loop.run(runs, args.seconds)
    print(json.dumps(stats))
    return 1 if stats["crashes"] or stats["hangs"] or stats["ooms"] or stats["differs"] else 0


if __name__ == "__main__":
    sys.exit(main())
