"""The tshark engine gives the same records as the dpkt engine, and decrypts HTTPS with a TLS key log."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.engines import DecodeOptions, get_engine, resolve_engine
from analyzer.engines.tshark_engine import UNSHOWN
from analyzer.messages.records import Message
from analyzer.transport.records import TlsHello

REPO = Path(__file__).resolve().parents[1]
PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "captures" / "public"
PUBLIC_FILES = sorted(PUBLIC.glob("*.pcap*")) if PUBLIC.is_dir() else []
SAMPLE_FILES = sorted((REPO / "sample_captures").glob("**/*.pcap*"))
HTTPS = REPO / "sample_captures" / "real" / "nginx-profile-https.pcap"
KEYLOG = HTTPS.with_suffix(".keylog")

if PUBLIC_FILES:
    _public = [pytest.param(p, id=p.name) for p in PUBLIC_FILES]
else:
    _public = [pytest.param(None, id="public", marks=pytest.mark.skip(
        reason=f"public capture corpus not found at {PUBLIC} (it lives beside the repository)"))]
CAPTURES = [*_public, *(pytest.param(p, id=p.name) for p in SAMPLE_FILES)]

#: Captures where the engines legitimately disagree (name → why). None today: tshark runs with
#: ``tcp.try_heuristic_first`` so SIP on a port Wireshark gives to another protocol (6060 in
#: heplify__sip_ipv4_tcp_fragmented.pcap) is still found, as our demux finds it by its start line.
EXCEPTIONS: dict[str, str] = {}

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark not installed: apt-get install tshark")


def rows(engine: str, path: Path):
    """(frame, proto, method/status, Call-ID) per message, all records, the decode (stats, diagnostics)."""
    decoded = get_engine(engine)(str(path), DecodeOptions())
    items = list(decoded.items)  # (MC media-plane control too: both engines read it with our decoder)
    keys = [(m.frame, m.proto, m.method or m.status, m.call_id) for m in items if isinstance(m, Message)]
    return keys, items, decoded


@cache
def _tshark_runs():
    """The tshark decodes run a few at a time in the background (about 0.2 s of tshark start-up each)."""
    pool = ThreadPoolExecutor(max_workers=4)
    runs = {p: pool.submit(rows, "tshark", p) for p in [*PUBLIC_FILES, *SAMPLE_FILES]}
    pool.shutdown(wait=False)
    return runs


@pytest.mark.parametrize("path", CAPTURES)
def test_engines_agree(path):
    if path.name in EXCEPTIONS:
        pytest.skip(EXCEPTIONS[path.name])
    ours, our_items, dpkt = rows("dpkt", path)
    theirs, their_items, tshark = _tshark_runs()[path].result()
    assert theirs == ours
    assert their_items == our_items  # whole records: headers, bodies, frames, addresses, reply_to
    assert tshark.stats.packets == dpkt.stats.packets
    assert tshark.stats.sip_messages == dpkt.stats.sip_messages
    assert tshark.stats.http_messages == dpkt.stats.http_messages
    assert tshark.stats.tls_hellos == dpkt.stats.tls_hellos
    assert tshark.stats.floor_messages == dpkt.stats.floor_messages  # the media plane: the same decoder
    assert tshark.diagnostics.summary() == dpkt.diagnostics.summary()
    assert tshark.stats.stopped == dpkt.stats.stopped
    assert tshark.stats.last_time == dpkt.stats.last_time
    assert tshark.stats.tls_servers == dpkt.stats.tls_servers
    # both engines' accounting adds up; tshark's signalling is only the frames it showed (messages, hellos)
    theirs, ours = tshark.stats.accounting, dpkt.stats.accounting
    assert sum(theirs.values()) == tshark.stats.packets and sum(ours.values()) == dpkt.stats.packets
    assert theirs["signalling"] + theirs["diagnostic"] <= ours["signalling"] + ours["diagnostic"]
    assert theirs["media"] <= ours["media"]  # (only media-plane control: RTP stays unshown)
    assert set(theirs) == {"signalling", "media", "diagnostic", UNSHOWN}


def test_https_without_key_log_is_one_tls_hello():
    items = list(get_engine("tshark")(str(HTTPS), DecodeOptions()).items)
    assert [type(i) for i in items] == [TlsHello]
    assert items[0].sni == "cms.mcx.example"


def test_https_with_key_log_gives_the_profile_get_and_its_200(capsys):
    assert main(["messages", str(HTTPS), "--tls-keylog", str(KEYLOG), "--format", "jsonl", "--quiet"]) == 0
    out, err = capsys.readouterr()
    got = [json.loads(line) for line in out.splitlines()]
    assert [(r["proto"], r["method"], r["status"]) for r in got] == [
        ("http", "GET", None), ("http", None, 200)]
    assert got[0]["uri"].startswith("/xcap-root/org.3gpp.mcptt.user-profile/users/sip:alice@mcx.example/")
    assert {r["transport"] for r in got} == {"tls"}
    assert got[1]["reply_to"] == got[0]["frame"]
    assert err.count("\n") == 1 and "--engine tshark" in err  # auto switched to tshark, said once


def test_events_see_the_profile_retrieval_only_with_the_key_log(capsys):
    def kinds(*extra):
        assert main(["events", str(HTTPS), "--format", "jsonl", "--quiet", *extra]) == 0
        return [json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()]

    assert kinds() == ["config-access-encrypted"]
    assert kinds("--tls-keylog", str(KEYLOG)) == ["profile-retrieval"]


def test_engine_names():
    assert resolve_engine("auto") == "dpkt"
    assert resolve_engine("tshark") == "tshark"
    said = []
    assert resolve_engine("dpkt", "k.log", said.append) == "tshark+keylog=k.log"
    assert len(said) == 1
    assert resolve_engine("tshark", "k.log", said.append) == "tshark+keylog=k.log"
    assert len(said) == 1


def test_missing_tshark_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["messages", str(HTTPS), "--engine", "tshark"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "tshark is not installed (apt-get install tshark)" in err


def test_key_log_turns_an_unverifiable_profile_retrieval_into_a_judged_one(capsys):
    """A real nginx/curl HTTPS retrieval inside a migration: without keys the step is unverifiable and the
    verdict incomplete; with the key log the retrieval is read and the migration is compliant."""
    real = Path(__file__).resolve().parents[1] / "sample_captures" / "real"
    capture = str(real / "group-migration-real-https.pcapng")
    keylog = str(real / "nginx-profile-https.keylog")
    assert main(["analyze", capture, "--format", "json", "-q"]) == ExitCode.INCOMPLETE
    without = json.loads(capsys.readouterr().out)["captures"][0]["procedures"]
    [unverifiable] = [s for p in without for s in p["steps"] if s["status"] == "unverifiable"]
    assert unverifiable["id"] == "profile-retrieval"
    assert main(["analyze", capture, "--format", "json", "-q", "--tls-keylog", keylog]) == ExitCode.OK
    doc = json.loads(capsys.readouterr().out)
    migration = [p for p in doc["captures"][0]["procedures"] if p["rule"] == "group-call-migration"]
    assert [p["verdict"] for p in migration] == ["compliant"]
    step = next(s for s in migration[0]["steps"] if s["id"] == "profile-retrieval")
    assert (step["status"], step["event"]) == ("matched", "profile-retrieval")
