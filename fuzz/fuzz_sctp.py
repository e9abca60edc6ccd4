"""Harness: SCTP DATA chunk reassembly. Input: records, each an SCTP packet (common header and chunks);
the tag's low bits pick one of four associations. A malformed packet is reported, never raised."""

from __future__ import annotations

from fuzz import harness


def load():
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.transport.sctp import SctpAssembler

    def target(data: bytes) -> None:
        assembler = SctpAssembler(Diagnostics())
        for frame, (tag, packet) in enumerate(harness.records(data), 1):
            assembler.messages(("a", "b", 5060, tag & 3), packet, frame)

    return target


if __name__ == "__main__":
    harness.main(load)
