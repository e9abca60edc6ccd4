"""Build crafted frames and captures for tests (dpkt's packet classes and writers do the packing)."""

from __future__ import annotations

import socket

import dpkt

ETH_IP4, ETH_IP6 = dpkt.ethernet.ETH_TYPE_IP, dpkt.ethernet.ETH_TYPE_IP6
MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"


def _addr(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def ip(src: str, dst: str, proto: int, payload: bytes, ident: int = 1, frag: int = 0) -> bytes:
    """An IPv4 or IPv6 packet (version from the address form)."""
    if ":" in src:
        return bytes(dpkt.ip6.IP6(src=_addr(src), dst=_addr(dst), nxt=proto, hlim=64, plen=len(payload),
                                  data=payload))
    pkt = dpkt.ip.IP(src=_addr(src), dst=_addr(dst), p=proto, ttl=64, id=ident, data=payload)
    pkt._flags_offset = frag  # raw flags + offset-in-8-byte-units field
    pkt.len = 20 + len(payload)
    return bytes(pkt)


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return bytes(dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload))


def tcp(sport: int, dport: int, seq: int, payload: bytes = b"", flags: int = 0x18, ack: int = 0) -> bytes:
    return bytes(dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=65535,
                              data=payload))


def ether(l3: bytes, etype: int | None = None, vlans: tuple[int, ...] = ()) -> bytes:
    if etype is None:
        etype = ETH_IP6 if l3[0] >> 4 == 6 else ETH_IP4
    tags = b"".join(b"\x81\x00" + vid.to_bytes(2, "big") for vid in vlans)
    return MAC_B + MAC_A + tags + etype.to_bytes(2, "big") + l3


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    return ether(ip(src, dst, 17, udp(sport, dport, payload)))


def tcp_frame(src: str, dst: str, sport: int, dport: int, seq: int, payload: bytes = b"",
              flags: int = 0x18) -> bytes:
    return ether(ip(src, dst, 6, tcp(sport, dport, seq, payload, flags)))


def ipv4_fragments(src: str, dst: str, proto: int, payload: bytes, size: int, ident: int = 7) -> list[bytes]:
    """Split an IPv4 payload into fragments of ``size`` bytes (a multiple of 8)."""
    out = []
    for start in range(0, len(payload), size):
        more = start + size < len(payload)
        out.append(ip(src, dst, proto, payload[start:start + size], ident,
                      (start // 8) | (dpkt.ip.IP_MF if more else 0)))
    return out


def ipv6_fragments(src: str, dst: str, proto: int, payload: bytes, size: int, ident: int = 9) -> list[bytes]:
    """Split an IPv6 payload into fragments (fragment extension header 44) of ``size`` bytes."""
    out = []
    for start in range(0, len(payload), size):
        more = start + size < len(payload)
        piece = payload[start:start + size]
        frag_hdr = bytes((proto, 0)) + (start | int(more)).to_bytes(2, "big") + ident.to_bytes(4, "big")
        body = frag_hdr + piece
        hdr = (b"\x60\x00\x00\x00" + len(body).to_bytes(2, "big") + bytes((44, 64))
               + _addr(src) + _addr(dst))
        out.append(hdr + body)
    return out


def write_pcap(path, frames, linktype: int = 1, start: float = 1_700_000_000.0, step: float = 0.01) -> None:
    """Write frames (bytes, or (bytes, linktype) ignored) as a microsecond pcap."""
    with open(path, "wb") as fh:
        writer = dpkt.pcap.Writer(fh, snaplen=262144, linktype=linktype)
        for i, frame in enumerate(frames):
            writer.writepkt(frame, ts=start + i * step)


SIP_REGISTER = (
    b"REGISTER sip:mcx.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:alice@mcx.example>;tag=1\r\n"
    b"To: <sip:alice@mcx.example>\r\n"
    b"Call-ID: reg-1@10.0.0.1\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:alice@10.0.0.1:5060>;+g.3gpp.mcptt\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def sip_request(method: str, call_id: str, cseq: int = 1, body: bytes = b"", uri: str = "sip:bob@mcx.example",
                ctype: str = "application/sdp") -> bytes:
    head = (f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-{call_id}-{cseq}\r\n"
            f"From: <sip:alice@mcx.example>;tag=a\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n")
    if body:
        head += f"Content-Type: {ctype}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def sip_response(status: int, reason: str, call_id: str, cseq: int = 1, method: str = "INVITE") -> bytes:
    return (f"SIP/2.0 {status} {reason}\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-{call_id}-{cseq}\r\n"
            f"From: <sip:alice@mcx.example>;tag=a\r\nTo: <sip:bob@mcx.example>;tag=b\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n").encode()
