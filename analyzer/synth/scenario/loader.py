"""Loading a scenario: the file's top level, its systems and its UEs, checked and built into a ``Scenario``
(the timeline's steps are checked in ``timeline``).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any

from analyzer.base.yamlfile import check_mapping, load_yaml, parse_yaml
from analyzer.synth.scenario.checks import Checker, family
from analyzer.synth.scenario.model import (
    DEFAULT_START,
    IPSEC,
    LATEST_START,
    LONGEST,
    NUMBER,
    SERVICE_NAMES,
    TRANSPORTS,
    Identity,
    Noise,
    Scenario,
    System,
    Ue,
)
from analyzer.synth.scenario.timeline import check_timeline

_TOP_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "seed": int, "start": (datetime, date, str), "systems": dict, "ues": dict, "noise": dict,
    "truncate_at": NUMBER, "timeline": list,
}
_SYSTEM_KEYS: dict[str, type | tuple[type, ...]] = {
    "domain": str, "primary": bool, "sip_server": str, "mc_server": str, "cms": str, "cms_address": str,
    "idms": str, "idms_address": str,
}
_UE_KEYS: dict[str, type | tuple[type, ...]] = {
    "instance": str, "client_id": str, "transport": str, "service": str, "identities": dict, "ipsec": str,
    "user_agent": str,
}
_IDENTITY_KEYS: dict[str, type | tuple[type, ...]] = {
    "mc_id": str, "impu": str, "impi": str, "address": str, "port": int,
}
MAX_RTP_STREAMS = 1000  # each a packet every 20 ms: more would build a capture no machine holds
MIN_OPTIONS_INTERVAL = 0.001
_NOISE_KEYS: dict[str, type | tuple[type, ...]] = {"rtp_streams": int, "options_interval": NUMBER}


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Load and validate a scenario file; every problem is a one-line ``InputError``."""
    data, locations = load_yaml(path)
    default_name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return _Builder(locations).scenario(data, default_name)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Like ``load_scenario`` for YAML text (tests, generated scenarios)."""
    data, locations = parse_yaml(text, source)
    return _Builder(locations).scenario(data, source)


class _Builder(Checker):
    """Parsed YAML → ``Scenario``: the top level, systems and UEs here, the steps in ``check_timeline``."""

    # -- top level ----------------------------------------------------------------------------------
    def scenario(self, data: Any, default_name: str) -> Scenario:
        check_mapping(data, self.loc, (), _TOP_KEYS, required=("systems", "ues", "timeline"))
        systems = self.systems(data["systems"])
        ues = self.ues(data["ues"], systems)
        noise = Noise()
        if "noise" in data:
            n = check_mapping(data["noise"], self.loc, ("noise",), _NOISE_KEYS)
            if not 0 <= n.get("rtp_streams", 0) <= MAX_RTP_STREAMS:
                raise self.error(("noise", "rtp_streams"), f"must be from 0 to {MAX_RTP_STREAMS}")
            if "options_interval" in n and not n["options_interval"] >= MIN_OPTIONS_INTERVAL:
                raise self.error(("noise", "options_interval"),
                                 f"must be {MIN_OPTIONS_INTERVAL} seconds or more")
            noise = Noise(n.get("rtp_streams", 0), float(n["options_interval"]) if "options_interval" in n
                          else None)
        truncate = data.get("truncate_at")
        if truncate is not None and not 0 < truncate <= LONGEST:
            raise self.error(("truncate_at",), f"must be more than 0 and at most {LONGEST} seconds")
        timeline = check_timeline(self, data["timeline"], systems, ues)
        return Scenario(name=data.get("name", default_name), seed=data.get("seed", 0),
                        start=self.start(data.get("start", DEFAULT_START)), systems=systems, ues=ues,
                        timeline=timeline, noise=noise,
                        truncate_at=float(truncate) if truncate is not None else None, source=self.loc.source)

    def start(self, value: Any) -> float:
        """Epoch seconds of the capture's start, refused where capture timestamps cannot go."""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise self.error(("start",), f"not an ISO 8601 time: {value!r}") from None
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if not 0 <= value.timestamp() <= LATEST_START:
            raise self.error(("start",), f"{value.isoformat()} is outside 1970-01-01 to 2100-01-01 (what "
                                         "capture timestamps hold)")
        return value.timestamp()

    # -- systems and UEs ----------------------------------------------------------------------------
    def systems(self, data: dict) -> dict[str, System]:
        out: dict[str, System] = {}
        primaries = []
        for name, raw in data.items():
            path = ("systems", name)
            check_mapping(raw, self.loc, path, _SYSTEM_KEYS, required=("domain", "sip_server"))
            sip = self.address((*path, "sip_server"), raw["sip_server"])
            mc = self.address((*path, "mc_server"), raw["mc_server"]) if "mc_server" in raw else sip
            if family(mc) != family(sip):
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
                    try:  # a ClientHello names the server (IDNA): every label 1-63 characters
                        raw[key].encode("idna")
                    except UnicodeError:
                        raise self.error((*path, key), f"not a host name: {raw[key]!r} (a label is empty "
                                         "or longer than 63 characters)") from None
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
                if family(address) != family(systems[system].sip_server):
                    raise self.error((*ipath, "address"),
                                     f"IPv{family(address)} address, but system '{system}' sip_server is "
                                     f"IPv{family(systems[system].sip_server)}")
                port = ident.get("port", 5060)
                if not 0 < port < 65536:
                    raise self.error((*ipath, "port"), f"not a port number: {port}")
                impu = self.uri((*ipath, "impu"), ident["impu"])
                impi = ident.get("impi") or impu.split(":", 1)[1].lstrip("+")
                identities[system] = Identity(system, self.uri((*ipath, "mc_id"), ident["mc_id"]), impu, impi,
                                              address, port)
            if not identities:
                raise self.error((*path, "identities"), "at least one identity is needed")
            ipsec = self.choice((*path, "ipsec"), raw["ipsec"], IPSEC) if "ipsec" in raw else None
            if ipsec and transport != "udp":
                raise self.error((*path, "ipsec"), "ESP is synthesised for SIP over UDP only (transport: "
                                 "udp)")
            out[name] = Ue(name, raw["instance"], raw["client_id"], identities, transport, service,
                           raw.get("user_agent"), ipsec)
        if not out:
            raise self.error(("ues",), "at least one UE is needed")
        return out
