"""Harness: MC media-plane control (``analyzer.messages.floor``: RTCP APP MCPT/MCPC/MCV0-3, their fields)
and the demux's signature for it. Input: records, each a UDP payload between media ports; a tag with bit 0
set sends it through the demux (prefilter, then general path) as an Ethernet/IPv4/UDP frame, else it goes
to the decoder alone. A damaged packet is a problem line, never an exception."""

from __future__ import annotations

from fuzz import harness

_ETHERNET = bytes(12) + b"\x08\x00"


def frame(payload: bytes) -> bytes:
    """An Ethernet/IPv4/UDP frame, ports 40001 → 40003, carrying ``payload`` (no checksums)."""
    udp = b"\x9c\x41\x9c\x43" + (8 + len(payload)).to_bytes(2, "big") + b"\x00\x00" + payload
    total = 20 + len(udp)
    return (_ETHERNET + b"\x45\x00" + (total & 0xFFFF).to_bytes(2, "big")
            + b"\x00\x01\x00\x00\x40\x11\x00\x00" + bytes((10, 0, 0, 1, 10, 0, 0, 2)) + udp)


def load():
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.messages.floor import decode_control
    from analyzer.transport.demux import Demux
    from analyzer.transport.records import ControlPayload

    def target(data: bytes) -> None:
        demux = Demux(Diagnostics())
        packets = []
        for number, (tag, payload) in enumerate(harness.records(data, 64), 1):
            if tag & 1:
                raw = frame(payload)
                if demux.prefilter(raw, 0, len(raw), 1):
                    packets.append((number, float(number), 1, raw, len(raw)))
            else:
                decode_control(ControlPayload(payload, (number,), float(number), "a:1", "b:2"))
        for item in demux.run(packets):
            if isinstance(item, ControlPayload):
                for message in decode_control(item)[0]:
                    _ = message.ack_requested, message.get("user_id")

    return target


if __name__ == "__main__":
    harness.main(load)
