"""Scenario files for ``mcxa synth``: the format (this docstring), the model, the loader and its checks.

A scenario is YAML with a closed vocabulary; an unknown key, an unknown ``do:``, a reference to an unknown
system, UE or call, times out of order, or a missing identity is an ``InputError`` naming file, line and key.
``analyzer/synth/examples/migration.yaml`` uses every procedure. Modules: ``model`` (records and
vocabulary), ``checks`` (shared value checks), ``timeline`` (steps and faults), ``loader`` (the rest, and
``load_scenario``); each imports only those before it.

Format::

    name: group-call migration, compliant        # free text (default: the file name)
    seed: 1                                      # RNG seed: tags, branches, Call-IDs, ports (default 0)
    start: 2026-05-01T10:00:00Z                  # capture start (default 2026-01-01T00:00:00Z)
    systems:                                     # MC systems, by a short name
      A:
        domain: a.mcx.example                    # SIP domain; PSIs and session identities live here
        primary: true                            # at most one primary; the others are partners
        sip_server: 10.10.0.10                   # P-CSCF / SIP core the UEs talk to (IPv4 or IPv6)
        mc_server: 10.10.0.11                    # optional MC server (default: sip_server). When it
                                                 #   differs, the SIP core record-routes and adds its Via
        cms: cms.a.mcx.example                   # optional configuration management server host name
        cms_address: 10.10.0.20                  #   and address (both needed by profile-retrieval)
        idms: idms.a.mcx.example                 # optional IdM server host name and address
        idms_address: 10.10.0.21                 #   (both needed by token)
    ues:
      ue1:
        instance: urn:gsma:imei:35209900-176148-1    # +sip.instance in the REGISTER Contact
        client_id: ue1-mcptt-client                # mcptt-client-id
        transport: udp                             # udp | tcp: SIP transport (default udp)
        service: mcptt                             # mcptt | mcvideo (default mcptt)
        user_agent: Vendor-X MCPTT/4.2             # optional User-Agent
        ipsec: esp-null                            # optional: its SIP with the P-CSCF in IPsec ESP (NULL
                                                   #   encryption, HMAC-SHA1-96; UDP only); synth writes
                                                   #   the SAs beside the capture (NAME.esp-sa, --esp-sa)
        identities:                                # one per system the UE uses
          A: {mc_id: sip:alice@a.mcx.example, impu: sip:+491700000001@ims.a.mcx.example, address: 10.1.0.5}
          B: {mc_id: sip:alice.b@b.mcx.example, impu: sip:+491700000001@ims.b.mcx.example,
              address: 10.2.0.7, port: 5062}     # port: SIP port of the UE (default 5060);
                                                 # impi: optional (default: the IMPU without scheme)
    noise: {rtp_streams: 2, options_interval: 5.0}   # optional background (see below)
    truncate_at: 30.0                                # optional: the capture ends here (s from start)
    timeline:                                        # in time order; `at` = seconds from start
      - {at: 0.0, ue: ue1, do: register, system: A}

Procedures (``do:``), with the keys each takes besides ``at``, ``ue``, ``do`` and ``fault``:

=====================  =================================  ==================================================
do                     keys                               on the wire
=====================  =================================  ==================================================
register               system                             REGISTER / 401 (Digest AKAv1-MD5) / REGISTER with
                                                          Authorization (same Call-ID, CSeq+1) / 200
deregister             system                             REGISTER Expires: 0 / 200 (TCP: the UE closes)
service-authorisation  system                             PUBLISH Event: poc-settings (mcptt-info with the
                                                          access token + poc-settings) / 200 with SIP-ETag
affiliate              system, groups                     first time per system: SUBSCRIBE Event: presence /
                                                          200 / NOTIFY / 200; then PUBLISH Event: presence
                                                          listing the FULL set (old + new groups) / 200, and
                                                          NOTIFY (status affiliated) / 200
deaffiliate            system, groups | all: true         PUBLISH with the remaining set (``all``: PUBLISH
                                                          Expires: 0) / 200, NOTIFY (removed groups
                                                          ``deaffiliating``) / 200
pre-established        system, id                         a session with the participating server ahead of
                                                          any call (24.379 cl. 6.3.3): UE INVITE to the
                                                          participating PSI (SDP + mcptt-info with the
                                                          client ID only) / 100 / 200 / ACK
group-call             system, group, id, type, role,     type prearranged | chat; role originate: UE INVITE /
                       over, alert                        100 / 200 / ACK; role receive: the server INVITEs
                                                          the UE (isfocus, mcptt-calling-group-id) / 200 /
                                                          ACK. ``over: pre-established`` (role originate):
                                                          REFER to the session's identity, Target-Dialog
                                                          naming it, Refer-Sub: false, Require: norefersub,
                                                          Refer-To <group?Content-Type=…&body=mcptt-info>
                                                          / 200 (default over: on-demand). ``alert:
                                                          emergency | imminent-peril`` sets emergency-ind /
                                                          imminentperil-ind in the MC info
late-entry             system, group, id, over            server-initiated INVITE (Answer-Mode: Auto,
                                                          mcptt-calling-group-id) / 200 / ACK; over
                                                          pre-established: MCPC Connect / Acknowledgement
private-call           system, peer, id, role, answer,    role originate: INVITE to the private-call PSI
                       over                               (resource-lists recipient-list + session-type
                                                          private) / 100 / 180 / 200 / ACK; receive: server
                                                          INVITE / 180 / 200 / ACK; answer auto | manual
                                                          (default manual; auto: no 180). ``over:
                                                          pre-established``: a REFER as for group-call, its
                                                          Refer-To body a multipart (mcptt-info +
                                                          recipient list) / 200
release                call, reason, reason_text, by      BYE / 200 in the private call's (or the
                                                          pre-established session's) dialog; with
                                                          ``reason: migration`` a ``Reason: SIP;cause=200;
                                                          text="MC migration"`` header (``reason_text``
                                                          replaces the text); by ue | server (default ue)
leave                  call, by                           BYE / 200 in a group call's dialog
token                  system, over                       POST /token to the IdMS (OIDC code exchange) / 200
                                                          JSON; over http | https (default https: TLS only)
profile-retrieval      system, over                       GET /xcap-root/org.3gpp.mcptt.user-profile/users/
                                                          <MC ID>/mcptt-user-profile.xml with Bearer token /
                                                          200 + ETag (304 when repeated); over as for token
options                system                             OPTIONS / 200 (one keep-alive)
floor                  call, by, peer                     TS 24.380 floor control on the call's floor ports
                                                          (each side's media port + 2): by ue: Floor Request
                                                          / Granted (the UE's SSRC) / 1 s of uplink RTP with
                                                          it / Release / Idle; by server (another talks,
                                                          ``peer`` or sip:talker@domain): Floor Taken (the
                                                          talker's SSRC, which the call's downlink RTP then
                                                          carries) / 1 s later Idle. Faults: omit, delay,
                                                          reorder only
=====================  =================================  ==================================================

``release``, ``leave`` and ``floor`` take their system from the call. A call ``id`` is unique in the file
and a ``call:`` must name one set up by an earlier step of the same UE (``release``: a private call or a
pre-established session; ``leave``: a group call or late entry; ``floor``: any call). When the call never
got established (its step omitted or failed), nothing is sent and ``SynthResult.notes`` says so.
Pre-established sessions: a call ``over: pre-established`` rides on the UE's latest session set up by an
earlier ``pre-established`` step in the same system (the loader refuses one without). Its ``release`` or
``leave`` (by ue) is a REFER whose Refer-To says ``method=BYE`` (with the release's Reason header); by
server, an MCPC Disconnect (TS 24.380 §8.3) on the session's control port (its media port + 2), which the
UE acknowledges. A ``late-entry`` ``over: pre-established`` is the server's MCPC Connect there (session
identity, group, answer state unconfirmed, acknowledgement asked for) and the UE's Acknowledgement; its
faults: ``error`` (486: Busy, another status: Not Accepted), ``no-answer`` (no Acknowledgement), omit,
delay, reorder. Releasing the session itself is a BYE, which ends the call it carried. Implicit
affiliation needs no step: a chat ``group-call`` with no ``affiliate`` before it is what a client that
relies on it sends.

Faults (``fault:`` on a step; several keys may be combined):

- ``fault: omit`` (or ``{omit: true}``): the step never happens.
- ``{delay: S}``: the step happens S seconds after ``at``.
- ``{reorder: before-previous}``: the step swaps times with the previous step (the only way to make the
  timeline go backwards; steps are still *built* in file order).
- ``{error: NNN, warning: "NNN text"}``: the step's main transaction gets this final response (SIP 300–699,
  HTTP 300–599), with ``Warning: 399 <domain> "NNN text"``; a private-call 480 gets the 24.379 default
  ``110 user declined the call invitation``. No retry; nothing that depends on the step follows.
- ``{no-answer: true}``: the main request is never answered; over UDP it is retransmitted per RFC 3261
  timer A/E (0.5, 1, 2, 4 … s; INVITE doubling, others capped at 4 s) until timer B/F (32 s).
- ``{retransmit: N}``: UDP only: the main request is sent N+1 times (T1 doubling) and answered once.
- ``{split: N}``: TCP only (SIP over TCP, or HTTP): every message of the step spans at least N segments.

The main transaction is the authenticated REGISTER (register), the de-REGISTER, the PUBLISH (service
authorisation, affiliate, deaffiliate), the INVITE (calls, pre-established), the REFER (calls over a
pre-established session and their release), the BYE (release, leave), the HTTP request (token, profile
retrieval) and the OPTIONS.

Noise: ``rtp_streams: N`` adds N one-way RTP streams (v2, PCMU, 160-byte payload, 20 ms, even ports):
first the downlink media of established calls, for as long as they last; then random UE ↔ MC server
pairs for the whole capture. ``options_interval: S`` makes every registered UE send an OPTIONS keep-alive
every S seconds while registered. Both are SIP/RTP on the wire like everything else.

Bounds (a scenario always makes a capture a machine can write and read): ``start`` from 1970 to 2100;
``at``, ``delay`` and ``truncate_at`` at most 30 days; ``rtp_streams`` at most 1000; ``options_interval``
at least 0.001 s.
"""

from analyzer.synth.scenario.loader import load_scenario, parse_scenario
from analyzer.synth.scenario.model import (
    NO_FAULT,
    RELEASE_REASONS,
    STEP_KINDS,
    Fault,
    Identity,
    Noise,
    Scenario,
    Step,
    StepKind,
    System,
    Ue,
)

__all__ = ["NO_FAULT", "RELEASE_REASONS", "STEP_KINDS", "Fault", "Identity", "Noise", "Scenario", "Step",
           "StepKind", "System", "Ue", "load_scenario", "parse_scenario"]
