"""Token and profile retrieval over HTTP or HTTPS: POST /token to the IdMS, GET of the user profile from the
CMS. Each runs on a fresh connection; over HTTPS only the TLS records are on the wire.
"""

from __future__ import annotations

from analyzer.synth import http as H
from analyzer.synth.procedures.context import Context
from analyzer.synth.procedures.topology import Leg
from analyzer.synth.scenario import Scenario, Step
from analyzer.synth.wire import Endpoint, Link, MessageInfo, StreamClose, StreamSend


def _error_body(status: int) -> bytes:
    return f"{status} {H.HTTP_REASONS.get(status, 'Error')}\n".encode()


def token(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    system = leg.system
    assert system.idms is not None and system.idms_address is not None
    body = H.token_request_body(ctx.rng, f"{leg.service.name}_client")
    req = H.http_request("POST", "/token", [
        ("Host", system.idms), ("User-Agent", H.USER_AGENT_HTTP), ("Accept", "application/json"),
        ("Content-Type", "application/x-www-form-urlencoded")], body)
    status = ctx.fault.error or 200
    date = ("Date", H.http_date(ctx.scenario.start + t))
    if status == 200:
        access = ctx.new_token(leg, t)
        s = leg.service.name
        id_token = H.jwt(ctx.rng, f"https://{system.idms}", leg.impi.split("@")[0],
                         {"aud": f"{s}_client", f"{s}_id": leg.mc_id}, int(ctx.scenario.start + t))
        payload = H.token_response_body(access, id_token, ctx.token(32))
        resp = H.http_response(200, [("Server", H.SERVER_HTTP), date,
                                     ("Content-Type", "application/json;charset=UTF-8"),
                                     ("Cache-Control", "no-store"), ("Pragma", "no-cache")], payload)
    else:
        resp = H.http_response(status, [("Server", H.SERVER_HTTP), date, ("Content-Type", "text/plain")],
                               _error_body(status))
    done = _exchange(ctx, t, leg, system.idms, system.idms_address, step.over, req, "POST", resp, status)
    if done is not None and status == 200:
        ctx.tokens[(leg.ue.name, system.name)] = access


def profile_retrieval(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    system, s = leg.system, leg.service
    assert system.cms is not None and system.cms_address is not None
    key = (leg.ue.name, system.name)
    path = f"/xcap-root/{s.profile_auid}/users/{leg.mc_id}/{s.name}-user-profile.xml"
    headers = [("Host", system.cms), ("User-Agent", H.USER_AGENT_HTTP), ("Accept", s.profile_type),
               ("Authorization", f"Bearer {ctx.access_token(leg, t)}")]
    if key in ctx.profile_etags:
        headers.append(("If-None-Match", ctx.profile_etags[key]))
    req = H.http_request("GET", path, headers)
    date = ("Date", H.http_date(ctx.scenario.start + t))
    groups, peers = _profile_contents(ctx.scenario, leg.ue.name, system.name)
    document = H.user_profile_xml(s, leg.mc_id, leg.impu, leg.mc_id.split(":", 1)[1].split("@")[0].title(),
                                  f"{system.domain} public safety", groups, peers)
    etag = H.etag(document)
    status = ctx.fault.error or (304 if ctx.profile_etags.get(key) == etag else 200)
    if status == 200:
        resp = H.http_response(200, [("Server", H.SERVER_HTTP), date, ("Content-Type", s.profile_type),
                                     ("ETag", etag), ("Cache-Control", "no-cache")], document)
    elif status == 304:
        resp = H.http_response(304, [("Server", H.SERVER_HTTP), date, ("ETag", etag)])
    else:
        resp = H.http_response(status, [("Server", H.SERVER_HTTP), date, ("Content-Type", "text/plain")],
                               _error_body(status))
    done = _exchange(ctx, t, leg, system.cms, system.cms_address, step.over, req, "GET", resp, status)
    if done is not None and status in (200, 304):
        ctx.profile_etags[key] = etag


def _profile_contents(scenario: Scenario, ue: str, system: str) -> tuple[list[str], list[str]]:
    """The groups and private-call peers the scenario has this UE use in this system."""
    groups: list[str] = []
    peers: list[str] = []
    for step in scenario.timeline:
        if step.ue != ue or step.system != system:
            continue
        for g in (*step.groups, *((step.group,) if step.group else ())):
            if g not in groups:
                groups.append(g)
        if step.peer and step.peer not in peers:
            peers.append(step.peer)
    return groups, peers


def _exchange(ctx: Context, t: float, leg: Leg, server_name: str, address: str, over: str, req: bytes,
              method: str, resp: bytes, status: int) -> float | None:
    """One request/response on a fresh connection (plain, or TLS records only); the client closes."""
    ctx.http_links += 1
    port = 80 if over == "http" else 443
    link = Link(("http", ctx.http_links), Endpoint(leg.ue_ep.ip, 0), Endpoint(address, port))
    split, fault = ctx.fault.split, ctx.fault

    def send(when: float, from_client: bool, data: bytes, info: MessageInfo | None = None,
             sni: str | None = None) -> None:
        ctx.sends.append(StreamSend(when, link, from_client, data, info, split, sni))

    if over == "http":
        send(t, True, req, MessageInfo("http", method, None, None))
        if fault.no_answer:
            ctx.note(f"HTTP {method} never answered; the client gives up after 30 s")
            ctx.sends.append(StreamClose(t + 30.0, link, True))
            return None
        done = t + ctx.net() * 2 + ctx.server()
        send(done, False, resp, MessageInfo("http", None, status, None))
    else:
        hello, session = H.client_hello(ctx.rng, server_name)
        send(t, True, hello, sni=server_name)
        t1 = t + ctx.net() * 2 + 0.002
        send(t1, False, b"".join(H.server_flight(ctx.rng, session)))
        t2 = t1 + ctx.client()
        send(t2, True, H.client_finished(ctx.rng) + H.application_data(ctx.rng, len(req)))
        if fault.no_answer:
            ctx.note(f"HTTPS {method} never answered; the client gives up after 30 s")
            ctx.sends.append(StreamClose(t2 + 30.0, link, True))
            return None
        done = t2 + ctx.net() * 2 + ctx.server()
        send(done, False, H.session_tickets(ctx.rng) + H.application_data(ctx.rng, len(resp)))
        send(done + 0.001, True, H.close_notify(ctx.rng))
    ctx.sends.append(StreamClose(done + ctx.rng.uniform(0.005, 0.02), link, True))
    return done
