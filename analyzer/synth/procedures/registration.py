"""Registration and service authorisation: REGISTER with its IMS AKA Digest challenge, de-REGISTER, and
the PUBLISH of poc-settings that carries the access token.
"""

from __future__ import annotations

import base64
import hashlib
import random

from analyzer.synth import http as H
from analyzer.synth.procedures.context import PUBLISH_EXPIRES, Answer, Context, Registration
from analyzer.synth.procedures.topology import ACCESS_NETWORK, Leg, host
from analyzer.synth.scenario import Step
from analyzer.synth.sip import ALLOW, SipMessage, info_xml, multipart, poc_settings_xml, request
from analyzer.synth.wire import StreamClose

REGISTER_EXPIRES = 600000


def _digest(leg: Leg, nonce: str, method: str, nc: int, rng: random.Random) -> str:
    realm = leg.ims_domain
    cnonce = f"{rng.getrandbits(64):016x}"
    res = rng.randbytes(8).hex()  # AKA RES stands in for the password
    ha1 = hashlib.md5(f"{leg.impi}:{realm}:{res}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:sip:{realm}".encode()).hexdigest()
    answer = hashlib.md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (f'Digest username="{leg.impi}",realm="{realm}",uri="sip:{realm}",nonce="{nonce}",'
            f'response="{answer}",algorithm=AKAv1-MD5,cnonce="{cnonce}",qop=auth,nc={nc:08x}')


def _empty_digest(leg: Leg) -> str:
    """The IMS initial REGISTER's Authorization: no credentials yet, but the IMPI for the S-CSCF."""
    realm = leg.ims_domain
    return f'Digest username="{leg.impi}",realm="{realm}",uri="sip:{realm}",nonce="",response=""'


def _register_request(ctx: Context, leg: Leg, reg: Registration, expires: int,
                      authorization: str) -> SipMessage:
    reg.cseq += 1
    extra = [("Contact", leg.contact(register=True, expires=expires)), ("Authorization", authorization),
             ("Expires", str(expires)), ("Supported", "path,gruu"), ("P-Access-Network-Info", ACCESS_NETWORK),
             ("Allow", ALLOW), ("User-Agent", leg.user_agent)]
    headers = [("Via", ctx.ue_via(leg)), ("Max-Forwards", "70"),
               ("From", f"<{leg.impu}>;tag={reg.tag}"), ("To", f"<{leg.impu}>"), ("Call-ID", reg.call_id),
               ("CSeq", f"{reg.cseq} REGISTER"), *extra]
    return request("REGISTER", f"sip:{leg.ims_domain}", headers)


def _register_ok(ctx: Context, leg: Leg, t: float, expires: int) -> Answer:
    headers = [("Contact", leg.contact(register=True, expires=expires))]
    if expires:
        headers += [("P-Associated-URI", f"<{leg.impu}>"),
                    ("Service-Route", f"<sip:orig@scscf.{leg.ims_domain};lr>")]
    headers += [("Date", H.http_date(ctx.scenario.start + t)), ("Expires", str(expires))]
    return Answer(200, ctx.net() * 2 + ctx.server(), tuple(headers))


def register(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    key = (step.ue, step.system)
    reg = ctx.regs.get(key) or Registration(ctx.call_id(host(leg.ue_ep.ip)), ctx.tag())
    realm = leg.ims_domain
    first = _register_request(ctx, leg, reg, REGISTER_EXPIRES, _empty_digest(leg))
    nonce = base64.b64encode(ctx.rng.randbytes(32)).decode()
    challenge = Answer(401, ctx.net() * 2 + ctx.server(), (
        ("WWW-Authenticate", f'Digest realm="{realm}",nonce="{nonce}",algorithm=AKAv1-MD5,qop="auth"'),))
    out = ctx.transaction(t, leg, first, True, [challenge])
    assert out is not None
    t2 = out[0] + ctx.client() + 0.01  # the UE runs AKA on the (U)SIM
    reg.nonce, reg.nc = nonce, 1
    second = _register_request(ctx, leg, reg, REGISTER_EXPIRES, _digest(leg, nonce, "REGISTER", 1, ctx.rng))
    out = ctx.transaction(t2, leg, second, True, [_register_ok(ctx, leg, t2, REGISTER_EXPIRES)], main=True)
    if out is None or out[1].status >= 300:
        ctx.regs.pop(key, None)
        return
    ctx.regs[key] = reg
    if not any(r[0] == step.ue and r[1] == step.system and r[3] is None for r in ctx.registered):
        ctx.registered.append([step.ue, step.system, out[0], None])


def deregister(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    key = (step.ue, step.system)
    reg = ctx.regs.get(key)
    if reg is None:
        ctx.note("UE not registered in this system; the de-REGISTER goes out anyway")
        reg = Registration(ctx.call_id(host(leg.ue_ep.ip)), ctx.tag())
    if reg.nonce:
        reg.nc += 1
        auth = _digest(leg, reg.nonce, "REGISTER", reg.nc, ctx.rng)
    else:
        auth = _empty_digest(leg)
    req = _register_request(ctx, leg, reg, 0, auth)
    out = ctx.transaction(t, leg, req, True, [_register_ok(ctx, leg, t, 0)], main=True)
    for entry in ctx.registered:
        if entry[0] == step.ue and entry[1] == step.system and entry[3] is None:
            entry[3] = t
    if out is not None and out[1].status < 300:
        ctx.regs.pop(key, None)
        ctx.subs.pop(key, None)
        ctx.affiliated.pop(key, None)
        if leg.link is not None:
            ctx.sends.append(StreamClose(out[0] + ctx.rng.uniform(0.1, 0.3), leg.link, True))


# -- service authorisation -------------------------------------------------------------------------------

def service_authorisation(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    s = leg.service
    info = info_xml(s, [("{s}-access-token", "string", ctx.access_token(leg, t)),
                        ("{s}-request-uri", "uri", leg.mc_id), ("{s}-client-id", "string", leg.ue.client_id)])
    ctype, body = multipart([((("Content-Type", s.info_type),), info),
                             ((("Content-Type", "application/poc-settings+xml"),),
                              poc_settings_xml(leg.ue.client_id))], ctx.boundary())
    extra = [*ctx.mc_headers(leg), ("Event", "poc-settings"), ("Expires", str(PUBLISH_EXPIRES))]
    req = ctx.ue_request(leg, "PUBLISH", leg.psi("participating"), f"<{leg.impu}>",
                         ctx.call_id(host(leg.ue_ep.ip)), extra, body, ctype)
    etag = f"{ctx.token(12)}"
    ctx.transaction(t, leg, req, True, [Answer(200, ctx.net() * 2 + ctx.server(), (
        ("SIP-ETag", etag), ("Expires", str(PUBLISH_EXPIRES))))], main=True)
