"""Keep-alives and background: the OPTIONS step, and the noise around the timeline (periodic OPTIONS while
registered, one-way RTP streams).
"""

from __future__ import annotations

import struct

from analyzer.synth.procedures.context import Answer, Context
from analyzer.synth.procedures.topology import Leg, host
from analyzer.synth.scenario import Step
from analyzer.synth.sip import ALLOW, request
from analyzer.synth.wire import Datagram, Endpoint

RTP_INTERVAL = 0.020
_G711_PAYLOAD = 160


def options(ctx: Context, step: Step, t: float) -> None:
    _options(ctx, ctx.leg(step.ue, step.system), t, main=True)


def _options(ctx: Context, leg: Leg, t: float, main: bool = False) -> None:
    target = f"sip:{leg.core_hostport}"
    headers = [("Via", ctx.ue_via(leg)), ("Max-Forwards", "70"), ("From", f"<{leg.impu}>;tag={ctx.tag()}"),
               ("To", f"<{target}>"), ("Call-ID", ctx.call_id(host(leg.ue_ep.ip))), ("CSeq", "1 OPTIONS"),
               ("Contact", leg.contact()), ("Accept", "application/sdp"), ("User-Agent", leg.user_agent)]
    req = request("OPTIONS", target, headers)
    ctx.transaction(t, leg, req, True, [Answer(200, ctx.net() * 2 + ctx.rng.uniform(0.001, 0.005), (
        ("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "path,gruu,timer")))], main=main)


def add_noise(ctx: Context, end: float) -> None:
    """OPTIONS keep-alives while registered, then RTP streams (calls' downlink first, then random pairs)."""
    noise = ctx.scenario.noise
    ctx.step = None
    if noise.options_interval:
        for ue, system, t0, t1 in ctx.registered:
            leg = ctx.leg(ue, system)
            stop = min(end, t1 if t1 is not None else end)
            t = t0 + noise.options_interval
            while t < stop:
                _options(ctx, leg, t)
                t += noise.options_interval
    spans = sorted(ctx.media, key=lambda m: m.start)
    pairs = [(ue.name, name) for ue in ctx.scenario.ues.values() for name in ue.identities]
    pool = [bytes(ctx.rng.randrange(0x70, 0x80) | (ctx.rng.getrandbits(1) << 7) for _ in range(_G711_PAYLOAD))
            for _ in range(8)]
    for i in range(noise.rtp_streams):
        if i < len(spans):
            span = spans[i]
            src, dst, t0 = span.src, span.dst, span.start + 0.04
            t1 = span.end if span.end is not None else end
            ssrc = span.ssrc
        else:
            leg = ctx.leg(*pairs[ctx.rng.randrange(len(pairs))])
            src = Endpoint(leg.system.mc_server, ctx.port())
            dst = Endpoint(leg.ue_ep.ip, ctx.port())
            t0, t1, ssrc = ctx.rng.uniform(0.0, 0.5), end, None
        _rtp_stream(ctx, src, dst, t0, min(t1, end), pool, ssrc)


def _rtp_stream(ctx: Context, src: Endpoint, dst: Endpoint, t0: float, t1: float, pool: list[bytes],
                negotiated: int | None = None) -> None:
    rng = ctx.rng
    seq, stamp, ssrc = rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(32)
    ssrc = negotiated if negotiated is not None else ssrc  # (drawn anyway: later draws stay the same)
    count = int((t1 - t0) / RTP_INTERVAL)
    sends = ctx.sends
    for n in range(count):
        header = struct.pack("!BBHII", 0x80, 0x80 if n == 0 else 0x00, (seq + n) & 0xFFFF,
                             (stamp + n * _G711_PAYLOAD) & 0xFFFFFFFF, ssrc)
        jitter = rng.uniform(-0.0005, 0.0005) if n else 0.0
        sends.append(Datagram(t0 + n * RTP_INTERVAL + jitter, src, dst, header + pool[n % len(pool)]))
