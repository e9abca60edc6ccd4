"""IPsec ESP on Gm (issue 17 §4): SIP inside NULL-encrypted ESP is decoded (transport and tunnel mode, IP
protocol 50 and UDP port 4500), with the frames tshark gives; AES-CBC + HMAC-SHA1-96 and AES-GCM open with
the keys of an ``--esp-sa`` file; without keys the capture says the SIP is protected, with its SPIs; hostile
ESP is a diagnostic with its frame, never a crash; a bad SA file is one line and exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.engines import DecodeOptions, get_engine
from analyzer.engines.dpkt_engine import decode
from analyzer.messages.records import Message
from analyzer.transport.esp import EspReader, null_payload, trailer
from analyzer.transport.esp_sa import EspError
from tests.captures import pcap_bytes
from tests.encapsulations import (
    AES128_KEY,
    ESP_PROTO,
    GCM_KEY,
    HMAC_SHA1_KEY,
    NAT_T_PORT,
    esp_aes_cbc,
    esp_aes_gcm,
    esp_null,
    esp_trailer,
)
from tests.packets import SIP_REGISTER, ether, ip, sip_request, tcp, udp

UE, PCSCF, UE6, PCSCF6 = "10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2"
INVITE = sip_request("INVITE", "call-esp-1", body=b"v=0\r\n")
SA_FILE = f"""\
- spi: 0x0002000b
  src: {UE}
  dst: {PCSCF}
  encryption: aes-cbc
  encryption_key: "0x{AES128_KEY.hex()}"
  integrity: hmac-sha1-96
  integrity_key: "0x{HMAC_SHA1_KEY.hex()}"
- spi: "0x3000c"
  encryption: aes-gcm-16
  encryption_key: "{GCM_KEY.hex(':')}"
- spi: 4096
  integrity: hmac-sha1-96
  integrity_key: "{HMAC_SHA1_KEY.hex()}"
