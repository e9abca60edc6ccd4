"""Publications (RFC 3903, TS 24.379 cl. 9): real SIPp captures of every transition, then scripted PUBLISHes
for the ways a PUBLISH is tied to its publication (entity-tag, then UE and service, never Call-ID)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.base.limits import DEFAULT, Limits
from analyzer.cli import main
from analyzer.engines import DecodeOptions, get_engine
from analyzer.meaning.analysis import analyse_capture
from analyzer.meaning.events.extract import extract_events
from analyzer.messages.decode import to_message
from analyzer.transport.records import Payload

REAL = Path(__file__).resolve().parents[1] / "sample_captures" / "real"
LIFECYCLE = REAL / "sipp-publication-lifecycle-udp.pcap"
EXPIRY = REAL / "sipp-publication-expiry-tcp-ipv6.pcap"
GROUP = "sip:group-{}@mcx.example"


def jsonl_events(capsys, path: Path) -> list[dict]:
    code = main(["events", str(path), "--format", "jsonl"])
    assert code == ExitCode.OK
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def rows(events: list[dict]) -> list[tuple]:
    return [(e["frame"], e["kind"], e["outcome"], e["status"], e["group"]) for e in events]


# --- real captures (sample_captures/real/make_real_captures.sh publications) ---------------------------

def test_sipp_initial_refresh_modify_remove_412_initial(capsys):
    events = jsonl_events(capsys, LIFECYCLE)
    assert rows(events) == [
        (2, "affiliation", "success", 200, GROUP.format("A")),  # initial: A + B
        (2, "affiliation", "success", 200, GROUP.format("B")),  # (refresh, frames 4-5: nothing changes)
        (7, "affiliation", "success", 200, GROUP.format("C")),  # modify: B + C
        (7, "deaffiliation", "success", 200, GROUP.format("A")),
        (9, "deaffiliation", "success", 200, GROUP.format("B")),  # remove: no body, new Call-ID
        (9, "deaffiliation", "success", 200, GROUP.format("C")),
        (11, "affiliation", "failure", 412, GROUP.format("D")),  # modify naming the removed tag
        (13, "affiliation", "success", 200, GROUP.format("D")),  # a new initial publication
    ]
    details = [e["detail"] for e in events]
    assert details[0] == "new publication mcxa-aff-etag-1"
    assert details[2] == "modify of publication mcxa-aff-etag-2 (entity-tag now mcxa-aff-etag-3)"
    assert details[4] == "remove (Expires: 0) of publication mcxa-aff-etag-3"
    assert details[6] == ("412 Conditional Request Failed; modify of entity-tag mcxa-aff-etag-3 (its "
                          "publication was removed 0.2 s before): the server did not know entity-tag "
                          "mcxa-aff-etag-3")
    assert details[7] == "new publication mcxa-aff-etag-4"
    # the remove names no MC identity and has its own Call-ID: the publication's identities carry over
    removes = events[4:6]
    assert {e["call_id"].split("///")[0] for e in removes} == {"affrm"}
    assert {(e["identity"], e["client_id"], e["ue"]) for e in events} == {
        ("sip:alice@mcx.example", "urn:uuid:4c1f2a0e-6b7d-4f3e-9a55-0d2c8e1b7a10", "ue1")}


def test_sipp_transitions_are_a_field_of_the_events():
    a = analyse_capture(str(LIFECYCLE))
    assert [(e.frame, e.transition) for e in a.events] == [
        (2, "initial"), (2, "initial"), (7, "modify"), (7, "modify"), (9, "remove"), (9, "remove"),
        (11, "modify"), (13, "initial")]


def test_sipp_publication_expires_at_its_granted_lifetime_and_poc_settings_is_its_own(capsys):
    events = jsonl_events(capsys, EXPIRY)
    assert rows(events) == [
        (6, "service-authorisation", "success", 200, None),
        (10, "affiliation", "success", 200, GROUP.format("A")),
        (10, "deaffiliation", "success", None, GROUP.format("A")),  # expiry; the log-off (13) ends nothing
    ]
    authorisation, affiliation, expiry = events
    assert authorisation["detail"] == "new publication mcxa-pocset-etag-1"
    assert expiry["detail"] == ("publication mcxa-exp-etag-1 expired: no refresh within the 2 s granted at "
                                "frame 11")
    assert expiry["time"] == pytest.approx(affiliation["end"] + 2)  # Expires: 2 in the 200, not the 60 asked
    assert expiry["frames"] == [10, 11]
    assert {(e["ue"], e["identity"]) for e in events} == {("ue1", "sip:alice@mcx.example")}


def test_sipp_expiry_is_reported_only_when_the_capture_reaches_it():
    affiliation = next(e for e in analyse_capture(str(EXPIRY)).events if e.kind == "affiliation")
    decoded = get_engine("dpkt")(str(EXPIRY), DecodeOptions())
    items = [i for i in decoded.items if i.time < affiliation.end + 1]
    events, _ = extract_events(items)  # the capture ends 1 s after the 200: before the 2 s ran out
    assert [e.kind for e in events] == ["service-authorisation", "affiliation"]
    events, _ = extract_events(items, capture_end=lambda: affiliation.end + 2.5)  # packets go on
    assert [(e.kind, e.transition) for e in events][-1] == ("deaffiliation", "expiry")


# --- scripted PUBLISHes ---------------------------------------------------------------------------------

UE, UE2, SRV_A, SRV_B = "10.0.0.1:5060", "10.0.0.9:5060", "10.1.0.1:5060", "10.2.0.1:5060"
PPS = "P-Preferred-Service: urn:urn-7:3gpp-service.ims.icsi.mcptt"


def pidf(groups, entity="sip:alice@a.example", client="client-1") -> str:
    items = "".join(f'<m:affiliation group="{g}"/>' for g in groups)
    return (f'<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:m="urn:3gpp:ns:mcpttPresInfo:1.0" '
            f'entity="{entity}"><tuple id="{client}"><status>{items}</status></tuple></presence>')


class Script:
    """PUBLISH transactions over UDP: each request and its answer get the next frames, 0.1 s apart."""

    def __init__(self):
        self.frame, self.time, self.items, self.n = 0, 1000.0, [], 0

    def _msg(self, text: str, src: str, dst: str):
        self.frame += 1
        self.time += 0.1
        self.items.append(to_message(Payload(text.encode(), (self.frame,), self.time, src, dst, "udp"))[0])

    def publish(self, *, groups=None, if_match=None, expires=3600, status=200, etag=None, granted=None,
                event="presence", ue=UE, server=SRV_A, domain="a.example", call_id=None, mc=True,
                impu="sip:+100@ims.example", body=None, after=0.0) -> None:
        self.n += 1
        self.time += after
        body = body if body is not None else (pidf(groups) if groups is not None else "")
        lines = [f"PUBLISH sip:mcptt-participating@{domain} SIP/2.0",
                 f"Via: SIP/2.0/UDP {ue};branch=z9hG4bK-{self.n}", f"From: <{impu}>;tag=f{self.n}",
                 f"To: <sip:mcptt-participating@{domain}>", f"Call-ID: {call_id or f'c{self.n}'}",
                 f"CSeq: {self.n} PUBLISH", f"Event: {event}", f"Expires: {expires}",
                 *([PPS] if mc else []), *([f"SIP-If-Match: {if_match}"] if if_match else []),
                 *(["Content-Type: application/pidf+xml"] if body else []), f"Content-Length: {len(body)}"]
        self._msg("\r\n".join(lines) + "\r\n\r\n" + body, ue, server)
        answer = [f"SIP/2.0 {status} Whatever", f"Via: SIP/2.0/UDP {ue};branch=z9hG4bK-{self.n}",
                  f"From: <{impu}>;tag=f{self.n}", f"To: <sip:mcptt-participating@{domain}>;tag=t",
                  f"Call-ID: {call_id or f'c{self.n}'}", f"CSeq: {self.n} PUBLISH",
                  *([f"SIP-ETag: {etag}"] if etag else []),
                  *([f"Expires: {granted if granted is not None else expires}"] if status < 300 else []),
                  "Content-Length: 0"]
        self._msg("\r\n".join(answer) + "\r\n\r\n", server, ue)

    def events(self, end: float | None = None, problems=None, limits: Limits = DEFAULT):
        return extract_events(self.items, capture_end=(lambda: end) if end else None, problems=problems,
                              limits=limits)[0]


def summary(events) -> list[tuple]:
    return [(e.kind, e.outcome, e.group, e.transition) for e in events]


def test_an_unknown_entity_tag_is_said_and_a_remove_of_unknown_groups_is_still_a_deaffiliation():
    s = Script()
    s.publish(if_match="from-yesterday", etag="e2")  # refresh of a publication made before the capture
    s.publish(if_match="e2", expires=0, mc=False)  # remove: its groups were never seen
    [event] = s.events()
    assert summary([event]) == [("deaffiliation", "success", None, "remove")]
    assert event.detail == "remove (Expires: 0) of publication e2: its groups are unknown"
    assert event.frames == (3, 4)


def test_a_412_for_a_tag_never_issued_says_the_server_did_not_know_it():
    s = Script()
    s.publish(groups=["sip:G1@a.example"], if_match="never-issued", status=412)
    [event] = s.events()
    assert summary([event]) == [("affiliation", "failure", "sip:G1@a.example", "modify")]
    assert event.detail == ("412 Whatever; modify of entity-tag never-issued not issued in this capture: the "
                            "server did not know entity-tag never-issued")


def test_an_unknown_tag_is_tied_by_ue_and_service_and_says_so():
    s = Script()
    s.publish(groups=["sip:G1@a.example", "sip:G2@a.example"], etag="e1")
    s.publish(groups=["sip:G1@a.example"], if_match="lost-tag", etag="e2")  # a tag this capture never saw
    events = s.events()
    assert summary(events)[-1] == ("deaffiliation", "success", "sip:G2@a.example", "modify")
    assert events[-1].detail == ("modify of entity-tag lost-tag not issued in this capture, tied by UE and "
                                 "service to publication e1 (entity-tag now e2)")


def test_never_by_call_id_the_entity_tag_names_the_publication():
    s = Script()  # one UE, two services, one Call-ID for everything
    s.publish(groups=["sip:G1@a.example"], etag="ptt", call_id="same")
    s.publish(etag="video", call_id="same", mc=False,
              body=pidf(["sip:V1@a.example"]).replace("mcpttPresInfo", "mcvideoPresInfo"))
    s.publish(if_match="video", expires=0, call_id="same", mc=False)
    removed = [e for e in s.events() if e.kind == "deaffiliation"]
    assert [(e.group, e.service) for e in removed] == [("sip:V1@a.example", "mcvideo")]


def test_the_same_entity_tag_at_two_servers_names_two_publications():
    s = Script()
    s.publish(groups=["sip:G1@a.example"], etag="etag-1")
    s.publish(groups=["sip:G1@b.example"], etag="etag-1", server=SRV_B, domain="b.example")
    s.publish(if_match="etag-1", expires=0, server=SRV_B, domain="b.example", mc=False)
    assert summary(s.events())[-1] == ("deaffiliation", "success", "sip:G1@b.example", "remove")
    assert [e.group for e in s.events() if e.kind == "deaffiliation"] == ["sip:G1@b.example"]


def test_a_failed_remove_changes_nothing():
    s = Script()
    s.publish(groups=["sip:G1@a.example"], etag="e1")
    s.publish(if_match="e1", expires=0, status=500)
    s.publish(if_match="e1", expires=0)
    assert summary(s.events())[1:] == [("deaffiliation", "failure", "sip:G1@a.example", "remove"),
                                       ("deaffiliation", "success", "sip:G1@a.example", "remove")]


def test_a_new_initial_publish_replaces_the_ues_set_and_the_old_publication_never_expires():
    s = Script()
    s.publish(groups=["sip:G1@a.example", "sip:G2@a.example"], etag="e1", expires=5)
    s.publish(groups=["sip:G2@a.example"], etag="e2", expires=3600, call_id="other")  # no SIP-If-Match
    events = s.events(end=s.time + 100)  # far past e1's lifetime
    assert summary(events)[2:] == [("deaffiliation", "success", "sip:G1@a.example", "initial")]
    assert events[-1].detail == ("new publication e2, replacing publication e1 (tied by UE and service, "
                                 "without SIP-If-Match)")


def test_another_ue_on_the_same_address_does_not_replace_the_first_ones_publication():
    s = Script()
    s.publish(groups=["sip:G1@a.example"], etag="e1")
    s.publish(groups=["sip:G1@a.example"], etag="e2", impu="sip:+200@ims.example",
              body=pidf(["sip:G1@a.example"], entity="sip:bob@a.example", client="client-2"))
    events = s.events()
    assert summary(events) == [("affiliation", "success", "sip:G1@a.example", "initial")] * 2
    assert [e.identity for e in events] == ["sip:alice@a.example", "sip:bob@a.example"]


def test_legacy_expires_0_without_if_match_is_tied_by_ue_and_service():
    s = Script()
    s.publish(groups=["sip:G1@a.example"], etag="e1")
    s.publish(expires=0)
    event = s.events()[-1]
    assert summary([event]) == [("deaffiliation", "success", "sip:G1@a.example", "remove")]
    assert "without SIP-If-Match" in event.detail


def test_a_refresh_after_expiry_that_the_server_accepts_brings_the_groups_back():
    s = Script()
    s.publish(groups=["sip:G1@a.example"], etag="e1", expires=10)
    s.publish(if_match="e1", etag="e2", after=11)  # late, but 200
    events = s.events()
    assert summary(events) == [("affiliation", "success", "sip:G1@a.example", "initial"),
                               ("deaffiliation", "success", "sip:G1@a.example", "expiry"),
                               ("affiliation", "success", "sip:G1@a.example", "refresh")]
    assert events[-1].detail.endswith("the server still knew it: its groups count again")


def test_a_refresh_keeps_the_publication_alive():
    s = Script()
    s.publish(groups=["sip:G1@a.example"], etag="e1", expires=10)
    s.publish(if_match="e1", etag="e2", expires=10, after=8)
    s.publish(if_match="e2", etag="e3", expires=10, after=8)
    assert summary(s.events(end=s.time + 5)) == [("affiliation", "success", "sip:G1@a.example", "initial")]
    expired = s.events(end=s.time + 11)[-1]
    assert summary([expired]) == [("deaffiliation", "success", "sip:G1@a.example", "expiry")]
    assert expired.frames == (5, 6)  # the refresh that granted the last lifetime


def test_poc_settings_refresh_and_remove_leave_affiliations_and_authorisation_alone():
    s = Script()
    s.publish(groups=["sip:G1@a.example"], etag="aff")
    s.publish(event="poc-settings", body="<poc-settings/>", etag="pset")
    s.publish(event="poc-settings", if_match="pset", etag="pset2")
    s.publish(event="poc-settings", if_match="pset2", expires=0, mc=False)
    assert [(e.kind, e.transition) for e in s.events()] == [("affiliation", "initial"),
                                                            ("service-authorisation", "initial")]


def test_the_table_is_bounded_and_says_so():
    s = Script()
    for n in range(3):
        s.publish(etag=f"e{n}", impu=f"sip:+{n}@ims.example", ue=f"10.0.0.{n}:5060",
                  body=pidf([f"sip:G{n}@a.example"], entity=f"sip:u{n}@a.example", client=f"c{n}"))
    problems: list = []
    s.events(problems=problems, limits=DEFAULT.with_overrides(["publications=2"]))
    [problem] = problems
    assert problem.code == "table-full" and problem.frames == (5,)
    assert "more than 2 publications" in problem.message and "--limit publications=N" in problem.message


@pytest.mark.parametrize("header", ["Expires: 99999999999999999999999999999", "Expires: ²", "SIP-If-Match:",
                                   "SIP-If-Match: " + "x" * 5000])
def test_hostile_publication_headers_do_not_crash(header):
    s = Script()
    s.publish(groups=["sip:G1@a.example"], etag="e1")
    raw = (f"PUBLISH sip:mcptt-participating@a.example SIP/2.0\r\nVia: SIP/2.0/UDP {UE};branch=z9hG4bK-h\r\n"
           "From: <sip:+100@ims.example>;tag=h\r\nTo: <sip:p@a.example>\r\nCall-ID: h\r\nCSeq: 1 PUBLISH\r\n"
           f"Event: presence\r\n{header}\r\nContent-Length: 0\r\n\r\n")
    s._msg(raw, UE, SRV_A)
    assert summary(s.events())[0] == ("affiliation", "success", "sip:G1@a.example", "initial")
