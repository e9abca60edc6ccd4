"""The bundled sample captures: up to date with their scenarios, decoded exactly as declared, clean in
Wireshark, and listed in sample_captures/expected.yaml in the shape of the output contract."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from analyzer.engines import DecodeOptions
from analyzer.engines.dpkt_engine import decode
from analyzer.messages.records import Message
from analyzer.synth import load_scenario, synthesize, write_pcapng
from analyzer.synth.esp import sa_yaml
from analyzer.transport.records import TlsHello

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
SCENARIOS = sorted(p.name for p in SAMPLES.glob("*.yaml") if p.name != "expected.yaml")
EXPECTED = yaml.safe_load((SAMPLES / "expected.yaml").read_text())["captures"]
#: Step ids fixed by ../shared/contract/README.md for the two migration rules.
CONTRACT_STEPS = {
    "group-call-migration": {"deaffiliation", "profile-retrieval", "affiliation", "late-entry"},
    "private-call-migration": {"release", "profile-retrieval", "registration", "re-establishment"},
}
STATUSES = {"matched", "missing", "failed", "late", "out-of-order", "unverifiable"}
tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                            reason="tshark not installed: apt-get install tshark")


@cache
def synthesized(scenario: str):
    return synthesize(load_scenario(SAMPLES / scenario))


def capture_of(scenario: str) -> Path:
    return SAMPLES / scenario.replace(".yaml", ".pcapng")


def test_there_are_enough_samples_for_every_deviation_class():
    assert len(SCENARIOS) >= 12
    statuses = {s for entry in EXPECTED.values() for p in entry["procedures"] for s in p["steps"].values()}
    assert statuses >= {"missing", "failed", "out-of-order", "late", "unverifiable"}
    verdicts = {p["verdict"] for entry in EXPECTED.values() for p in entry["procedures"]}
    assert verdicts == {"compliant", "deviation", "incomplete"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_committed_capture_is_what_its_scenario_makes(scenario, tmp_path):
    """A scenario edited without `sample_captures/regenerate.sh` would silently drift from its capture."""
    fresh = tmp_path / "fresh.pcapng"
    write_pcapng(synthesized(scenario), fresh)
    assert capture_of(scenario).read_bytes() == fresh.read_bytes(), \
        f"run sample_captures/regenerate.sh: {capture_of(scenario).name} is stale"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_mcxa_lists_exactly_the_declared_messages(scenario):
    decoded = decode(str(capture_of(scenario)))
    items = list(decoded.items)
    got = [(m.frame, m.proto, m.method or m.status, m.call_id, m.src, m.dst)
           for m in items if isinstance(m, Message)]
    declared = [(d.frame, d.proto, d.method or d.status, d.call_id, str(d.src), str(d.dst))
                for d in synthesized(scenario).declared]
    assert got == declared
    assert [(h.frame, h.sni) for h in items if isinstance(h, TlsHello)] == \
        [(h.frame, h.sni) for h in synthesized(scenario).hellos]
    assert decoded.diagnostics.total == 0


@tshark
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_wireshark_dissects_every_sample_cleanly(scenario):
    path = str(capture_of(scenario))
    # (SIP in NULL-encrypted ESP: Wireshark finds it with its heuristic only)
    out = subprocess.run(["tshark", "-r", path, "-o", "esp.enable_null_encryption_decode_heuristic:TRUE",
                          "-Y", "sip || http", "-T", "fields", "-e", "frame.number",
                          "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "http.request.method",
                          "-e", "http.response.code", "-E", "occurrence=a", "-E", "aggregator=|"],
                         capture_output=True, text=True, check=True).stdout
    seen = {}
    for line in out.splitlines():
        frame, *values = line.split("\t")
        seen[int(frame)] = "|".join(v for v in values if v)
    assert seen == {d.frame: str(d.method or d.status) for d in synthesized(scenario).declared}
    checksums = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                 "-o", "tcp.check_checksum:TRUE"]
    bad = subprocess.run(["tshark", "-r", path, *checksums,
                          "-Y", "_ws.malformed || _ws.expert.severity >= error"],
                         capture_output=True, text=True, check=True).stdout
    assert bad == ""


def test_expected_yaml_covers_every_sample_in_the_contract_shape():
    listed = set(EXPECTED)
    captures = {capture_of(s).name for s in SCENARIOS}
    real = {f"real/{p.name}" for p in (SAMPLES / "real").glob("*.pcap*")}
    derived = {f"derived/{p.name}" for p in (SAMPLES / "derived").glob("*.pcap*")}
    assert listed == captures | real | derived
    for name, entry in EXPECTED.items():
        assert (SAMPLES / name).exists(), name
        if "scenario" in entry:
            assert str(Path(entry["scenario"]).with_suffix(".pcapng")) == name
        for proc in entry["procedures"]:
            assert proc["rule"] in CONTRACT_STEPS, name
            assert proc["verdict"] in {"compliant", "deviation", "incomplete"}, name
            assert set(proc["steps"]) <= CONTRACT_STEPS[proc["rule"]], name
            assert set(proc["steps"].values()) <= STATUSES - {"matched"}, name
            assert set(proc.get("info", ())) <= CONTRACT_STEPS[proc["rule"]], name
            assert (proc["verdict"] == "compliant") == (not proc["steps"]), name
            assert ("group" in proc) == (proc["rule"] == "group-call-migration"), name


def test_every_real_capture_is_made_by_a_script_and_described_in_the_readme():
    real = SAMPLES / "real"
    scripts = "\n".join(p.read_text() for p in real.glob("*.sh"))
    readme = (real / "README.md").read_text()
    pcaps = sorted(real.glob("*.pcap"))
    assert len(pcaps) >= 7
    for pcap in pcaps:
        assert pcap.stem in scripts, f"no script in real/ makes {pcap.name}"
        assert f"`{pcap.name}`" in readme, f"{pcap.name} not described in real/README.md"
    assert all(xml.name in scripts for xml in real.glob("*.xml"))  # every scenario is played by a script


# -- SIP on Gm in IPsec ESP (issue 17 §4) -----------------------------------------------------------------

ESP_SAMPLE = SAMPLES / "group-migration-esp-null.pcapng"


def test_the_esp_sample_lists_its_plain_twins_messages_with_or_without_its_sa_file():
    """The same messages in the same frames as the sample without ESP; its SA file is what synth writes,
    and with it every ICV checks (no diagnostic)."""
    esp = synthesized("group-migration-esp-null.yaml")
    assert ESP_SAMPLE.with_suffix(".esp-sa").read_text() == sa_yaml(esp.esp_sas, esp.esp_key, ESP_SAMPLE.name)
    assert sorted(esp.esp_sas.values()) == [0xA001, 0xA002, 0xA003, 0xA004]
    declared = [(d.frame, d.proto, d.method or d.status, d.call_id, str(d.src), str(d.dst))
                for d in synthesized("group-migration-compliant.yaml").declared]
    for esp_sa in (None, str(ESP_SAMPLE.with_suffix(".esp-sa"))):
        decoded = decode(str(ESP_SAMPLE), DecodeOptions(esp_sa=esp_sa))
        got = [(m.frame, m.proto, m.method or m.status, m.call_id, m.src, m.dst)
               for m in decoded.items if isinstance(m, Message)]
        assert got == declared
        assert decoded.diagnostics.total == 0 and decoded.stats.esp is None


def test_a_wrong_key_in_the_esp_sample_fails_every_icv(tmp_path):
    wrong = tmp_path / "wrong.esp-sa"
    text = ESP_SAMPLE.with_suffix(".esp-sa").read_text()
    wrong.write_text(re.sub(r'integrity_key: "0x[0-9a-f]+"', 'integrity_key: "0x' + "00" * 20 + '"', text))
    decoded = decode(str(ESP_SAMPLE), DecodeOptions(esp_sa=str(wrong)))
    assert not [m for m in decoded.items if isinstance(m, Message) and m.proto == "sip"]
    assert decoded.diagnostics.summary()["esp-auth-failed"] == 40  # every SIP datagram


@tshark
def test_wireshark_finds_the_same_sip_in_the_esp_sample():
    out = subprocess.run(["tshark", "-r", str(ESP_SAMPLE), "-o",
                          "esp.enable_null_encryption_decode_heuristic:TRUE", "-o", "ip.check_checksum:TRUE",
                          "-Y", "sip || http || _ws.malformed || _ws.expert.severity >= error",
                          "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, check=True).stdout
    declared = synthesized("group-migration-compliant.yaml").declared
    assert [int(f) for f in out.split()] == [d.frame for d in declared]
