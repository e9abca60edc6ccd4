"""Capturing live through a capture tool: ``dumpcap`` (preferred) or ``tcpdump`` as a subprocess writing the
capture to a pipe mcxa reads (``follow.FollowedPipe``); mcxa never opens a raw socket itself.

The tool runs in its own process group, so a Ctrl-C at the terminal reaches mcxa only: mcxa stops the
tool (SIGINT, as a user would), reads what it flushed up to the pipe's end, and then the packets the tool
says it dropped (its statistics on stderr, parsed by ``dropped``) go into the report.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading

from analyzer.base.errors import InputError

TOOLS = ("dumpcap", "tcpdump")
#: Lines of the tool's stderr kept (its statistics come last; a long capture may print more).
STDERR_LINES = 200
#: Seconds the tool is watched after it says it captures: a bad interface or filter ends it in that time.
START_CHECK = 0.5
#: Seconds the tool is given to exit after SIGINT, then after SIGTERM, before it is killed.
STOP_WAIT = 5.0


def find_tool(choice: str = "auto") -> str:
    """The capture tool to run: ``choice`` (dumpcap, tcpdump), or the first of them installed (auto)."""
    for name in (TOOLS if choice == "auto" else (choice,)):
        if shutil.which(name):
            return name
    wanted = "dumpcap or tcpdump" if choice == "auto" else choice
    raise InputError(f"{wanted} is not installed (apt install tshark, or tcpdump): mcxa captures through it",
                     where="mcxa watch -i")


def command(tool: str, interface: str, bpf: str | None, snaplen: int = 0) -> list[str]:
    """The command line that captures on ``interface`` with the BPF filter ``bpf`` into standard output."""
    if tool == "dumpcap":
        cmd = ["dumpcap", "-q", "-i", interface, "-w", "-", "-n"]  # -q: no running count, statistics at exit
        if snaplen:
            cmd += ["-s", str(snaplen)]
        return cmd + (["-f", bpf] if bpf else [])
    cmd = ["tcpdump", "-i", interface, "-U", "-w", "-", "-s", str(snaplen)]
    return cmd + ([bpf] if bpf else [])


class LiveCapture:
    """A capture tool running: ``fd`` is the pipe of its capture; ``stop`` ends it; ``close`` waits for it
    and gives its last words (stderr lines)."""

    def __init__(self, tool: str, interface: str, bpf: str | None, snaplen: int = 0):
        self.tool = tool
        self.interface = interface
        self.args = command(tool, interface, bpf, snaplen)
        try:
            self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise InputError(f"cannot run {tool}: {exc.strerror or exc}", where="mcxa watch -i") from None
        self.fd = self.process.stdout.fileno()
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.started = threading.Event()  # the tool said it captures (or it ended: see ``failure``)
        self._ending: threading.Thread | None = None  # stops the tool harder if SIGINT does not
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        """Keep the tool's last lines (split at CR too: running counts rewrite one line); bounded."""
        fd, partial = self.process.stderr.fileno(), b""
        while chunk := os.read(fd, 4096):
            *lines, partial = re.split(rb"[\r\n]", partial + chunk)
            partial = partial[-4096:]
            for line in lines:
                if line.strip():
                    self.stderr.append(line.decode("utf-8", "replace"))
                    if _STARTED.match(line):
                        self.started.set()
        if partial.strip():
            self.stderr.append(partial.decode("utf-8", "replace"))
        self.started.set()  # the tool has ended: waiting for it to start is over

    def wait_started(self, seconds: float = STOP_WAIT * 2) -> str | None:
        """Wait until the tool captures; None then, else why it does not (it ended, or said nothing)."""
        self.started.wait(seconds)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a bad interface or filter is said just after
            self.process.wait(START_CHECK)
        if self.process.poll() is not None:
            self.process.wait()
            self._reader.join(STOP_WAIT)
            return self.failure() or f"{self.tool} ended before capturing"
        return None

    def stop(self) -> None:
        """Ask the tool to end (it flushes and closes the pipe, which ends the reading); safe from a signal
        handler, and twice. A tool that does not end is stopped harder (``_end``), so reading never hangs."""
        if self._ending is None and self.process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGINT)
            self._ending = threading.Thread(target=self._end, daemon=True)
            self._ending.start()

    def _end(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                self.process.wait(STOP_WAIT)
                return
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self.process.pid, sig)

    def close(self) -> int | None:
        """Stop the tool if it still runs and wait for it to end; its exit status."""
        self.stop()
        if self._ending is not None:
            self._ending.join()
        self.process.wait()
        self._reader.join(STOP_WAIT)
        self.process.stdout.close()
        self.process.stderr.close()
        return self.process.returncode

    def failure(self) -> str | None:
        """Why the tool could not capture, when it ended in error (its own words), else None."""
        code = self.process.returncode
        if code in (None, 0) or code < 0:  # stopped by our signal: not a failure
            return None
        said = [line.strip() for line in self.stderr if line.strip() and not _STATS.search(line)
                and not _STARTED.match(line.encode())]
        own = [line.removeprefix(f"{self.tool}: ") for line in said if line.startswith(f"{self.tool}: ")]
        why = (own or said or [""])[0]
        return f"{self.tool} exited with status {code}" + (f": {why}" if why else "")


#: What the tools say once they capture: dumpcap "Capturing on 'Loopback: lo'", tcpdump "listening on lo".
_STARTED = re.compile(rb"(Capturing on|\S+: listening on) ")
#: dumpcap: "Packets received/dropped on interface 'lo': 10/0 (pcap:0/dumpcap:0/flushed:0/ps_ifdrop:0)";
#: tcpdump: "3 packets dropped by kernel" (and "... dropped by interface").
_DUMPCAP_DROPS = re.compile(r"Packets received/dropped on interface '[^']*': (\d+)/(\d+)")
_DUMPCAP_PARTS = re.compile(r"\((pcap:\d+(?:/\w+:\d+)*)\)")
_TCPDUMP = re.compile(r"^(\d+) packets? (captured|received by filter|dropped by kernel|dropped by interface)")
_STATS = re.compile(r"Packets (captured|received)|packets? (captured|received|dropped)")


def dropped(tool: str, lines) -> dict | None:
    """The tool's packet statistics from its stderr lines: ``{"received": N, "dropped": N, "detail": ...}``
    (None when it printed none, e.g. killed). dumpcap's dropped count includes its own and the kernel's
    (``ps_ifdrop``) losses; tcpdump's, the kernel's and the interface's."""
    if tool == "dumpcap":
        for line in reversed(list(lines)):
            m = _DUMPCAP_DROPS.search(line)
            if m:
                parts = _DUMPCAP_PARTS.search(line)
                counts = dict(p.split(":") for p in parts.group(1).split("/")) if parts else {}
                total = int(m.group(2)) + int(counts.get("dumpcap", 0)) + int(counts.get("ps_ifdrop", 0))
                return {"received": int(m.group(1)), "dropped": total, "detail": line.strip()}
        return None
    found: dict[str, int] = {}
    for line in lines:
        m = _TCPDUMP.match(line.strip())
        if m:
            found[m.group(2)] = int(m.group(1))
    if not found:
        return None
    drops = found.get("dropped by kernel", 0) + found.get("dropped by interface", 0)
    return {"received": found.get("received by filter", found.get("captured", 0)), "dropped": drops,
            "detail": "; ".join(f"{n} {what}" for what, n in found.items())}
