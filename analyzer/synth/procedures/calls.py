"""Calls: group calls and late entry, private calls, and their end (release with its Reason, leave). A
call is UE-originated (INVITE to a PSI) or server-initiated (INVITE to the UE); either way its dialog and
downlink media stay in the context until a BYE. A pre-established session (TS 24.379 cl. 6.3.3) is a
UE-originated INVITE naming no call; calls ``over: pre-established`` are the UE's REFERs about it, and end
with a REFER whose Refer-To says ``method=BYE``.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from analyzer.synth.floor import mcpc_message, ssrc_of
from analyzer.synth.procedures.context import Answer, Context, Dialog, MediaSpan, to_tag_of
from analyzer.synth.procedures.topology import ACCESS_NETWORK, Leg, host
from analyzer.synth.scenario import RELEASE_REASONS, Step
from analyzer.synth.sip import ALLOW, info_xml, multipart, request, resource_lists_xml, sdp
from analyzer.synth.wire import Datagram, Endpoint


def _session_contact(leg: Leg, uri: str) -> str:
    return f"<{uri}>;isfocus{leg.service.contact_params}"


def _ue_invite(ctx: Context, step: Step, t: float, leg: Leg, psi: str, parts: list, answer_mode: str | None,
               ringing: bool) -> None:
    """A UE-originated call: INVITE to ``psi`` / 100 / (180) / 200 / ACK."""
    s = leg.service
    port = ctx.port()
    offer = sdp(s, leg.ue_ep.ip, ctx.rng.randrange(10**9, 4 * 10**9), port, port + 2, offer=True)
    ctype, body = multipart([((("Content-Type", "application/sdp"),), offer), *parts], ctx.boundary())
    tag, call_id = ctx.tag(), ctx.call_id(host(leg.ue_ep.ip))
    extra = [*ctx.mc_headers(leg)]
    if answer_mode:
        extra.append(("Answer-Mode", answer_mode))
    extra += [("P-Access-Network-Info", ACCESS_NETWORK), ("Allow", ALLOW), ("Supported", "timer")]
    req = ctx.ue_request(leg, "INVITE", psi, f"<{psi}>", call_id, extra, body, ctype, tag=tag)
    prefix = "pc" if step.do == "private-call" else "gc"
    session = f"sip:{prefix}-{ctx.token(6)}@{leg.mc_hostport}"
    rr = ctx.record_route(leg)
    srv_port = ctx.port()
    answer_sdp = sdp(s, leg.system.mc_server, ctx.rng.randrange(10**9, 4 * 10**9), srv_port, srv_port + 2,
                     offer=False, origin="mc-server")
    dialog_headers = (*(("Record-Route", r) for r in rr), ("Contact", _session_contact(leg, session)))
    answers = [Answer(100, ctx.net())]
    if ringing:
        answers.append(Answer(180, ctx.net() + ctx.server() * 2, dialog_headers))
    answers.append(Answer(200, ctx.rng.uniform(0.6, 1.5) if ringing else ctx.net() + ctx.server() * 2,
                          (*dialog_headers, ("P-Asserted-Service", s.icsi), ("Allow", ALLOW)),
                          answer_sdp, "application/sdp"))
    out = ctx.transaction(t, leg, req, True, answers, main=True)
    if out is None or out[1].status >= 300:
        return
    dialog = Dialog(step.id or "", step.do, leg, call_id, f"<{leg.impu}>", tag, f"<{psi}>",
                    to_tag_of(out[1]), leg.contact_uri, session, 1, 0, rr)
    ack = ctx.in_dialog(dialog, "ACK", True, cseq=1)
    t_ack = out[0] + ctx.client()
    ctx.send_sip(t_ack, leg, ack, True)
    dialog.media = MediaSpan(t_ack, Endpoint(leg.system.mc_server, srv_port), Endpoint(leg.ue_ep.ip, port))
    ctx.media.append(dialog.media)
    ctx.dialogs[dialog.name] = dialog


def _server_invite(ctx: Context, step: Step, t: float, leg: Leg, function: str, info: list, answer_mode: str,
                   ringing: bool) -> None:
    """A server-initiated call towards the UE: INVITE / (180) / 200 from the UE / ACK."""
    s = leg.service
    psi = leg.psi(function)
    prefix = "pc" if step.do == "private-call" else "gc"
    session = f"sip:{prefix}-{ctx.token(6)}@{leg.mc_hostport}"
    srv_port = ctx.port()
    offer = sdp(s, leg.system.mc_server, ctx.rng.randrange(10**9, 4 * 10**9), srv_port, srv_port + 2,
                offer=True, origin="mc-server")
    ctype, body = multipart([((("Content-Type", "application/sdp"),), offer),
                             ((("Content-Type", s.info_type),), info_xml(s, info))], ctx.boundary())
    tag, call_id = ctx.tag(), ctx.call_id(host(leg.system.mc_server))
    rr = ctx.record_route(leg)
    headers = [("Via", v) for v in ctx.server_vias(leg)]
    headers += [("Max-Forwards", "69" if leg.system.separate_mc_server else "70"),
                *(("Record-Route", r) for r in rr), ("From", f"<{psi}>;tag={tag}"), ("To", f"<{leg.impu}>"),
                ("Call-ID", call_id), ("CSeq", "1 INVITE"), ("Contact", _session_contact(leg, session)),
                ("P-Asserted-Identity", f"<{psi}>"), ("P-Asserted-Service", s.icsi), *s.accept_contact,
                ("Answer-Mode", answer_mode), ("Allow", ALLOW), ("Supported", "timer")]
    req = request("INVITE", leg.contact_uri, headers, body, ctype)
    port = ctx.port()
    answer_sdp = sdp(s, leg.ue_ep.ip, ctx.rng.randrange(10**9, 4 * 10**9), port, port + 2, offer=False)
    dialog_headers = (*(("Record-Route", r) for r in rr), ("Contact", leg.contact()))
    answers = []
    if ringing:
        answers.append(Answer(180, ctx.client() * 4, dialog_headers))
    answers.append(Answer(200, ctx.rng.uniform(0.8, 2.0) if ringing else ctx.client() * 4,
                          (*dialog_headers, ("Allow", ALLOW)), answer_sdp, "application/sdp"))
    out = ctx.transaction(t, leg, req, False, answers, main=True)
    if out is None or out[1].status >= 300:
        return
    dialog = Dialog(step.id or "", step.do, leg, call_id, f"<{leg.impu}>", to_tag_of(out[1]), f"<{psi}>",
                    tag, leg.contact_uri, session, 0, 1, rr)
    ack = ctx.in_dialog(dialog, "ACK", False, cseq=1)
    t_ack = out[0] + ctx.net()
    ctx.send_sip(t_ack, leg, ack, False)
    dialog.media = MediaSpan(t_ack, Endpoint(leg.system.mc_server, srv_port), Endpoint(leg.ue_ep.ip, port))
    ctx.media.append(dialog.media)
    ctx.dialogs[dialog.name] = dialog


def pre_established(ctx: Context, step: Step, t: float) -> None:
    """INVITE to the participating PSI offering media, with the client ID and no group, peer or type."""
    leg = ctx.leg(step.ue, step.system)
    info = info_xml(leg.service, [("{s}-client-id", "string", leg.ue.client_id)])
    parts = [((("Content-Type", leg.service.info_type),), info)]
    _ue_invite(ctx, step, t, leg, leg.psi("participating"), parts, None, ringing=False)


def _session_of(ctx: Context, step: Step) -> Dialog | None:
    """The UE's latest pre-established session in the step's system still up."""
    return next((d for d in reversed(ctx.dialogs.values()) if d.kind == "pre-established"
                 and d.leg.ue.name == step.ue and d.leg.system.name == step.system), None)


def _refer_headers(session: Dialog, refer_to: str) -> list[tuple[str, str]]:
    """RFC 3515 without an implicit subscription (RFC 4488), about ``session`` (Target-Dialog, RFC 4538)."""
    return [("Refer-To", refer_to), ("Refer-Sub", "false"), ("Require", "norefersub"),
            ("Supported", "norefersub"),
            ("Target-Dialog", f"{session.call_id};local-tag={session.ue_tag};remote-tag={session.srv_tag}")]


def _refer(ctx: Context, step: Step, t: float, session: Dialog, refer_to: str,
           extra: list[tuple[str, str]] = ()):
    leg = session.leg
    headers = [*ctx.mc_headers(leg), *_refer_headers(session, refer_to), ("Referred-By", f"<{leg.impu}>"),
               *extra]
    req = ctx.ue_request(leg, "REFER", session.srv_target, f"<{session.srv_target}>",
                         ctx.call_id(host(leg.ue_ep.ip)), headers)
    return ctx.transaction(t, leg, req, True, [Answer(200, ctx.net() * 2 + ctx.server())], main=True)


def _refer_call(ctx: Context, step: Step, t: float, target: str, parts: list) -> None:
    """A call asked for by REFER: the MC information rides in the Refer-To URI (``body`` URI header)."""
    session = _session_of(ctx, step)
    if session is None:
        ctx.note(f"{step.label}: no pre-established session is up: no REFER sent")
        return
    ctype, body = parts[0][0][0][1], parts[0][1]
    if len(parts) > 1:
        ctype, body = multipart(parts, ctx.boundary())
    refer_to = f"<{target}?Content-Type={quote(ctype, safe='')}&body={quote(body, safe='')}>"
    out = _refer(ctx, step, t, session, refer_to)
    if out is None or out[1].status >= 300:
        return
    ctx.dialogs[step.id or ""] = replace(session, name=step.id or "", kind=step.do, target=target,
                                         session=session, media=None)


#: ``alert:`` of a group call → the MC info element that says so (TS 24.379 annex F).
_ALERTS = {"emergency": "emergency-ind", "imminent-peril": "imminentperil-ind"}


def group_call(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    assert step.group is not None
    alert = [(_ALERTS[step.alert], "boolean", "true")] if step.alert else []
    if step.over == "pre-established":
        info = info_xml(leg.service, [("session-type", "plain", step.type),
                                      ("{s}-request-uri", "uri", step.group),
                                      ("{s}-client-id", "string", leg.ue.client_id), *alert])
        _refer_call(ctx, step, t, step.group, [((("Content-Type", leg.service.info_type),), info)])
    elif step.role == "originate":
        info = info_xml(leg.service, [("session-type", "plain", step.type),
                                      ("{s}-request-uri", "uri", step.group),
                                      ("{s}-client-id", "string", leg.ue.client_id), *alert])
        _ue_invite(ctx, step, t, leg, leg.psi("participating"),
                   [((("Content-Type", leg.service.info_type),), info)], "Auto", ringing=False)
    else:
        _server_invite(ctx, step, t, leg, "participating", [
            ("session-type", "plain", step.type), ("{s}-request-uri", "uri", leg.mc_id),
            ("{s}-calling-group-id", "uri", step.group), *alert], "Auto", ringing=False)


def late_entry(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    assert step.group is not None
    if step.over == "pre-established":
        _connect(ctx, step, t, step.group)
        return
    _server_invite(ctx, step, t, leg, "participating", [
        ("session-type", "plain", "prearranged"), ("{s}-request-uri", "uri", leg.mc_id),
        ("{s}-calling-group-id", "uri", step.group)], "Auto", ringing=False)


def private_call(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    assert step.peer is not None
    mode = step.answer.capitalize()
    if step.role == "originate":
        info = info_xml(leg.service, [("session-type", "plain", "private"),
                                      ("{s}-client-id", "string", leg.ue.client_id)])
        parts = [((("Content-Type", "application/resource-lists+xml"),
                   ("Content-Disposition", "recipient-list")), resource_lists_xml([step.peer])),
                 ((("Content-Type", leg.service.info_type),), info)]
        if step.over == "pre-established":
            _refer_call(ctx, step, t, step.peer, [parts[1], parts[0]])
            return
        _ue_invite(ctx, step, t, leg, leg.psi("private-call"), parts, mode, ringing=step.answer == "manual")
    else:
        _server_invite(ctx, step, t, leg, "private-call", [
            ("session-type", "plain", "private"), ("{s}-request-uri", "uri", leg.mc_id),
            ("{s}-calling-user-id", "uri", step.peer), ("{s}-called-party-id", "uri", leg.mc_id)],
            mode, ringing=step.answer == "manual")


def _bye(ctx: Context, step: Step, t: float, reason: str | None) -> None:
    dialog = ctx.dialogs.pop(step.call or "", None)
    if dialog is None:
        ctx.note(f"call '{step.call}' was never established: nothing to release")
        return
    extra = [("Reason", reason)] if reason else []
    from_ue = step.by == "ue"
    if dialog.session is not None:  # a call made by REFER: released by REFER method=BYE
        if not from_ue:
            _control(ctx, dialog.session, t, "disconnect", 0, session_identity=dialog.target or "")
            return
        _refer(ctx, step, t, dialog.session, f"<{dialog.target};method=BYE>", extra)
        return
    for name, call in list(ctx.dialogs.items()):  # the calls a released session carried end with it
        if call.session is dialog:
            del ctx.dialogs[name]
    req = ctx.in_dialog(dialog, "BYE", from_ue, extra)
    delay = ctx.net() * 2 + (ctx.server() if from_ue else ctx.client())
    ctx.transaction(t, dialog.leg, req, from_ue, [Answer(200, delay)], main=True)
    if dialog.media is not None:
        dialog.media.end = t


def release(ctx: Context, step: Step, t: float) -> None:
    reason = None
    if step.reason or step.reason_text:
        protocol, cause, text = RELEASE_REASONS[step.reason or "migration"]
        text = (step.reason_text or text).replace("\\", "\\\\").replace('"', '\\"')
        reason = f'{protocol};cause={cause};text="{text}"'
    _bye(ctx, step, t, reason)


def leave(ctx: Context, step: Step, t: float) -> None:
    _bye(ctx, step, t, None)


# -- media-plane call control of a pre-established session (TS 24.380 §8.3, RTCP APP "MCPC") ---------------

def _connect(ctx: Context, step: Step, t: float, group: str) -> None:
    """Late entry over a pre-established session: the participating server's Connect (acknowledgement
    asked for) on the session's media-plane control port, and the UE's Acknowledgement. The step's
    ``error`` fault makes it refuse (486: Busy, else Not Accepted); ``no-answer`` keeps it silent."""
    session = _session_of(ctx, step)
    if session is None or session.media is None:
        ctx.note(f"{step.label}: no pre-established session is up: no MCPC Connect sent")
        return
    fault = step.fault
    code = None if fault.no_answer else 0 if fault.error is None else 1 if fault.error == 486 else 2
    _control(ctx, session, t, "connect", code, session_identity=f"sip:gc-{ctx.token(6)}@"
             f"{session.leg.mc_hostport}", group_id=group, answer_state=0)
    if code == 0:
        ctx.dialogs[step.id or ""] = replace(session, name=step.id or "", kind=step.do, target=group,
                                             session=session, media=None)


def _control(ctx: Context, session: Dialog, t: float, message: str, code: int | None,
             **fields: int | str) -> None:
    """An MCPC ``message`` from the server on ``session``'s control port (its media port + 2, as ``sdp``
    writes it) and, unless ``code`` is None, the UE's Acknowledgement with that Reason Code."""
    span = session.media
    assert span is not None
    ue_fc, srv_fc = span.control_ports()
    ctx.sends.append(Datagram(t, srv_fc, ue_fc, mcpc_message(
        message, ssrc_of(session.call_id, "participating-server"), ack=True, **fields)))
    if code is not None:
        ctx.sends.append(Datagram(t + ctx.net() * 2 + ctx.client(), ue_fc, srv_fc, mcpc_message(
            "acknowledgement", ssrc_of(session.call_id, "ue"), reason_code=code)))
