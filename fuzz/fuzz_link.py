"""Harness: link-layer decoders (every LINKTYPE in LINK_DECODERS), the tunnels (GRE, GTP-U), Wireshark's
exported PDU tags and the IP header parser. Input: one selector byte (which decoder), then the frame."""

from __future__ import annotations

from fuzz import harness


def load():
    from analyzer.capture.link import LINK_DECODERS, BadFrame, CannotFollow
    from analyzer.capture.upper_pdu import exported_pdu
    from analyzer.transport.ip import BadIp, parse_ip
    from analyzer.transport.tunnels import gre, gtpu

    decoders = [LINK_DECODERS[k] for k in sorted(LINK_DECODERS)]
    tunnels = [gre, gtpu, exported_pdu]  # an exported PDU's first field is its dissector, never "ip"

    def target(data: bytes) -> None:
        if not data:
            return
        pick, frame = data[0], data[1:]
        try:
            if pick < len(decoders):
                found = decoders[pick](frame)
                if found is not None:
                    parse_ip(found[0], frame, found[1])
            elif pick - len(decoders) < len(tunnels):
                inner = tunnels[pick - len(decoders)](frame)
                if inner is not None and inner[0] == "ip":
                    parse_ip(inner[1], inner[2], 0)
        except (BadFrame, CannotFollow, BadIp):
            pass

    return target


def selector(linktype: int) -> int | None:
    """The selector byte that picks ``linktype``'s decoder (for seeds)."""
    from analyzer.capture.link import LINK_DECODERS

    order = sorted(LINK_DECODERS)
    return order.index(linktype) if linktype in order else None


if __name__ == "__main__":
    harness.main(load)
