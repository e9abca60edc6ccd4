"""UE sessions: one device across systems and identity changes, linked by evidence with reasons."""

from analyzer.meaning.events import Event
from analyzer.meaning.sessions import build_sessions

INST_1, INST_2 = "urn:gsma:imei:35209900-176148-1", "urn:gsma:imei:35209900-176148-2"


def ev(kind, time, address, frame, system=None, **ids):
    return Event(kind, time, (frame,), "from-ue", address, "10.0.0.1:5060", "success", system=system, **ids)


def test_migrated_ue_is_one_session_linked_by_instance_and_client_id():
    events = [
        ev("registration", 0.0, "10.1.0.5:5060", 1, "A", impu="sip:+4917@ims.a", instance=INST_1),
        ev("service-authorisation", 0.5, "10.1.0.5:5060", 5, "A", identity="sip:alice@a",
           impu="sip:+4917@ims.a", client_id="c1"),
        ev("registration", 11.0, "10.2.0.7:5060", 40, "B", impu="sip:+4917@ims.b", instance=INST_1),
        ev("service-authorisation", 11.5, "10.2.0.7:5060", 44, "B", identity="sip:alice.b@b", client_id="c1"),
        ev("profile-retrieval", 10.6, "10.2.0.7:40000", 30, "B", identity="sip:alice.b@b"),
    ]
    [session] = build_sessions(events)
    assert session.mc_id("A") == "sip:alice@a" and session.mc_id("B") == "sip:alice.b@b"
    assert set(session.aliases("A")) == {"sip:alice.b@b", "sip:+4917@ims.b"}
    reasons = {(link.b, link.evidence) for link in session.links}
    assert ("sip:+4917@ims.b", "instance") in reasons
    assert [s[0] for s in session.systems] == ["A", "B"]
    assert len(session.events) == 5


def test_two_ues_sharing_an_address_at_different_times_are_not_merged():
    events = [
        ev("registration", 0.0, "10.1.0.5:5060", 1, "A", impu="sip:a@ims", instance=INST_1),
        ev("deregistration", 10.0, "10.1.0.5:5060", 9, "A", impu="sip:a@ims", instance=INST_1),
        ev("registration", 20.0, "10.1.0.5:5060", 12, "A", impu="sip:b@ims", instance=INST_2),
    ]
    sessions = build_sessions(events)
    assert [s.mc_id() for s in sessions] == ["sip:a@ims", "sip:b@ims"]


def test_address_continuity_links_only_without_contradiction_and_within_the_window():
    events = [
        ev("registration", 0.0, "10.1.0.5:5060", 1, "A", impu="sip:a@ims", instance=INST_1),
        ev("profile-retrieval", 30.0, "10.1.0.5:41000", 7, "A", identity="sip:alice@a"),
        ev("profile-retrieval", 900.0, "10.1.0.5:41001", 70, "A", identity="sip:carol@a"),
    ]
    sessions = build_sessions(events, address_window=120)
    assert [s.mc_id() for s in sessions] == ["sip:alice@a", "sip:carol@a"]
    assert any(link.evidence == "address" for link in sessions[0].links)


def test_identity_map_links_what_the_wire_does_not():
    events = [ev("registration", 0.0, "10.1.0.5:5060", 1, "A", impu="sip:a@ims.a"),
              ev("registration", 500.0, "10.2.0.7:5060", 9, "B", impu="sip:a@ims.b")]
    assert len(build_sessions(events)) == 2
    [session] = build_sessions(events, identity_map=[("sip:a@ims.a", "sip:a@ims.b")])
    assert [link.evidence for link in session.links] == ["map"]


def test_events_without_identity_join_the_session_using_their_address():
    events = [ev("registration", 0.0, "10.1.0.5:5060", 1, "A", impu="sip:a@ims", instance=INST_1),
              Event("config-access-encrypted", 5.0, (4,), "from-ue", "10.1.0.5:40000", "10.10.0.20:443",
                    "encrypted", detail="cms.a.mcx.example")]
    [session] = build_sessions(events)
    assert [e.kind for e in session.events] == ["registration", "config-access-encrypted"]
