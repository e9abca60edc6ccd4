"""Scenario files for ``mcxa synth``: the model, the loader and its validation.

A scenario is YAML with a closed vocabulary; an unknown key, an unknown ``do:``, a reference to an unknown
system, UE or call, times out of order, or a missing identity is an ``InputError`` naming file, line and key.
``examples/migration.yaml`` beside this module uses every procedure.

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
group-call             system, group, id, type, role      type prearranged | chat; role originate: UE INVITE /
                                                          100 / 200 / ACK; role receive: the server INVITEs
                                                          the UE (isfocus, mcptt-calling-group-id) / 200 / ACK
late-entry             system, group, id                  server-initiated INVITE (Answer-Mode: Auto,
                                                          mcptt-calling-group-id) / 200 / ACK
private-call           system, peer, id, role, answer     role originate: INVITE to the private-call PSI
                                                          (resource-lists recipient-list + session-type
                                                          private) / 100 / 180 / 200 / ACK; receive: server
                                                          INVITE / 180 / 200 / ACK; answer auto | manual
                                                          (default manual; auto: no 180)
release                call, reason, reason_text, by      BYE / 200 in the private call's dialog; with
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
=====================  =================================  ==================================================

``release`` and ``leave`` take their system from the call. A call ``id`` is unique in the file and a
``call:`` must name one set up by an earlier step of the same UE (``release``: a private call; ``leave``: a
group call or late entry). When the call never got established (its step omitted or failed), nothing is
sent and ``SynthResult.notes`` says so.

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
authorisation, affiliate, deaffiliate), the INVITE (calls), the BYE (release, leave), the HTTP request
(token, profile retrieval) and the OPTIONS.

Noise: ``rtp_streams: N`` adds N one-way RTP streams (v2, PCMU, 160-byte payload, 20 ms, even ports):
first the downlink media of established calls, for as long as they last; then random UE ↔ MC server
pairs for the whole capture. ``options_interval: S`` makes every registered UE send an OPTIONS keep-alive
every S seconds while registered. Both are SIP/RTP on the wire like everything else.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from analyzer.base.errors import InputError
from analyzer.base.yamlfile import Locations, check_mapping, describe, load_yaml, parse_yaml

__all__ = ["RELEASE_REASONS", "STEP_KINDS", "Fault", "Identity", "Noise", "Scenario", "Step", "StepKind",
           "System", "Ue", "load_scenario", "parse_scenario"]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
URI_SCHEMES = ("sip:", "sips:", "tel:")
TRANSPORTS = ("udp", "tcp")
SERVICE_NAMES = ("mcptt", "mcvideo")

#: ``reason:`` of a release → (protocol, cause, text) of the Reason header (RFC 3326). The stage-3
#: encoding of "released due to migration" is unconfirmed (REFERENCE.md §1.3), hence ``reason_text``.
RELEASE_REASONS: dict[str, tuple[str, int, str]] = {"migration": ("SIP", 200, "MC migration")}


@dataclass(frozen=True, slots=True)
class System:
    name: str
    domain: str
    sip_server: str
    mc_server: str
    primary: bool = False
    cms: str | None = None
    cms_address: str | None = None
    idms: str | None = None
    idms_address: str | None = None

    @property
    def separate_mc_server(self) -> bool:
        return self.mc_server != self.sip_server


@dataclass(frozen=True, slots=True)
class Identity:
    """What a UE uses in one system: MC service ID, IMS public/private identity, address and SIP port."""

    system: str
    mc_id: str
    impu: str
    impi: str
    address: str
    port: int = 5060


@dataclass(frozen=True, slots=True)
class Ue:
    name: str
    instance: str
    client_id: str
    identities: Mapping[str, Identity]
    transport: str = "udp"
    service: str = "mcptt"
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Noise:
    rtp_streams: int = 0
    options_interval: float | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with one step (see the module docstring); the default is nothing."""

    omit: bool = False
    delay: float = 0.0
    reorder: str | None = None  # before-previous
    error: int | None = None
    warning: str | None = None
    no_answer: bool = False
    retransmit: int = 0
    split: int = 1


NO_FAULT = Fault()


