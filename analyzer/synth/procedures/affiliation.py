"""Affiliation: the subscription to the UE's own affiliation status (SUBSCRIBE / NOTIFY), and the PUBLISH
of the full affiliated set that affiliates and de-affiliates, each followed by the server's NOTIFY.
"""

from __future__ import annotations

from analyzer.synth.procedures.context import PUBLISH_EXPIRES, Answer, Context, Dialog, to_tag_of
from analyzer.synth.procedures.topology import Leg, host
from analyzer.synth.scenario import Step
from analyzer.synth.sip import SipMessage, info_xml, multipart, pidf_affiliation, pidf_status

SUBSCRIBE_EXPIRES = 3600


def _notify(ctx: Context, dialog: Dialog, t: float, entries: list[tuple[str, str, str]],
            state: str = "active") -> float:
    leg = dialog.leg
    body = pidf_status(leg.service, leg.mc_id, leg.ue.client_id, entries)
    remaining = SUBSCRIBE_EXPIRES - 1
    req = ctx.in_dialog(dialog, "NOTIFY", False, [
        ("Contact", f"<{dialog.srv_target}>"), ("Event", "presence"),
        ("Subscription-State", f"{state};expires={remaining}" if state == "active" else state)],
        body, "application/pidf+xml")
    out = ctx.transaction(t, leg, req, False, [Answer(200, ctx.net() + ctx.client())])
    assert out is not None
    return out[0]


def _subscribe(ctx: Context, leg: Leg, t: float) -> float | None:
    """SUBSCRIBE to the UE's own affiliation status; the initial NOTIFY carries the current state."""
    psi = leg.psi("participating")
    s = leg.service
    body = info_xml(s, [("{s}-request-uri", "uri", leg.mc_id), ("{s}-client-id", "string", leg.ue.client_id)])
    tag = ctx.tag()
    call_id = ctx.call_id(host(leg.ue_ep.ip))
    extra = [*ctx.mc_headers(leg), ("Event", "presence"), ("Accept", "application/pidf+xml"),
             ("Expires", str(SUBSCRIBE_EXPIRES))]
    req = ctx.ue_request(leg, "SUBSCRIBE", psi, f"<{psi}>", call_id, extra, body, s.info_type, tag=tag)
    target = f"sip:{s.name}-participating@{leg.mc_hostport}"
    rr = ctx.record_route(leg)
    ok = Answer(200, ctx.net() * 2 + ctx.server(),
                (*(("Record-Route", r) for r in rr), ("Contact", f"<{target}>"),
                 ("Expires", str(SUBSCRIBE_EXPIRES))))
    out = ctx.transaction(t, leg, req, True, [ok])
    assert out is not None
    dialog = Dialog("presence", "subscription", leg, call_id, f"<{leg.impu}>", tag, f"<{psi}>",
                    to_tag_of(out[1]), leg.contact_uri, target, 1, 0, rr)
    ctx.subs[(leg.ue.name, leg.system.name)] = dialog
    current = ctx.affiliated.get((leg.ue.name, leg.system.name), ())
    expires = ctx.iso(out[0] + SUBSCRIBE_EXPIRES)
    return _notify(ctx, dialog, out[0] + ctx.rng.uniform(0.005, 0.03),
                   [(g, "affiliated", expires) for g in current])


def _publish_presence(ctx: Context, leg: Leg, t: float, groups: tuple[str, ...],
                      clear: bool = False) -> tuple[float, SipMessage] | None:
    key = (leg.ue.name, leg.system.name, "presence")
    s = leg.service
    extra = [*ctx.mc_headers(leg), ("Event", "presence"), ("Expires", "0" if clear else str(PUBLISH_EXPIRES))]
    if key in ctx.etags:
        extra.append(("SIP-If-Match", ctx.etags[key]))
    body, ctype = b"", None
    if not clear:
        pidf = pidf_affiliation(s, leg.mc_id, leg.ue.client_id, groups,
                                f"{leg.user.lstrip('+')}-{int(ctx.scenario.start + t)}")
        info = info_xml(s, [("{s}-request-uri", "uri", leg.mc_id),
                            ("{s}-client-id", "string", leg.ue.client_id)])
        ctype, body = multipart([((("Content-Type", "application/pidf+xml"),), pidf),
                                 ((("Content-Type", s.info_type),), info)], ctx.boundary())
    psi = leg.psi("participating")
    req = ctx.ue_request(leg, "PUBLISH", psi, f"<{psi}>", ctx.call_id(host(leg.ue_ep.ip)), extra, body, ctype)
    etag = ctx.token(12)
    headers = (("SIP-ETag", etag), ("Expires", "0" if clear else str(PUBLISH_EXPIRES)))
    out = ctx.transaction(t, leg, req, True, [Answer(200, ctx.net() * 2 + ctx.server(), headers)], main=True)
    if out is not None and out[1].status < 300:
        if clear:
            ctx.etags.pop(key, None)
        else:
            ctx.etags[key] = etag
    return out


def affiliate(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    key = (step.ue, step.system)
    if key not in ctx.subs:
        t = (_subscribe(ctx, leg, t) or t) + ctx.rng.uniform(0.02, 0.1)
    current = ctx.affiliated.get(key, ())
    wanted = current + tuple(g for g in step.groups if g not in current)
    out = _publish_presence(ctx, leg, t, wanted)
    if out is None or out[1].status >= 300:
        return
    ctx.affiliated[key] = wanted
    expires = ctx.iso(out[0] + SUBSCRIBE_EXPIRES)
    _notify(ctx, ctx.subs[key], out[0] + ctx.rng.uniform(0.02, 0.08),
            [(g, "affiliated", expires) for g in wanted])


def deaffiliate(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    key = (step.ue, step.system)
    current = ctx.affiliated.get(key, ())
    remaining = () if step.all else tuple(g for g in current if g not in step.groups)
    removed = tuple(g for g in current if g not in remaining) + tuple(
        g for g in step.groups if g not in current)
    out = _publish_presence(ctx, leg, t, remaining, clear=step.all)
    if out is None or out[1].status >= 300:
        return
    ctx.affiliated[key] = remaining
    if key not in ctx.subs:
        ctx.note("no affiliation status subscription: no NOTIFY follows")
        return
    expires = ctx.iso(out[0] + SUBSCRIBE_EXPIRES)
    entries = [(g, "affiliated", expires) for g in remaining] + [(g, "deaffiliating", ctx.iso(out[0]))
                                                                 for g in removed]
    _notify(ctx, ctx.subs[key], out[0] + ctx.rng.uniform(0.02, 0.08), entries)
