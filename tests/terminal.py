"""Run ``mcxa`` on a real pseudo-terminal of a given size, as a person at a terminal sees it (colour, width,
progress and all), for the tests of what fits and what is coloured."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ANSI control sequences (SGR colours, cursor moves and erasures of a transient progress line).
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_on_terminal(args: list[str], columns: int, env: dict | None = None, lines: int = 50,
                    stderr_too: bool = True, prelude: str | None = None) -> tuple[int, str]:
    """``mcxa ARGS`` with stdout (and stderr) on a pty ``columns`` wide; its exit code and raw output
    (ANSI sequences kept, ``\\r\\n`` made ``\\n``). COLUMNS and NO_COLOR are unset unless ``env`` sets
    them. ``prelude``: Python run first in the same process (e.g. to show the progress line at once)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    program = f"{prelude}\nimport sys\nfrom analyzer.cli import main\nsys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-m", "analyzer"] if prelude is None else [sys.executable, "-c", program]
    proc = subprocess.Popen([*command, *args], cwd=ROOT, stdin=slave, stdout=slave,
                            stderr=slave if stderr_too else subprocess.DEVNULL,
                            env={**base, "TERM": "xterm-256color", **(env or {})}, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=120)
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def plain(text: str) -> str:
    """What the terminal shows: ``text`` without its ANSI sequences."""
    return ANSI.sub("", text)
