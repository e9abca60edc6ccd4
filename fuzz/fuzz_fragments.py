"""Harness: IP fragment reassembly. Input: records (``harness.records``), each an IPv4 or IPv6 packet;
the tag advances the capture clock by tag/8 seconds, so fragments also expire."""

from __future__ import annotations

from fuzz import harness


def load():
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.transport.ip import BadIp, FragmentReassembler, parse_ip

    def target(data: bytes) -> None:
        reassembler = FragmentReassembler(Diagnostics())
        time = 0.0
        for frame, (tag, packet) in enumerate(harness.records(data), 1):
            time += tag / 8
            if not packet:
                continue
            try:
                pkt = parse_ip(packet[0] >> 4 if packet[0] >> 4 == 6 else 4, packet, 0)
            except BadIp:
                continue
            if pkt.frag_id is not None:
                reassembler.add(pkt, frame, time)
        reassembler.close()

    return target


if __name__ == "__main__":
    harness.main(load)