"""
tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                            reason="tshark not installed: apt-get install tshark")


def esp_frame(esp: bytes, src: str = UE, dst: str = PCSCF, nat_t: bool = False) -> bytes:
    if nat_t:
        return ether(ip(src, dst, 17, udp(NAT_T_PORT, NAT_T_PORT, esp)))
    return ether(ip(src, dst, ESP_PROTO, esp))


def sip_udp(message: bytes = SIP_REGISTER) -> bytes:
    return udp(5060, 5060, message)


def capture(tmp_path, frames, name="esp.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(frames))
    return path


def sa_file(tmp_path, text: str = SA_FILE):
    path = tmp_path / "sa.yaml"
    path.write_text(text)
    return path


def decoded(path, esp_sa=None):
    result = decode(str(path), DecodeOptions(esp_sa=str(esp_sa) if esp_sa else None, workers=1))
    items = list(result.items)
    messages = [(m.frame, m.method or m.status, m.src, m.dst, m.transport) for m in items
                if isinstance(m, Message)]
    return messages, result


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# -- NULL encryption ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("icv_len", [12, 16, 24, 32])
def test_null_esp_transport_mode_udp_is_decoded_with_the_outer_addresses(tmp_path, icv_len):
    frames = [ether(ip(UE, PCSCF, 17, udp(40000, 40002, b"\x80" * 40))),  # RTP, around it
              esp_frame(esp_null(sip_udp(), icv_len=icv_len))]
    messages, result = decoded(capture(tmp_path, frames))
    assert messages == [(2, "REGISTER", f"{UE}:5060", f"{PCSCF}:5060", "udp")]
    assert result.stats.accounting == {"signalling": 1, "media": 1, "other": 0, "diagnostic": 0}
    assert result.diagnostics.total == 0 and result.stats.esp is None


def test_null_esp_over_ipv6_tcp_and_split_across_two_packets(tmp_path):
    first, second = INVITE[:60], INVITE[60:]
    frames = [esp_frame(esp_null(tcp(50000, 5060, 1000, first), 6, seq=1), UE6, PCSCF6),
              esp_frame(esp_null(tcp(50000, 5060, 1000 + len(first), second), 6, seq=2), UE6, PCSCF6)]
    messages, _ = decoded(capture(tmp_path, frames))
    assert messages == [(2, "INVITE", f"[{UE6}]:50000", f"[{PCSCF6}]:5060", "tcp")]


def test_null_esp_tunnel_mode_and_udp_encapsulated_on_port_4500(tmp_path):
    inner = ip("192.168.7.1", "192.168.7.2", 17, sip_udp())
    # SPI 0x9000... begins with a byte that looks like RTP: the prefilter must not drop it as media
    frames = [esp_frame(esp_null(inner, 4), nat_t=False),
              esp_frame(esp_null(sip_udp(INVITE), spi=0x90000001), nat_t=True),
              ether(ip(UE, PCSCF, 17, udp(NAT_T_PORT, NAT_T_PORT, b"\xff"))),  # NAT keep-alive
              ether(ip(UE, PCSCF, 17, udp(NAT_T_PORT, NAT_T_PORT, b"\x00" * 4 + b"IKE")))]  # non-ESP marker
    messages, result = decoded(capture(tmp_path, frames))
    assert messages == [(1, "REGISTER", "192.168.7.1:5060", "192.168.7.2:5060", "udp"),
                        (2, "INVITE", f"{UE}:5060", f"{PCSCF}:5060", "udp")]
    assert result.stats.accounting == {"signalling": 2, "media": 0, "other": 2, "diagnostic": 0}


@tshark
def test_tshark_finds_the_same_sip_in_null_esp(tmp_path):
    frames = [esp_frame(esp_null(sip_udp())), esp_frame(esp_null(sip_udp(INVITE), seq=2), nat_t=True),
              esp_frame(esp_null(ip("192.168.7.1", "192.168.7.2", 17, sip_udp()), 4, seq=3))]
    path = capture(tmp_path, frames)
    out = subprocess.run(["tshark", "-n", "-r", str(path),
                          "-o", "esp.enable_null_encryption_decode_heuristic:TRUE", "-Y", "sip",
                          "-T", "fields", "-e", "frame.number", "-e", "sip.Method"],
                         capture_output=True, text=True, check=True).stdout
    tshark_says = [tuple(line.split("\t")) for line in out.splitlines()]
    messages, _ = decoded(path)
    assert [(str(frame), method) for frame, method, *_ in messages] == tshark_says
    assert len(tshark_says) == 3


def test_null_heuristic_refuses_what_does_not_check_out():
    good = esp_null(sip_udp())
    assert null_payload(good) == (12, 17, sip_udp())
    assert null_payload(good[:-1]) is None  # the alignment and padding no longer hold
    bad_length = esp_null(udp(5060, 5060, SIP_REGISTER)[:4] + b"\x00\x09" + SIP_REGISTER)  # UDP length lies
    assert null_payload(bad_length) is None


# -- keys given ---------------------------------------------------------------------------------------------

def test_aes_cbc_hmac_sha1_and_aes_gcm_open_with_the_keys_given(tmp_path):
    frames = [esp_frame(esp_aes_cbc(sip_udp())),
              esp_frame(esp_aes_gcm(sip_udp(INVITE)), PCSCF, UE),
              esp_frame(esp_null(sip_udp(), spi=4096, integrity_key=HMAC_SHA1_KEY))]
    path = capture(tmp_path, frames)
    messages, result = decoded(path, sa_file(tmp_path))
    assert messages == [(1, "REGISTER", f"{UE}:5060", f"{PCSCF}:5060", "udp"),
                        (2, "INVITE", f"{PCSCF}:5060", f"{UE}:5060", "udp"),
                        (3, "REGISTER", f"{UE}:5060", f"{PCSCF}:5060", "udp")]
    assert result.diagnostics.total == 0 and result.stats.esp is None


def test_an_sa_bound_to_addresses_does_not_open_other_peers_packets(tmp_path):
    frames = [esp_frame(esp_aes_cbc(sip_udp()), PCSCF, UE)]  # the SA is for UE → P-CSCF only
    messages, result = decoded(capture(tmp_path, frames), sa_file(tmp_path))
    assert messages == [] and result.stats.accounting["encrypted"] == 1
    assert result.stats.esp["keys_given"] is True


@pytest.mark.parametrize("damage", ["icv", "ciphertext"])
def test_a_wrong_icv_is_a_diagnostic_with_its_frame_and_the_packet_is_not_used(tmp_path, damage):
    packet = bytearray(esp_aes_cbc(sip_udp()))
    packet[-1 if damage == "icv" else 30] ^= 0x01
    gcm = bytearray(esp_aes_gcm(sip_udp(INVITE)))
    gcm[20] ^= 0x80
    frames = [esp_frame(esp_null(sip_udp())), esp_frame(bytes(packet)), esp_frame(bytes(gcm))]
    messages, result = decoded(capture(tmp_path, frames), sa_file(tmp_path))
    assert [m[:2] for m in messages] == [(1, "REGISTER")]
    records = [(d.code, d.frames) for d in result.diagnostics.records]
    assert records == [("esp-auth-failed", (2,)), ("esp-auth-failed", (3,))]
    assert "SPI 0x0002000b" in result.diagnostics.records[0].message
    assert result.stats.accounting["diagnostic"] == 2


# -- without keys: never silent ------------------------------------------------------------------------------

def test_encrypted_esp_without_keys_is_counted_and_named_by_spi(capsys, tmp_path):
    frames = [esp_frame(esp_aes_cbc(sip_udp(), seq=n)) for n in range(1, 4)]
    frames += [esp_frame(esp_aes_gcm(sip_udp(INVITE)), PCSCF, UE)]
    path = capture(tmp_path, frames)
    code, out, err = run(capsys, "messages", path)
    assert code == ExitCode.OK and "REGISTER" not in out
    assert (f"SIP may be protected by IPsec ESP: 4 packets in SPIs 0x0002000b, 0x0003000c between {UE} and "
            f"{PCSCF}; give keys with --esp-sa FILE") in err
    assert "4 packets: 0 signalling (no SIP or HTTP message), 0 media, 0 other, 0 with a diagnostic, " \
           "4 encrypted" in err
    code, out, _ = run(capsys, "analyze", path, "--quiet")
    assert "SIP may be protected by IPsec ESP: 4 packets" in " ".join(out.split())
    code, out, _ = run(capsys, "analyze", path, "--format", "json", "--quiet")
    assert json.loads(out)["captures"][0]["accounting"]["esp"] == {
        "packets": 4, "spis": {"0x0002000b": 3, "0x0003000c": 1}, "peers": [[UE, PCSCF]], "keys_given": False}
    code, out, err = run(capsys, "messages", path, "--esp-sa", sa_file(tmp_path))
    assert out.count("REGISTER") == 3 and "INVITE" in out and "IPsec" not in err


def test_the_spi_list_is_capped_in_the_text(capsys, tmp_path):
    frames = [esp_frame(esp_aes_gcm(sip_udp(), spi=0x100 + n)) for n in range(7)]
    _, _, err = run(capsys, "messages", capture(tmp_path, frames))
    assert "7 packets in SPIs 0x00000100, 0x00000101, 0x00000102, 0x00000103 and 3 more between" in err


def test_reader_tables_are_bounded():
    reader = EspReader()
    for spi in range(1, 3000):
        assert reader.open(b"\x01" * 4, b"\x02" * 4, spi.to_bytes(4, "big") + b"\x00" * 40) is None
    summary = reader.summary()
    assert summary["packets"] == 2999 and len(summary["spis"]) == 1024


# -- hostile ESP ---------------------------------------------------------------------------------------------

HOSTILE = {
    "truncated-header": (b"\x00\x00\x10\x00\x00", "malformed-esp"),
    "spi-zero": (b"\x00" * 8 + sip_udp(), "malformed-esp"),
    "bad-padding": (b"\x00\x00\x10\x00\x00\x00\x00\x01" + sip_udp() + b"\x01\x09\x03\x11"
                    + b"\x00" * 12, "esp-auth-failed"),  # the ICV is checked first: it does not match
    "cut-inside-icv": (esp_null(sip_udp(), spi=4096, integrity_key=HMAC_SHA1_KEY)[:10], "malformed-esp"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_esp_is_a_diagnostic_with_its_frame(tmp_path, name):
    packet, code = HOSTILE[name]
    frames = [esp_frame(packet), esp_frame(esp_null(sip_udp()))]
    messages, result = decoded(capture(tmp_path, frames), sa_file(tmp_path))
    assert [m[:2] for m in messages] == [(2, "REGISTER")]
    assert [(d.code, d.frames) for d in result.diagnostics.records] == [(code, (1,))]


@pytest.mark.parametrize("tail", [b"\xff\x11", b"\x05\x11", b"\x02\x11"],
                         ids=["huge-pad", "pad-past", "pad-not-1-2"])
def test_a_keyed_packet_with_a_bad_trailer_is_malformed(tmp_path, tail):
    import hashlib
    import hmac

    signed = (4096).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\x07\x07" + tail
    packet = signed + hmac.digest(HMAC_SHA1_KEY, signed, hashlib.sha1)[:12]
    _, result = decoded(capture(tmp_path, [esp_frame(packet)]), sa_file(tmp_path))
    [record] = result.diagnostics.records
    assert record.code == "malformed-esp" and record.frames == (1,)


def test_hostile_null_esp_without_keys_is_encrypted_not_a_crash(tmp_path):
    frames = [esp_frame(b"\x00\x00\x00\x01\x00\x00\x00\x01" + b"\xff" * n) for n in (0, 1, 2, 255, 600)]
    messages, result = decoded(capture(tmp_path, frames))
    assert messages == [] and result.stats.accounting["encrypted"] == 5


def test_trailer_strips_padding_1_2_3_and_rejects_what_rfc_4303_forbids():
    assert esp_trailer(b"abcdefghi", 17) == b"abcdefghi\x01\x00\x11"[:9] + b"\x01\x01\x11"
    assert trailer(esp_trailer(b"abcdefghi", 17), 5, False) == (17, b"abcdefghi")
    with pytest.raises(EspError, match="pad length 200 is longer than the 2-byte payload"):
        trailer(b"ab\xc8\x11", 5, True)
    with pytest.raises(EspError, match=r"padding is not 1, 2, 3 … \(RFC 4303\) \(wrong encryption key\?\)"):
        trailer(b"ab\x01\x03\x02\x11", 5, True)


# -- the SA file ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,reason", [
    ("- {spi: 5, encryption: des}\n", "encryption algorithm"),
    ("- {spi: 5, encryption: aes-cbc, encryption_key: '0x0011'}\n",
     "2 bytes; this algorithm takes 16 or 24 or 32"),
    ("- {spi: 5, integrity: hmac-sha1-96, integrity_key: 0x0011}\n", "expected a string"),
    ("- {spi: 0}\n", "not a 32-bit SPI"),
    ("- {spi: 5, src: nowhere}\n", "'nowhere' is not an IP address"),
    ("- {spi: 5, encryption: aes-gcm-16, encryption_key: '" + "00" * 20 + "', integrity: hmac-md5-96, "
     "integrity_key: '" + "00" * 16 + "'}\n", "integrity must be null"),
    ("spi: 5\n", "expected a list"),
    ("- {spi: 5, key: x}\n", "unknown key 'key'"),
])
def test_a_bad_sa_file_is_one_line_naming_file_line_and_key_and_exit_2(capsys, tmp_path, text, reason):
    sample = capture(tmp_path, [esp_frame(esp_null(sip_udp()))])
    code, out, err = run(capsys, "messages", sample, "--esp-sa", sa_file(tmp_path, text))
    assert code == ExitCode.BAD_INPUT and out == ""
    assert reason in err and f"{tmp_path / 'sa.yaml'}:1" in err
    assert "Traceback" not in err


@tshark
def test_the_tshark_engine_opens_the_same_esp_with_wiresharks_sa_table(tmp_path):
    frames = [esp_frame(esp_aes_cbc(sip_udp())), esp_frame(esp_aes_gcm(sip_udp(INVITE)), PCSCF, UE),
              esp_frame(esp_null(sip_udp(), spi=4096, integrity_key=HMAC_SHA1_KEY), UE6, PCSCF6),
              esp_frame(esp_null(sip_udp(INVITE), seq=9), nat_t=True)]
    path, keys = capture(tmp_path, frames), sa_file(tmp_path)
    ours, _ = decoded(path, keys)
    theirs = list(get_engine("tshark")(str(path), DecodeOptions(esp_sa=str(keys))).items)
    assert [(m.frame, m.method or m.status, m.src, m.dst, m.transport) for m in theirs] == ours
    assert len(ours) == 4


@tshark
def test_the_tshark_engine_names_the_esp_it_cannot_open_too(tmp_path):
    frames = [esp_frame(esp_aes_cbc(sip_udp())), esp_frame(esp_aes_gcm(sip_udp(INVITE)), PCSCF, UE),
              esp_frame(esp_null(sip_udp(), seq=2)), esp_frame(esp_null(tcp(5060, 5060, 1), 6, seq=3)),
              esp_frame(esp_aes_gcm(sip_udp(INVITE), seq=2), nat_t=True)]
    path = capture(tmp_path, frames)
    ours, result = decoded(path)
    theirs = get_engine("tshark")(str(path), DecodeOptions())
    assert [(m.frame, m.method) for m in theirs.items] == [(m[0], m[1]) for m in ours] == [(3, "REGISTER")]
    assert theirs.stats.esp == result.stats.esp == {
        "packets": 3, "spis": {"0x0003000c": 2, "0x0002000b": 1}, "peers": [[UE, PCSCF]], "keys_given": False}
    assert theirs.stats.accounting["encrypted"] == result.stats.accounting["encrypted"] == 3