@dataclass(frozen=True, slots=True)
class Step:
    """One timeline entry. Fields a procedure does not take keep their defaults."""

    index: int  # position in the timeline (0-based)
    line: int
    at: float
    ue: str
    do: str
    system: str  # for release/leave: the call's system
    groups: tuple[str, ...] = ()
    all: bool = False
    group: str | None = None
    id: str | None = None
    type: str = "prearranged"
    role: str = "originate"
    answer: str = "manual"
    peer: str | None = None
    call: str | None = None
    reason: str | None = None
    reason_text: str | None = None
    by: str = "ue"
    over: str = "https"
    fault: Fault = NO_FAULT

    @property
    def label(self) -> str:
        return f"step {self.index + 1} (line {self.line}, {self.do})"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: int
    start: float  # epoch seconds
    systems: Mapping[str, System]
    ues: Mapping[str, Ue]
    timeline: tuple[Step, ...]
    noise: Noise = field(default_factory=Noise)
    truncate_at: float | None = None
    source: str = "<scenario>"


@dataclass(frozen=True, slots=True)
class StepKind:
    """The closed vocabulary of one ``do:``: its keys (with types), the required ones, SIP or HTTP."""

    keys: Mapping[str, type | tuple[type, ...]]
    required: tuple[str, ...]
    proto: str = "sip"


_NUMBER = float
COMMON_KEYS: dict[str, type | tuple[type, ...]] = {"at": _NUMBER, "ue": str, "do": str, "fault": (str, dict)}
STEP_KINDS: dict[str, StepKind] = {
    "register": StepKind({"system": str}, ("system",)),
    "deregister": StepKind({"system": str}, ("system",)),
    "service-authorisation": StepKind({"system": str}, ("system",)),
    "affiliate": StepKind({"system": str, "groups": list}, ("system", "groups")),
    "deaffiliate": StepKind({"system": str, "groups": list, "all": bool}, ("system",)),
    "group-call": StepKind({"system": str, "group": str, "id": str, "type": str, "role": str},
                           ("system", "group", "id")),
    "late-entry": StepKind({"system": str, "group": str, "id": str}, ("system", "group", "id")),
    "private-call": StepKind({"system": str, "peer": str, "id": str, "role": str, "answer": str},
                             ("system", "peer", "id")),
    "release": StepKind({"call": str, "reason": str, "reason_text": str, "by": str}, ("call",)),
    "leave": StepKind({"call": str, "by": str}, ("call",)),
    "token": StepKind({"system": str, "over": str}, ("system",), "http"),
    "profile-retrieval": StepKind({"system": str, "over": str}, ("system",), "http"),
    "options": StepKind({"system": str}, ("system",)),
}
#: Keys whose value is one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "type": ("prearranged", "chat"), "role": ("originate", "receive"), "answer": ("auto", "manual"),
    "by": ("ue", "server"), "over": ("http", "https"), "reason": tuple(RELEASE_REASONS),
}
#: Which call-creating procedures each call-ending procedure may name.
CALL_ENDERS: dict[str, tuple[str, ...]] = {"release": ("private-call",),
                                           "leave": ("group-call", "late-entry")}
FAULT_KEYS: dict[str, type | tuple[type, ...]] = {
    "omit": bool, "delay": _NUMBER, "reorder": str, "error": int, "warning": str, "no-answer": bool,
    "retransmit": int, "split": int,
}
_TOP_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "seed": int, "start": (datetime, date, str), "systems": dict, "ues": dict, "noise": dict,
    "truncate_at": _NUMBER, "timeline": list,
}
_SYSTEM_KEYS: dict[str, type | tuple[type, ...]] = {
    "domain": str, "primary": bool, "sip_server": str, "mc_server": str, "cms": str, "cms_address": str,
    "idms": str, "idms_address": str,
}
_UE_KEYS: dict[str, type | tuple[type, ...]] = {
    "instance": str, "client_id": str, "transport": str, "service": str, "identities": dict,
    "user_agent": str,
}
_IDENTITY_KEYS: dict[str, type | tuple[type, ...]] = {
    "mc_id": str, "impu": str, "impi": str, "address": str, "port": int,
}
_NOISE_KEYS: dict[str, type | tuple[type, ...]] = {"rtp_streams": int, "options_interval": _NUMBER}


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Load and validate a scenario file; every problem is a one-line ``InputError``."""
    data, locations = load_yaml(path)
    default_name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return _Builder(locations).scenario(data, default_name)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Like ``load_scenario`` for YAML text (tests, generated scenarios)."""
    data, locations = parse_yaml(text, source)
    return _Builder(locations).scenario(data, source)


def _family(address: str) -> int:
    return ipaddress.ip_address(address).version


