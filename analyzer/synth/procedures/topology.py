"""Who talks to whom: the SIP path between one UE identity and its system's P-CSCF.

A UE talks to its system's ``sip_server`` (P-CSCF) only. With a separate ``mc_server`` the P-CSCF
record-routes dialogs and server-initiated requests carry two Vias (P-CSCF, MC server); session Contacts and
media live on the MC server.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.synth.scenario import System, Ue
from analyzer.synth.sip import Service
from analyzer.synth.wire import Endpoint, Link

ACCESS_NETWORK = "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=2620100a1b2c3d4e5"  # every UE sits in this LTE cell


def host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@dataclass(frozen=True, slots=True)
class Leg:
    """The SIP path between one UE identity and its system's P-CSCF."""

    ue: Ue
    system: System
    service: Service
    mc_id: str
    impu: str
    impi: str
    ue_ep: Endpoint
    core_ep: Endpoint
    link: Link | None  # TCP: the logical connection; UDP: None

    @property
    def udp(self) -> bool:
        return self.link is None

    @property
    def via_transport(self) -> str:
        return "UDP" if self.udp else "TCP"

    @property
    def ue_hostport(self) -> str:
        return f"{host(self.ue_ep.ip)}:{self.ue_ep.port}"

    @property
    def core_hostport(self) -> str:
        return f"{host(self.core_ep.ip)}:{self.core_ep.port}"

    @property
    def mc_hostport(self) -> str:
        return f"{host(self.system.mc_server)}:5060"

    @property
    def ims_domain(self) -> str:
        return self.impu.split("@", 1)[1] if "@" in self.impu else self.system.domain

    @property
    def user(self) -> str:
        return self.impu.split(":", 1)[1].split("@", 1)[0]

    @property
    def contact_uri(self) -> str:
        return f"sip:{self.user}@{self.ue_hostport}" + ("" if self.udp else ";transport=tcp")

    def contact(self, register: bool = False, expires: int | None = None) -> str:
        value = f"<{self.contact_uri}>"
        if expires is not None:
            value += f";expires={expires}"
        if register:
            value += f';+sip.instance="<{self.ue.instance}>"'
        return value + self.service.contact_params

    def psi(self, function: str) -> str:
        return f"sip:{self.service.name}-{function}@{self.system.domain}"

    @property
    def routes(self) -> str:
        """Route set of out-of-dialog requests: the P-CSCF, then the Service-Route from registration."""
        return f"<sip:{self.core_hostport};lr>, <sip:orig@scscf.{self.ims_domain};lr>"

    @property
    def user_agent(self) -> str:
        return self.ue.user_agent or f"mcxa-synth {self.service.name.upper()}-client/1.0"
