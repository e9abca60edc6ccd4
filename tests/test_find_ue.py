"""Finding a UE the way engineers name it: ``messages --user`` matches MC service IDs in mc*-info bodies,
IMPUs and IMPIs; ``events``/``sessions``/``flow --ue`` match any identity the UE's session used, before
and after its migration."""

from __future__ import annotations

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.messages.records import Headers, Message
from analyzer.messages.select import MessageFilter
from tests.test_ladder import SAMPLES

COMPLIANT = str(SAMPLES / "group-migration-compliant.pcapng")
TWO = str(SAMPLES / "two-ues-group-migration.pcapng")


def frames_listed(text: str) -> list[int]:
    return [int(line.split()[0]) for line in text.splitlines()[1:] if line.strip()]


def test_messages_user_finds_the_mc_service_id_in_the_bodies(capsys):
    assert main(["messages", COMPLIANT, "--user", "alice", "-q"]) == ExitCode.OK
    listed = frames_listed(capsys.readouterr().out)
    # the PUBLISHes carrying mcptt-request-uri sip:alice@..., the INVITE to her, the profile GET of alice.b
    assert {6, 13, 18, 44, 56}.issubset(listed)
    assert 1 not in listed  # the REGISTER names her IMPU only
    assert main(["messages", COMPLIANT, "--user", "ue1-mcptt-client", "-q"]) == ExitCode.OK
    assert 6 in frames_listed(capsys.readouterr().out)  # <mcptt-client-id>


def test_messages_user_finds_impu_and_impi(capsys):
    assert main(["messages", COMPLIANT, "--user", "+491700000001@ims.b", "-q"]) == ExitCode.OK
    assert frames_listed(capsys.readouterr().out)[:4] == [51, 52, 53, 54]  # REGISTER, 401, REGISTER, 200
    impi_only = Message("sip", "request", "REGISTER", "sip:ims.x", None, None, Headers([
        ("authorization", 'Digest username="imsi-262011234@ims.x", realm="ims.x", nonce="abc"')]), b"", (1,),
        0.0, "10.0.0.1:5060", "10.0.0.2:5060", "udp")
    assert MessageFilter(user="IMSI-262011234")(impi_only)
    assert not MessageFilter(user="abc")(impi_only)  # the nonce is no identity


def test_a_body_naming_the_text_outside_an_mc_id_element_does_not_match():
    body = (b"<mcpttinfo><mcptt-Params><mcptt-request-uri><mcpttURI>sip:bob@a</mcpttURI></mcptt-request-uri>"
            b"<mcptt-calling-group-id><mcpttURI>sip:alice-fans@a</mcpttURI></mcptt-calling-group-id>"
            b"</mcptt-Params></mcpttinfo>")
    invite = Message("sip", "request", "INVITE", "sip:conf@a", None, None, Headers([
        ("content-type", "application/vnd.3gpp.mcptt-info+xml")]), body, (1,), 0.0, "1.1.1.1:5060",
        "2.2.2.2:5060", "udp")
    assert MessageFilter(user="bob")(invite)
    assert not MessageFilter(user="alice")(invite)  # a group, not a user


def test_events_ue_by_the_new_identity_lists_the_session_before_and_after_the_migration(capsys):
    assert main(["events", TWO, "--ue", "bob.b", "-q"]) == ExitCode.OK
    rows = [row.split(" UTC ", 1)[1].split() for row in capsys.readouterr().out.splitlines()[1:]]
    assert rows and {row[0] for row in rows} == {"ue2"}  # (after the frame and the date, time and zone)
    systems = {row[1] for row in rows}
    assert systems == {"a.mcx.example", "b.mcx.example"}  # bob.b was only used in B


def test_sessions_ue_and_flow_ue_by_identity_impu_or_address(capsys):
    assert main(["sessions", TWO, "--ue", "sip:bob@a.mcx.example", "-q"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.startswith("ue2  sip:bob@a.mcx.example") and "ue1" not in out
    assert main(["sessions", TWO, "--ue", "491700000001@ims.b.mcx.example", "-q"]) == ExitCode.OK  # an IMPI
    assert capsys.readouterr().out.startswith("ue1  sip:alice@a.mcx.example")
    assert main(["flow", TWO, "--ue", "bob.b", "-q"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("ue2 sip:bob@a.mcx.example")


def test_a_ue_named_ambiguously_or_not_at_all_is_said_on_stderr(capsys):
    assert main(["sessions", TWO, "--ue", "b.mcx.example"]) == ExitCode.OK
    captured = capsys.readouterr()
    assert "--ue b.mcx.example names 2 UE sessions: ue1 (sip:alice@a.mcx.example), ue2" in captured.err
    assert main(["events", TWO, "--ue", "nobody"]) == ExitCode.OK
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and "--ue nobody names no UE session" in captured.err


def test_a_ue_is_found_by_the_impi_its_registration_authenticated_with(tmp_path, capsys):
    """A real IMPI is IMSI-based and shares nothing with the IMPU; the registration event keeps it."""
    from tests.packets import udp_frame, write_pcap

    common = ("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-r1\r\nFrom: <sip:+4915100001@ims.x>;tag=1\r\n"
              "To: <sip:+4915100001@ims.x>{tag}\r\nCall-ID: reg@10.0.0.1\r\nCSeq: 2 REGISTER\r\n")
    register = ("REGISTER sip:ims.x SIP/2.0\r\n" + common.format(tag="") + "Contact: <sip:u@10.0.0.1:5060>;"
                "+sip.instance=\"<urn:gsma:imei:1-2-3>\"\r\nAuthorization: Digest username=\"262011234567890@"
                "ims.mnc001.mcc262.3gppnetwork.org\", realm=\"ims.x\", nonce=\"n\", response=\"r\"\r\n"
                "Expires: 600\r\nContent-Length: 0\r\n\r\n").encode()
    ok = ("SIP/2.0 200 OK\r\n" + common.format(tag=";tag=2") + "Content-Length: 0\r\n\r\n").encode()
    capture = tmp_path / "impi.pcap"
    write_pcap(capture, [udp_frame("10.0.0.1", "10.0.0.2", 5060, 5060, register),
                         udp_frame("10.0.0.2", "10.0.0.1", 5060, 5060, ok)])
    assert main(["sessions", str(capture), "--ue", "262011234567890", "-q"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("ue1  sip:+4915100001@ims.x")
    assert main(["events", str(capture), "--format", "jsonl", "-q"]) == ExitCode.OK
    assert '"impi":"262011234567890@ims.mnc001.mcc262.3gppnetwork.org"' in capsys.readouterr().out
    assert main(["messages", str(capture), "--user", "262011234567890", "-q"]) == ExitCode.OK
    assert frames_listed(capsys.readouterr().out) == [1]
