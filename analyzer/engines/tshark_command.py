"""The tshark command line of the tshark engine: what its display filter shows (the packets the dpkt
engine would decode) and the preferences that make Wireshark find them as our demux does (SIP on any
port, NULL-encrypted ESP, the user's TLS key log and ESP SAs)."""

from __future__ import annotations

from analyzer.engines.records import DecodeOptions
from analyzer.transport.esp_sa import load_esp_sas
from analyzer.transport.ip import ip_text

#: MC media-plane control as the dpkt engine finds it (``analyzer.transport.rtcp``): an RTCP APP packet (204)
#: named MCP* or MCV* between ports above 1023, not IPsec NAT traversal; our decoder reads its bytes.
MEDIA_CONTROL = ("(udp.srcport > 1023 && udp.dstport > 1023 && !(udp.port == 4500) && udp.payload[1] == cc "
                 "&& (udp.payload[8:3] == 4d:43:50 || udp.payload[8:3] == 4d:43:56))")
#: ... and IPsec ESP Wireshark could not open (no next header: neither NULL-encrypted nor a key in esp_sa)
DISPLAY_FILTER = f"sip || http || tls.handshake.type == 1 || (esp && !esp.protocol) || {MEDIA_CONTROL}"
#: Wireshark's own SIP ports; any other --sip-ports entry is decoded as SIP with ``-d``.
_WIRESHARK_SIP_PORTS = frozenset((5060, 5061))


def command(path: str, options: DecodeOptions) -> list[str]:
    """The tshark command line for one capture (``-`` reads standard input)."""
    cmd = ["tshark", "-n", "-r", path, "-Y", DISPLAY_FILTER, "-T", "ek", "-x", "-z", "io,phs",
           # SIP over TCP on any port, as our demux finds it: without this, a port Wireshark assigns to
           # another protocol (6060 in heplify__sip_ipv4_tcp_fragmented.pcap) hides the SIP on it
           "-o", "tcp.try_heuristic_first:TRUE"]
    for port in sorted(options.sip_ports - _WIRESHARK_SIP_PORTS):
        cmd += ["-d", f"tcp.port=={port},sip", "-d", f"udp.port=={port},sip"]
    if options.tls_keylog:
        cmd += ["-o", f"tls.keylog_file:{options.tls_keylog}"]
    # SIP in NULL-encrypted IPsec ESP, as the dpkt engine finds it; with --esp-sa, Wireshark's SA table
    cmd += ["-o", "esp.enable_null_encryption_decode_heuristic:TRUE"]
    if options.esp_sa:
        cmd += ["-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE"]
        for sa in load_esp_sas(options.esp_sa):
            for record in esp_sa_records(sa):
                cmd += ["-o", f"uat:esp_sa:{record}"]
    return cmd


#: mcxa's algorithm names → the labels of Wireshark's ESP SA table (``esp_sa`` UAT, Wireshark 4.0)
_WIRESHARK_ENCRYPTION = {"null": "NULL", "aes-cbc": "AES-CBC [RFC3602]",
                         "aes-gcm-16": "AES-GCM with 16 octet ICV [RFC4106]"}
_WIRESHARK_INTEGRITY = {"null": "NULL", "hmac-sha1-96": "HMAC-SHA-1-96 [RFC2404]",
                        "hmac-md5-96": "HMAC-MD5-96 [RFC2403]",
                        "hmac-sha256-128": "HMAC-SHA-256-128 [RFC4868]"}


def esp_sa_records(sa) -> list[str]:
    """One SA as records of Wireshark's ``esp_sa`` table: protocol, source, destination, SPI, encryption
    and its key, authentication and its key (``*``: any address; without addresses, one record per IP
    version, as the table has no "any" protocol)."""
    raw = sa.src or sa.dst
    versions = ["IPv6" if len(raw) == 16 else "IPv4"] if raw else ["IPv4", "IPv6"]
    rest = [ip_text(sa.src) if sa.src else "*", ip_text(sa.dst) if sa.dst else "*", f"0x{sa.spi:08x}",
            _WIRESHARK_ENCRYPTION[sa.encryption], f"0x{sa.encryption_key.hex()}" if sa.encryption_key else "",
            _WIRESHARK_INTEGRITY[sa.integrity], f"0x{sa.integrity_key.hex()}" if sa.integrity_key else ""]
    return [",".join(f'"{field}"' for field in (version, *rest)) for version in versions]
