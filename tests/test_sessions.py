"""UE sessions: one device across systems and identity changes, linked by evidence with reasons."""

from dataclasses import replace

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


def test_an_address_was_used_until_the_latest_moment_any_event_there_shows():
    """An answer stamped before its request (a clock stepped back) does not end the use of the address
    early, whichever way the identities were merged: the TLS hello 6 s after the request joins them."""
    events = [
        ev("registration", 45.0, "10.1.0.5:40000", 8, "A", identity="sip:bob@a"),
        Event("registration", 50.0, (1,), "from-ue", "10.1.0.5:5060", "10.0.0.1:5060", "success", end=45.0,
              system="B", identity="sip:bob.b@b"),
        Event("config-access-encrypted", 56.0, (4,), "from-ue", "10.1.0.5:41000", "10.9.0.2:443",
              "encrypted"),
    ]
    [session] = build_sessions(events, address_window=10)
    assert len(session.events) == 3 and [link.evidence for link in session.links] == ["address"]


def test_a_session_is_whole_as_soon_as_its_last_event_is_read():
    """What lets a long capture be judged a UE at a time: the linker keeps a key per event, and routing
    gives each session once its last event is in, before the events of later UEs are read."""
    from analyzer.meaning.sessions import SessionLinker

    events = [ev("registration", 10.0 * i + j, f"10.1.0.{i}:5060", 10 * i + j + 1, "A", impu=f"sip:{i}@ims",
                 instance=f"urn:imei:{i}") for i in range(3) for j in range(3)]
    linker = SessionLinker()
    for e in events:
        linker.add(e)
    linked = linker.close()
    assert [s.events for s in linked.sessions] == [(), (), ()] and linked.counts == [3, 3, 3]
    unfilled = list(linked.sessions)
    read = []
    filled = linked.filled(e for e in events if not read.append(e))
    assert next(filled)[0] == 0 and len(read) == 3
    assert [(number, len(s.events), s.mc_id()) for number, s in filled] == [(1, 3, "sip:1@ims"),
                                                                             (2, 3, "sip:2@ims")]
    assert linked.sessions == [None, None, None]  # (each let go of once given: judged, it is not needed)
    assert build_sessions(events) == [replace(s, events=tuple(events[3 * i:3 * i + 3]))
                                      for i, s in enumerate(unfilled)]


def test_random_events_fall_each_in_one_session_in_order_and_streaming_gives_the_same_sessions():
    import random

    from analyzer.meaning.sessions import SessionLinker

    rng = random.Random(5)
    for _ in range(200):
        events = []
        for frame in range(1, rng.randint(1, 60)):
            ids = {key: f"{key}{rng.randint(1, 6)}" for key in ("instance", "client_id", "identity", "impu")
                   if rng.random() < 0.35}
            end = None if rng.random() < 0.5 else rng.uniform(0, 900)
            events.append(Event("registration", rng.uniform(0, 900), (frame,), "from-ue",
                                f"10.0.0.{rng.randint(1, 4)}:5060", "10.9.9.9:5060", "success", end=end,
                                system=rng.choice((None, "A", "B")), **ids))
        sessions = build_sessions(events, address_window=rng.choice((10.0, 120.0)), max_identities=8)
        assert sorted(id(e) for s in sessions for e in s.events) == sorted(map(id, events))
        assert all(list(s.events) == sorted(s.events, key=lambda e: (e.time, e.frame)) for s in sessions)
        firsts = [(s.events[0].time, s.events[0].frame) for s in sessions]
        assert firsts == sorted(firsts)
        ordered = sorted(events, key=lambda e: (e.time, e.frame))
        linker = SessionLinker(address_window=10.0, max_identities=8)
        for e in ordered:
            linker.add(e)
        linked = linker.close()
        streamed = dict(linked.filled(ordered))
        assert [streamed[i] for i in range(len(streamed))] == build_sessions(events, address_window=10.0,
                                                                              max_identities=8)


def test_the_linker_keeps_one_group_per_device_as_soon_as_its_identities_are_linked():
    """What keeps linking a 20,000-UE capture small: the events naming an IMPU and those naming the MC
    service ID add up apart only until one message names both."""
    from analyzer.meaning.sessions import SessionLinker

    linker = SessionLinker()
    linker.add(ev("registration", 1.0, "10.1.0.1:5060", 1, "A", impu="sip:alice@ims"))
    linker.add(ev("affiliation", 2.0, "10.1.0.1:5060", 2, "A", identity="sip:alice@mcptt"))
    assert len(linker.groups) == 2
    linker.add(ev("affiliation", 3.0, "10.1.0.1:5060", 3, "A", identity="sip:alice@mcptt",
                  impu="sip:alice@ims"))
    [group] = linker.groups.values()
    assert group.count == 3 and group.tokens == {"impu:sip:alice@ims", "mc-id:sip:alice@mcptt"}
    [session] = linker.close().sessions
    assert [link.reason for link in session.links] == ["named together in one message in affiliation "
                                                       "(frame 3)"]


def test_two_users_of_one_system_reaching_it_from_one_address_stay_two_sessions():
    """A core-side capture: the MC server sees every UE's SIP come from one IMS core address, back to back.
    Two MC service IDs of one service in one system are two users (a device is one user there at a time):
    the address is shared, and joins nobody there — not even an ID of the partner system that follows
    (whose user it is, the address cannot tell); the UE's own address still links its migration."""
    core = "10.9.9.9:5060"
    events = [ev("registration", 1.0, core, 1, "A", impu="sip:alice@ims", identity="sip:alice@a"),
              ev("registration", 2.0, core, 2, "A", impu="sip:bob@ims", identity="sip:bob@a"),
              ev("registration", 3.0, core, 3, "B", identity="sip:bob.b@b")]
    sessions = build_sessions(events, address_window=10)
    assert [[i.value for i in s.identities] for s in sessions] == [
        ["sip:alice@ims", "sip:alice@a"], ["sip:bob@ims", "sip:bob@a"], ["sip:bob.b@b"]]
    own = [ev("registration", 1.0, "10.1.0.7:5060", 1, "A", impu="sip:bob@ims", identity="sip:bob@a"),
           ev("registration", 3.0, "10.1.0.7:5060", 3, "B", identity="sip:bob.b@b")]
    [session] = build_sessions(own, address_window=10)
    assert [link.evidence for link in session.links] == ["message", "address"]


def test_two_identities_already_joined_at_one_address_do_not_make_the_next_address_look_shared():
    """Joined at their first address, a device's two identities meet again at its next one: that is one
    device, not two, and the partner-system identity that follows there still joins it."""
    events = [ev("registration", 0.0, "10.1.0.5:5060", 1, "A", impu="sip:x@ims", instance=INST_1),
              ev("affiliation", 1.0, "10.1.0.5:5060", 2, "A", identity="sip:y@a"),
              ev("registration", 2.0, "10.1.0.6:5060", 3, "A", impu="sip:x@ims"),
              ev("affiliation", 3.0, "10.1.0.6:5060", 4, "A", identity="sip:y@a"),
              ev("affiliation", 4.0, "10.1.0.6:5060", 5, "B", identity="sip:z@b")]
    [session] = build_sessions(events, address_window=10)
    assert [link.evidence for link in session.links] == ["instance", "address", "address"]
