#!/usr/bin/env python3
"""Memory and time of `mcxa events` on captures shaped to grow the meaning stages' tables (issue 14).

Writes one pcap per hostile shape under bench/out/ (SIP over UDP, every packet at one capture time unless
the shape needs timers to stay armed anyway), then runs `mcxa events FILE --format jsonl` on each with the
default limits and prints packets, wall time, peak RSS and the `table-full` lines it reported:

* unanswered — a request on a new Call-ID that nobody answers (one packet per Call-ID);
* ringing — an INVITE answered with 180 only (Timer C would keep it 180 s);
* no-bye — INVITE, 200, ACK: a dialog nobody ends;
* challenged — REGISTER answered 401, never retried;
* notify-storm — one subscription whose NOTIFYs (and their 200s) never stop.

    python bench/bench_meaning_bounds.py [--steps 1000000] [--shape unanswered ...] [--limit NAME=N ...]
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
UE, SERVER = ("10.0.0.1", 5060), ("10.0.0.2", 5060)


def _sip(start: str, call_id: str, cseq: str, branch: str, sent_by: tuple, to_tag: str | None = None,
         from_tag: str = "ft") -> bytes:
    to = "<sip:bob@mcx.example>" + (f";tag={to_tag}" if to_tag else "")
    lines = [start, f"Via: SIP/2.0/UDP {sent_by[0]}:{sent_by[1]};branch=z9hG4bK-{branch}",
             f"From: <sip:alice@mcx.example>;tag={from_tag}", f"To: {to}", f"Call-ID: {call_id}",
             f"CSeq: {cseq}", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _req(method: str, i: int, cseq: int = 1, **kw) -> tuple[tuple, tuple, bytes]:
    src, dst = kw.pop("src", UE), kw.pop("dst", SERVER)
    call_id = kw.pop("call_id", f"{method.lower()}-{i}")
    return src, dst, _sip(f"{method} sip:bob@mcx.example SIP/2.0", call_id, f"{cseq} {method}",
                          kw.pop("branch", f"{method}{i}"), src, **kw)


def _resp(status: int, method: str, i: int, cseq: int = 1, **kw) -> tuple[tuple, tuple, bytes]:
    src, dst = kw.pop("src", SERVER), kw.pop("dst", UE)
    call_id = kw.pop("call_id", f"{method.lower()}-{i}")
    return src, dst, _sip(f"SIP/2.0 {status} Whatever", call_id, f"{cseq} {method}",
                          kw.pop("branch", f"{method}{i}"), dst, to_tag=kw.pop("to_tag", "tt"), **kw)


SHAPES: dict[str, Callable[[int], list]] = {
    "unanswered": lambda i: [_req("OPTIONS", i)],
    "ringing": lambda i: [_req("INVITE", i), _resp(180, "INVITE", i)],
    "no-bye": lambda i: [_req("INVITE", i), _resp(200, "INVITE", i),
                         _req("ACK", i, call_id=f"invite-{i}", branch=f"ACK{i}", to_tag="tt")],
    "challenged": lambda i: [_req("REGISTER", i), _resp(401, "REGISTER", i)],
    "notify-storm": lambda i: [
        *([_req("SUBSCRIBE", 0, call_id="s"), _resp(200, "SUBSCRIBE", 0, call_id="s")] if i == 0 else []),
        _req("NOTIFY", i, i + 1, call_id="s", src=SERVER, dst=UE, from_tag="tt", to_tag="ft"),
        _resp(200, "NOTIFY", i, i + 1, call_id="s", src=UE, dst=SERVER, from_tag="tt", to_tag="ft")],
}


def _frame(src: tuple, dst: tuple, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    addresses = (bytes(map(int, src[0].split("."))), bytes(map(int, dst[0].split("."))))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, *addresses) + udp
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip


def _packets(shape: str, steps: int) -> Iterator[bytes]:
    for i in range(steps):
        for src, dst, payload in SHAPES[shape](i):
            yield _frame(src, dst, payload)


def write_capture(shape: str, steps: int) -> tuple[Path, int]:
    path = OUT / f"meaning-{shape}-{steps}.pcap"
    count_path = path.with_suffix(".count")
    if path.exists() and count_path.exists():
        return path, int(count_path.read_text())
    OUT.mkdir(exist_ok=True)
    count = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for frame in _packets(shape, steps):  # all at one time: no timer fires, only the caps bound tables
            f.write(struct.pack("<IIII", 1_700_000_000, 0, len(frame), len(frame)) + frame)
            count += 1
    count_path.write_text(str(count))
    return path, count


def run(path: Path, limits: list[str]) -> tuple[float, float, list[str]]:
    cmd = [sys.executable, "-m", "analyzer", "events", str(path), "--format", "jsonl",
           *(a for pair in limits for a in ("--limit", pair))]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1, 3):
        sys.exit(f"bench: {' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}: {err.strip()}")
    return wall, usage.ru_maxrss / 1024, [line.strip() for line in err.splitlines() if "[table-full]" in line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="repetitions of each shape")
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES), help="only these (repeatable)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=N", help="passed to mcxa")
    args = parser.parse_args()
    print(f"{'shape':14} {'packets':>10} {'wall s':>8} {'peak RSS MiB':>13}  table-full")
    for shape in args.shape or list(SHAPES):
        path, packets = write_capture(shape, args.steps)
        wall, rss, full = run(path, args.limit)
        print(f"{shape:14} {packets:>10,} {wall:>8.1f} {rss:>13.0f}  {full[0] if full else '-'}")
        for line in full[1:]:
            print(f"{'':48}{line}")


if __name__ == "__main__":
    main()
