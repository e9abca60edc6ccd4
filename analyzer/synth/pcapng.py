"""The capture file ``mcxa synth`` writes: Ethernet frames as pcapng (the writer is the capture package's,
shared with ``mcxa flow --pcap``)."""

from __future__ import annotations

from analyzer.capture.writer import pcapng_bytes

__all__ = ["pcapng_bytes"]
