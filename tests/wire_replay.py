"""Plays a sample capture's signalling as real traffic on loopback, for ``mcxa watch -i lo`` tests: every UDP
datagram is sent from a socket bound to its (mapped) source to its (mapped) destination, and every TCP
connection is opened for real and carries its two directions' bytes (HTTP, TLS hellos) in capture order.

Each IPv4 address of the capture becomes one 127.NET.0.x address, consistently, so the analysis sees the
same clients, servers and systems as in the file (under other addresses); ports are kept. Capture time is
replayed ``speed`` times faster. IPv4 only; the sample captures are clean (no retransmission, no loss).
"""

from __future__ import annotations

import socket
import time

import dpkt


def _packets(path: str):
    """(time, ip) of every IPv4 packet of ``path``; fragments come as one datagram with the last one."""
    fragments: dict[tuple, dict[int, bytes]] = {}
    with open(path, "rb") as f:
        reader = dpkt.pcapng.Reader(f) if path.endswith("pcapng") else dpkt.pcap.Reader(f)
        link = reader.datalink()
        for ts, raw in reader:
            frame = dpkt.ethernet.Ethernet(raw) if link == dpkt.pcap.DLT_EN10MB else dpkt.sll.SLL(raw)
            ip = frame.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            if ip.mf or ip.offset:
                key = (ip.src, ip.dst, ip.id)
                fragments.setdefault(key, {})[ip.offset] = bytes(ip)[ip.hl * 4:ip.len]
                if ip.mf:
                    continue
                data = b"".join(piece for _, piece in sorted(fragments.pop(key).items()))
                ip.data = dpkt.udp.UDP(data) if ip.p == dpkt.ip.IP_PROTO_UDP else data
            yield ts, ip


class WireReplay:
    def __init__(self, path: str, net: int, speed: float = 4.0):
        self.path, self.net, self.speed = path, net, speed
        self.addresses: dict[bytes, str] = {}
        self.udp: dict[tuple, socket.socket] = {}
        self.listeners: dict[tuple, socket.socket] = {}
        self.tcp: dict[tuple, socket.socket] = {}  # (src, sport, dst, dport) → the socket that sends
        self.opened: list[socket.socket] = []
        self.last = b""  # the last payload sent

    def address(self, raw: bytes) -> str:
        if raw not in self.addresses:
            self.addresses[raw] = f"127.{self.net}.0.{len(self.addresses) + 1}"
        return self.addresses[raw]

    def play(self) -> int:
        """Send everything; the number of payloads sent."""
        start = first = None
        sent = 0
        try:
            for ts, ip in _packets(self.path):
                if first is None:
                    first, start = ts, time.monotonic()
                delay = (ts - first) / self.speed - (time.monotonic() - start)
                if delay > 0:
                    time.sleep(delay)
                src, dst = self.address(ip.src), self.address(ip.dst)
                if isinstance(ip.data, dpkt.udp.UDP):
                    self._udp(src, ip.data.sport, dst, ip.data.dport, bytes(ip.data.data))
                    sent += 1
                elif isinstance(ip.data, dpkt.tcp.TCP):
                    sent += self._tcp(src, dst, ip.data)
        finally:
            for s in self.opened:
                s.close()
        return sent

    def _bound(self, table: dict, key: tuple, kind: int) -> socket.socket:
        if key not in table:
            s = socket.socket(socket.AF_INET, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(key)
            table[key] = s
            self.opened.append(s)
        return table[key]

    def _udp(self, src: str, sport: int, dst: str, dport: int, data: bytes) -> None:
        self._bound(self.udp, (dst, dport), socket.SOCK_DGRAM)  # someone listens: no ICMP unreachable
        self._bound(self.udp, (src, sport), socket.SOCK_DGRAM).sendto(data, (dst, dport))
        self.last = data

    def _tcp(self, src: str, dst: str, seg) -> int:
        key = (src, seg.sport, dst, seg.dport)
        if seg.flags & dpkt.tcp.TH_SYN and not seg.flags & dpkt.tcp.TH_ACK:  # the client opens
            listener = self._bound(self.listeners, (dst, seg.dport), socket.SOCK_STREAM)
            listener.listen(16)
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.bind((src, 0))
            client.connect((dst, seg.dport))
            server, _ = listener.accept()
            self.opened += [client, server]
            self.tcp[key], self.tcp[(dst, seg.dport, src, seg.sport)] = client, server
            return 0
        if seg.data and key in self.tcp:
            self.tcp[key].sendall(bytes(seg.data))
            self.last = bytes(seg.data)
            return 1
        return 0
