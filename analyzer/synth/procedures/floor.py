"""Floor control in a call (TS 24.380): who talks, as the floor control server and the UE say it over
the floor control ports the call's SDP negotiated (media port + 2 on each side, as ``sip.sdp`` writes).

Floor Idle carries the Floor Indicator (normal call) beside its sequence number, as servers send it (and
as Wireshark 4.0 wants it: it reports a Floor Idle with the sequence number alone as malformed).

``by: ue`` — the UE asks (Floor Request), is granted (Floor Granted, with its SSRC), talks (uplink RTP
with that SSRC), releases (Floor Release) and the server says the floor is free (Floor Idle).
``by: server`` — another participant talks: Floor Taken (with the talker's SSRC, which the downlink RTP
of the call then carries), then Floor Idle. SSRCs are derived from the Call-ID, so scenarios without
floor steps draw the same random numbers as before. A call made over a pre-established session (by REFER,
or joined by an MCPC Connect) has its floor control on the session's ports.
"""

from __future__ import annotations

from analyzer.synth.floor import floor_message, rtp_packet, ssrc_of
from analyzer.synth.procedures.context import Context
from analyzer.synth.scenario import Step
from analyzer.synth.wire import Datagram

TALK = 1.0  # seconds of talk burst
_INTERVAL = 0.020  # one RTP packet per 20 ms


def floor(ctx: Context, step: Step, t: float) -> None:
    dialog = ctx.dialogs.get(step.call or "")
    span = None
    if dialog is not None:  # a call over a pre-established session: floor control on the session's ports
        span = dialog.session.media if dialog.session is not None else dialog.media
    if dialog is None or span is None:
        ctx.note(f"call '{step.call}' is not established: no floor control")
        return
    leg = dialog.leg
    ue_fc, srv_fc = span.control_ports()
    server = ssrc_of(dialog.call_id, "floor-control-server")
    sends = ctx.sends
    if step.by == "ue":
        ue = ssrc_of(dialog.call_id, "ue")
        sends.append(Datagram(t, ue_fc, srv_fc, floor_message("floor-request", ue, priority=7,
                                                               user_id=leg.mc_id)))
        granted = t + ctx.net() * 2 + ctx.server()
        sends.append(Datagram(granted, srv_fc, ue_fc, floor_message(
            "floor-granted", server, duration=30, ssrc=ue, priority=7, sequence_number=1)))
        start = granted + ctx.client()
        count = int(TALK / _INTERVAL)
        for n in range(count):
            sends.append(Datagram(start + n * _INTERVAL, span.dst, span.src,
                                  rtp_packet(ue, n, n * 160, 0, 160)))
        released = start + count * _INTERVAL
        sends.append(Datagram(released, ue_fc, srv_fc, floor_message("floor-release", ue, user_id=leg.mc_id)))
        sends.append(Datagram(released + ctx.net() * 2 + ctx.server(), srv_fc, ue_fc,
                              floor_message("floor-idle", server, sequence_number=2, floor_indicator=0x8000)))
        return
    talker = ssrc_of(dialog.call_id, "talker")
    span.ssrc = talker  # the downlink RTP (``noise``) carries the talker's SSRC
    party = step.peer or f"sip:talker@{leg.system.domain}"
    sends.append(Datagram(t, srv_fc, ue_fc, floor_message("floor-taken", server, granted_party=party,
                                                          ssrc=talker, sequence_number=1)))
    sends.append(Datagram(t + TALK, srv_fc, ue_fc, floor_message("floor-idle", server, sequence_number=2,
                                                                 floor_indicator=0x8000)))
