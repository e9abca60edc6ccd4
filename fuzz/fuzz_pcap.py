"""Harness: a whole capture file through the dpkt engine (pcap/pcapng/gzip reader, link layers, IP,
TCP/UDP/SCTP, framing, message parsing). The documented way a file fails is ``InputError``."""

from __future__ import annotations

import os
import tempfile

from fuzz import harness


def load():
    from analyzer.base.errors import InputError
    from analyzer.engines import DecodeOptions
    from analyzer.engines.dpkt_engine import decode

    fd, path = tempfile.mkstemp(prefix="mcxa-fuzz-", suffix=".pcap", dir=_scratch())
    os.close(fd)
    options = DecodeOptions(workers=1)

    def target(data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)
        try:
            decoded = decode(path, options)
        except InputError:
            return
        for _ in decoded.items:
            pass
        decoded.stats.stopped and decoded.stats.stopped.text()

    return target


def _scratch() -> str | None:
    """A memory-backed directory when there is one: the file is rewritten for every input."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


if __name__ == "__main__":
    harness.main(load)