class _Builder:
    def __init__(self, locations: Locations):
        self.loc = locations

    def error(self, path, reason: str) -> InputError:
        return self.loc.error(tuple(path), reason)

    # -- top level ----------------------------------------------------------------------------------
    def scenario(self, data: Any, default_name: str) -> Scenario:
        check_mapping(data, self.loc, (), _TOP_KEYS, required=("systems", "ues", "timeline"))
        systems = self.systems(data["systems"])
        ues = self.ues(data["ues"], systems)
        noise = Noise()
        if "noise" in data:
            n = check_mapping(data["noise"], self.loc, ("noise",), _NOISE_KEYS)
            if n.get("rtp_streams", 0) < 0:
                raise self.error(("noise", "rtp_streams"), "must be 0 or more")
            if "options_interval" in n and not n["options_interval"] > 0:
                raise self.error(("noise", "options_interval"), "must be more than 0 seconds")
            noise = Noise(n.get("rtp_streams", 0), float(n["options_interval"]) if "options_interval" in n
                          else None)
        truncate = data.get("truncate_at")
        if truncate is not None and not truncate > 0:
            raise self.error(("truncate_at",), "must be more than 0 seconds")
        timeline = self.timeline(data["timeline"], systems, ues)
        return Scenario(name=data.get("name", default_name), seed=data.get("seed", 0),
                        start=self.start(data.get("start", DEFAULT_START)), systems=systems, ues=ues,
                        timeline=timeline, noise=noise,
                        truncate_at=float(truncate) if truncate is not None else None, source=self.loc.source)

    def start(self, value: Any) -> float:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise self.error(("start",), f"not an ISO 8601 time: {value!r}") from None
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()

    def address(self, path, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise self.error(path, f"not an IPv4 or IPv6 address: {value!r}") from None

    def uri(self, path, value: Any) -> str:
        if (not isinstance(value, str) or not value.startswith(URI_SCHEMES)
                or any(c in value for c in " <>\"'") or not value.isprintable()):
            raise self.error(path, f"expected a sip:, sips: or tel: URI, got {describe(value)} {value!r}")
        return value

    def text(self, path, value: str) -> str:
        """Free text that ends up inside a header or a quoted string: printable, no quotes or brackets."""
        if not value or any(c in value for c in '"<>\\') or not value.isprintable():
            raise self.error(path, f"must be printable text without quotes, angle brackets or backslashes: "
                                   f"{value!r}")
        return value

    def choice(self, path, value: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.error(path, f"unknown value {value!r} (expected one of: {', '.join(choices)})")
        return value

    # -- systems and UEs ----------------------------------------------------------------------------
    def systems(self, data: dict) -> dict[str, System]:
        out: dict[str, System] = {}
        primaries = []
        for name, raw in data.items():
            path = ("systems", name)
            check_mapping(raw, self.loc, path, _SYSTEM_KEYS, required=("domain", "sip_server"))
            sip = self.address((*path, "sip_server"), raw["sip_server"])
            mc = self.address((*path, "mc_server"), raw["mc_server"]) if "mc_server" in raw else sip
            if _family(mc) != _family(sip):
                raise self.error((*path, "mc_server"), "must be of the same IP version as sip_server")
            for host, addr in (("cms", "cms_address"), ("idms", "idms_address")):
                if (host in raw) != (addr in raw):
                    missing = addr if host in raw else host
                    raise self.error((*path, host if host in raw else addr), f"needs '{missing}' as well")
            if raw.get("primary"):
                primaries.append(name)
                if len(primaries) > 1:
                    raise self.error((*path, "primary"),
                                     f"only one system may be primary ('{primaries[0]}' already is)")
            for key in ("domain", "cms", "idms"):
                if key in raw:
                    self.text((*path, key), raw[key])
                    if " " in raw[key]:
                        raise self.error((*path, key), f"a host name has no spaces: {raw[key]!r}")
            out[name] = System(
                name=name, domain=raw["domain"], sip_server=sip, mc_server=mc,
                primary=raw.get("primary", False), cms=raw.get("cms"),
                cms_address=(self.address((*path, "cms_address"), raw["cms_address"]) if "cms" in raw
                             else None),
                idms=raw.get("idms"),
                idms_address=(self.address((*path, "idms_address"), raw["idms_address"]) if "idms" in raw
                              else None))
        if not out:
            raise self.error(("systems",), "at least one system is needed")
        return out

    def ues(self, data: dict, systems: dict[str, System]) -> dict[str, Ue]:
        out: dict[str, Ue] = {}
        for name, raw in data.items():
            path = ("ues", name)
            check_mapping(raw, self.loc, path, _UE_KEYS, required=("instance", "client_id", "identities"))
            for key in ("instance", "client_id", "user_agent"):
                if key in raw:
                    self.text((*path, key), raw[key])
            transport = self.choice((*path, "transport"), raw.get("transport", "udp"), TRANSPORTS)
            service = self.choice((*path, "service"), raw.get("service", "mcptt"), SERVICE_NAMES)
            identities = {}
            for system, ident in raw["identities"].items():
                ipath = (*path, "identities", system)
                if system not in systems:
                    raise self.error(ipath, f"unknown system '{system}' (systems: {', '.join(systems)})")
                check_mapping(ident, self.loc, ipath, _IDENTITY_KEYS, required=("mc_id", "impu", "address"))
                address = self.address((*ipath, "address"), ident["address"])
                if _family(address) != _family(systems[system].sip_server):
                    raise self.error((*ipath, "address"),
                                     f"IPv{_family(address)} address, but system '{system}' sip_server is "
                                     f"IPv{_family(systems[system].sip_server)}")
                port = ident.get("port", 5060)
                if not 0 < port < 65536:
                    raise self.error((*ipath, "port"), f"not a port number: {port}")
                impu = self.uri((*ipath, "impu"), ident["impu"])
                impi = ident.get("impi") or impu.split(":", 1)[1].lstrip("+")
                identities[system] = Identity(system, self.uri((*ipath, "mc_id"), ident["mc_id"]), impu, impi,
                                              address, port)
            if not identities:
                raise self.error((*path, "identities"), "at least one identity is needed")
            out[name] = Ue(name, raw["instance"], raw["client_id"], identities, transport, service,
                           raw.get("user_agent"))
        if not out:
            raise self.error(("ues",), "at least one UE is needed")
        return out

    # -- the timeline --------------------------------------------------------------------------------
    def timeline(self, data: list, systems: dict[str, System], ues: dict[str, Ue]) -> tuple[Step, ...]:
        steps: list[Step] = []
        calls: dict[str, Step] = {}
        previous_at = 0.0
        for i, raw in enumerate(data):
            path = ("timeline", i)
            if not isinstance(raw, dict):
                raise self.error(path, f"expected a mapping (a step), got {describe(raw)}")
            if "do" not in raw:
                raise InputError(f"missing key 'do' in step {i + 1}", self.loc.where(path))
            do = raw["do"]
            if not isinstance(do, str) or do not in STEP_KINDS:
                raise self.error((*path, "do"), f"unknown procedure {do!r} (expected one of: "
                                                f"{', '.join(STEP_KINDS)})")
            kind = STEP_KINDS[do]
            check_mapping(raw, self.loc, path, {**COMMON_KEYS, **kind.keys},
                          required=("at", "ue", *kind.required), what=f"step {i + 1} ({do})")
            at = float(raw["at"])
            if at < 0:
                raise self.error((*path, "at"), "must be 0 or more")
            if at < previous_at:
                raise self.error((*path, "at"), f"{raw['at']} is before the previous step's {previous_at:g} "
                                                "(steps are in time order; to swap two steps use "
                                                "fault: {reorder: before-previous})")
            previous_at = at
            ue_name = raw["ue"]
            if ue_name not in ues:
                raise self.error((*path, "ue"), f"unknown UE '{ue_name}' (UEs: {', '.join(ues)})")
            ue = ues[ue_name]
            values: dict[str, Any] = {}
            for key in kind.keys:
                if key in raw and key in CHOICES:
                    values[key] = self.choice((*path, key), raw[key], CHOICES[key])
            if "call" in raw:
                call = calls.get(raw["call"])
                if call is None or call.ue != ue_name:
                    known = ", ".join(k for k, s in calls.items() if s.ue == ue_name) or "none"
                    raise self.error((*path, "call"), f"unknown call '{raw['call']}' of UE '{ue_name}' "
                                                      f"(calls set up before this step: {known})")
                if call.do not in CALL_ENDERS[do]:
                    raise self.error((*path, "call"), f"'{raw['call']}' is a {call.do}; {do} ends a "
                                                      f"{' or '.join(CALL_ENDERS[do])}")
                system = call.system
            else:
                system = raw["system"]
                if system not in systems:
                    raise self.error((*path, "system"), f"unknown system '{system}' (systems: "
                                                        f"{', '.join(systems)})")
                if system not in ue.identities:
                    raise self.error((*path, "system"), f"UE '{ue_name}' has no identity for system "
                                                        f"'{system}' (add ues.{ue_name}.identities.{system})")
            needs = {"token": ("idms", systems[system].idms_address),
                     "profile-retrieval": ("cms", systems[system].cms_address)}.get(do)
            if needs is not None:
                if needs[1] is None:
                    raise self.error((*path, "system"), f"system '{system}' has no {needs[0]}/"
                                                        f"{needs[0]}_address (needed by {do})")
                if _family(needs[1]) != _family(ue.identities[system].address):
                    raise self.error((*path, "system"), f"UE '{ue_name}' and the {needs[0]} of system "
                                                        f"'{system}' use different IP versions")
            groups: tuple[str, ...] = ()
            if "groups" in raw:
                if not raw["groups"] and do == "affiliate":
                    raise self.error((*path, "groups"), "needs at least one group")
                groups = tuple(self.uri((*path, "groups", j), g) for j, g in enumerate(raw["groups"]))
            if do == "deaffiliate" and ("groups" in raw) == bool(raw.get("all")):
                raise self.error(path, "deaffiliate takes either 'groups' or 'all: true'")
            for key in ("group", "peer"):
                if key in raw:
                    values[key] = self.uri((*path, key), raw[key])
            if "id" in raw and raw["id"] in calls:
                raise self.error((*path, "id"), f"call id '{raw['id']}' is already used on line "
                                                f"{calls[raw['id']].line}")
            if "reason_text" in raw:
                self.text((*path, "reason_text"), raw["reason_text"])
            fault = self.fault(raw.get("fault"), (*path, "fault"), kind, ue, i)
            step = Step(index=i, line=self.loc.line(path), at=at, ue=ue_name, do=do, system=system,
                        groups=groups, all=raw.get("all", False), id=raw.get("id"), call=raw.get("call"),
                        reason=values.get("reason"), reason_text=raw.get("reason_text"), fault=fault,
                        **{k: v for k, v in values.items() if k in ("type", "role", "answer", "by", "over",
                                                                     "group", "peer")})
            if step.id is not None:
                calls[step.id] = step
            steps.append(step)
        return tuple(steps)

    def fault(self, raw: Any, path, kind: StepKind, ue: Ue, index: int) -> Fault:
        if raw is None:
            return NO_FAULT
        if isinstance(raw, str):
            if raw != "omit":
                raise self.error(path, f"unknown fault {raw!r} (a string fault can only be 'omit'; "
                                       f"others are a mapping of: {', '.join(FAULT_KEYS)})")
            return Fault(omit=True)
        check_mapping(raw, self.loc, path, FAULT_KEYS)
        tcp = kind.proto == "http" or ue.transport == "tcp"
        if "reorder" in raw:
            self.choice((*path, "reorder"), raw["reorder"], ("before-previous",))
            if index == 0:
                raise self.error((*path, "reorder"), "the first step has no previous step")
        if raw.get("delay", 0) < 0:
            raise self.error((*path, "delay"), "must be 0 or more")
        if "error" in raw:
            top = 599 if kind.proto == "http" else 699
            if not 300 <= raw["error"] <= top:
                raise self.error((*path, "error"), f"must be a final error status 300..{top}")
        if "warning" in raw:
            if "error" not in raw:
                raise self.error((*path, "warning"), "needs 'error' (the Warning goes on the error response)")
            if kind.proto != "sip":
                raise self.error((*path, "warning"), "only SIP responses carry a Warning header")
            text = raw["warning"]
            if len(text) < 5 or not text[:3].isdigit() or text[3] != " " or '"' in text:
                raise self.error((*path, "warning"), f"expected \"NNN text\" (a 24.379 warn-code and its "
                                                     f"text, no quotes), got {text!r}")
        if "retransmit" in raw:
            if tcp:
                raise self.error((*path, "retransmit"), "retransmissions are for SIP over UDP (this step "
                                                        "runs over TCP)")
            if not 1 <= raw["retransmit"] <= 10:
                raise self.error((*path, "retransmit"), "must be 1..10")
        if "split" in raw:
            if not tcp:
                raise self.error((*path, "split"), "splitting into segments needs TCP (this step runs "
                                                   "over UDP)")
            if not 2 <= raw["split"] <= 64:
                raise self.error((*path, "split"), "must be 2..64")
        if raw.get("no-answer") and ("error" in raw or "retransmit" in raw):
            raise self.error((*path, "no-answer"), "cannot be combined with 'error' or 'retransmit'")
        return Fault(omit=raw.get("omit", False), delay=float(raw.get("delay", 0.0)),
                     reorder=raw.get("reorder"), error=raw.get("error"), warning=raw.get("warning"),
                     no_answer=raw.get("no-answer", False), retransmit=raw.get("retransmit", 0),
                     split=raw.get("split", 1))
