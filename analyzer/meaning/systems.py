"""MC systems: which system a domain, host name or address belongs to.

Migration is a move between MC systems, so every event needs one. By default systems are inferred from
the traffic: the domains of MC service IDs, PSIs and IMPUs are grouped by subdomain (``ims.a.mcx.example``
and ``cms.a.mcx.example`` belong to ``a.mcx.example``) and by the server address that received requests
for them; a system is named after its shortest domain. A systems file (``--systems FILE``) names systems
and maps domains, host names and address ranges to them explicitly, and says which one is primary::

    systems:
      A:
        primary: true
        domains: [a.mcx.example]               # and every subdomain
        hosts: [cms.a.mcx.example]              # extra host names (TLS SNI, HTTP Host)
        addresses: [10.10.0.0/16, "2001:db8:a::/48"]
        cms: [cms.a.mcx.example]                # configuration-management servers (TLS to them is
        idms: [idms.a.mcx.example]              #   "encrypted configuration access"), IdM servers
      B: {domains: [b.mcx.example], addresses: [10.20.0.0/16]}

Domains come from the capture, so lookups never scan them: a host name is matched label by label against
a tree of the known domains, and inference learns at most ``Limits.domains`` distinct domains (and as many
server addresses); beyond, the rest stay without a system and a ``table-full`` problem says so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.yamlfile import check_mapping, load_yaml
from analyzer.meaning.mcfacts import Problem

#: Host-name labels that usually mean a configuration-management / identity-management server when no
#: systems file says so (heuristic; a systems file overrides it).
CMS_LABELS = frozenset({"cms", "xcap", "config", "cm", "configuration"})
IDMS_LABELS = frozenset({"idms", "idm", "auth", "oidc", "sso"})
#: First labels of host names that name a server of a system rather than the system (``ims.b.example``
#: and ``cms.b.example`` both belong to ``b.example``, even when ``b.example`` itself is never seen).
SERVER_LABELS = CMS_LABELS | IDMS_LABELS | frozenset({"ims", "pcscf", "p-cscf", "scscf", "icscf", "sip",
                                                      "mcptt", "mcvideo", "mcdata", "mcx", "gms", "kms"})


@dataclass(frozen=True, slots=True)
class McSystem:
    """One MC system and what identifies it on the wire."""

    name: str
    domains: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    cms: tuple[str, ...] = ()
    idms: tuple[str, ...] = ()
    primary: bool | None = None  # None: not known (inferred systems)


def _host(value: str) -> str:
    return value.strip().lower().rstrip(".")


@lru_cache(maxsize=4096)
def _ip(text: str):
    """The address ``text`` is, or None (a host name: every event's server is asked, and a name is
    told from an address only by the exception ``ipaddress`` raises, so each is asked once)."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


class SystemMap:
    """Answers "which system?" for domains, host names and addresses."""

    def __init__(self, systems: Iterable[McSystem], addresses: dict[str, str] | None = None):
        self.systems = {s.name: s for s in systems}
        self._tree: dict = {}  # label → subtree, last label first; key None: the system of that domain
        for s in self.systems.values():
            for domain in (*s.domains, *s.hosts, *s.cms, *s.idms):
                node = self._tree
                for label in reversed(_host(domain).split(".")):
                    node = node.setdefault(label, {})
                node.setdefault(None, s.name)  # the first system naming a domain keeps it
        self._servers: dict[str, str] = {}  # host → "cms" | "idms", the first system's word
        for s in self.systems.values():
            for kind, hosts in (("cms", s.cms), ("idms", s.idms)):
                for host in hosts:
                    self._servers.setdefault(host, kind)
        self._networks = [(net, s.name) for s in self.systems.values() for net in s.networks]
        self._addresses = dict(addresses or {})  # exact IP → system, learnt from traffic

    # -- lookups ----------------------------------------------------------------------------------------
    def of_host(self, host: str | None) -> str | None:
        """A domain or host name (longest configured suffix wins), or an IP address."""
        if not host:
            return None
        if _ip(host) is not None:
            return self.of_address(host)
        node, name = self._tree, None
        for label in reversed(_host(host).split(".")):  # the longest known suffix wins
            node = node.get(label)
            if node is None:
                break
            name = node.get(None, name)
        return name

    def of_address(self, address: str | None) -> str | None:
        """An IP address, with or without a port (``ip:port``, ``[v6]:port``)."""
        if not address:
            return None
        ip_text = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") \
            else address
        ip = _ip(ip_text)
        if ip is None:
            return None
        name = self._addresses.get(str(ip))
        if name:
            return name
        for net, name in self._networks:
            if ip.version == net.version and ip in net:
                return name
        return None

    def server_kind(self, host: str | None) -> str | None:
        """'cms' or 'idms' when ``host`` is a known (or, without a file, conventionally named) server."""
        if not host:
            return None
        host = _host(host)
        if host in self._servers:
            return self._servers[host]
        label = host.split(".", 1)[0]
        if label in CMS_LABELS:
            return "cms"
        if label in IDMS_LABELS:
            return "idms"
        return None

    def primary(self) -> str | None:
        return next((s.name for s in self.systems.values() if s.primary), None)

    # -- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path) -> SystemMap:
        data, where = load_yaml(path)
        check_mapping(data, where, (), {"systems": dict}, required=("systems",))
        systems = []
        for name, body in data["systems"].items():
            key = ("systems", name)
            body = body or {}
            check_mapping(body, where, key, {"primary": bool, "domains": list, "hosts": list,
                                             "addresses": list, "cms": list, "idms": list})
            networks = []
            for i, text in enumerate(body.get("addresses", [])):
                try:
                    networks.append(ipaddress.ip_network(str(text), strict=False))
                except ValueError:
                    raise where.error((*key, "addresses", i), f"{text!r} is not an address or network") \
                        from None
            systems.append(McSystem(str(name), tuple(map(_host, body.get("domains", []))),
                                    tuple(map(_host, body.get("hosts", []))), tuple(networks),
                                    tuple(map(_host, body.get("cms", []))),
                                    tuple(map(_host, body.get("idms", []))), body.get("primary")))
        if sum(1 for s in systems if s.primary) > 1:
            raise where.error(("systems",), "more than one system says primary: true")
        return cls(systems)

    @classmethod
    def infer(cls, observations: Iterable[tuple[str, str | None]], limit: int = DEFAULT_LIMITS.domains,
              problems: list | None = None) -> SystemMap:
        """Infer systems from ``(domain, server address)`` pairs seen in requests.

        Domains are merged when one is a server's host name under the other (``ims.``, ``cms.``, ...) or
        when they were served by the same server address; each group becomes a system named after its
        shortest domain. The first ``limit`` distinct domains and server addresses are learnt. The
        result depends only on the order in which each pair first comes and on how often each comes (so
        repeats may be given together, at the first: the events stage does).
        """
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        def union(a: str, b: str) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:  # (whatever their lengths: two names as long as each other are joined too)
                keep, join = sorted((ra, rb), key=lambda d: (len(d), d))
                parent[join] = keep

        by_server: dict[str, str] = {}
        domains: set[str] = set()
        skipped = 0
        for domain, server in observations:
            if not domain or _ip(domain) is not None:
                continue
            domain = _host(domain)
            if domain not in domains:
                if len(domains) >= limit:
                    skipped += 1
                    continue
                domains.add(domain)
            find(domain)
            ip = server_ip(server)
            if ip:
                if ip in by_server:
                    union(domain, by_server[ip])
                elif len(by_server) < limit:
                    by_server[ip] = domain
                else:
                    skipped += 1
        if skipped and problems is not None:
            problems.append(Problem("table-full", f"more than {limit} distinct domains or server addresses: "
                                    "the ones met after that belong to no inferred system "
                                    f"({skipped} requests in all); raise the cap with --limit domains=N"))
        # A server's host name joins its system's domain (cms.b.example, ims.b.example → b.example), but
        # one system's domain never swallows another's: a.mcx.example and b.mcx.example stay two systems
        # even when mcx.example is itself a system.
        for domain in list(domains):
            label, _, owner = domain.partition(".")
            if label in SERVER_LABELS and owner.count(".") >= 1:
                domains.add(owner)
                union(domain, owner)
        groups: dict[str, list[str]] = {}
        for domain in domains:
            groups.setdefault(find(domain), []).append(domain)
        systems, root_name = [], {}
        for root, members in groups.items():
            name = min(members, key=lambda d: (len(d), d))
            root_name[root] = name
            systems.append(McSystem(name, tuple(sorted(members))))
        addresses = {ip: root_name[find(d)] for ip, d in by_server.items()}
        return cls(systems, addresses)

    def merged_with(self, inferred: SystemMap) -> SystemMap:
        """A configured map, completed by what the traffic shows for domains the file does not name."""
        extra = [s for s in inferred.systems.values()
                 if not any(self.of_host(d) for d in s.domains)]
        addresses = {ip: self.of_host(name) or name for ip, name in inferred._addresses.items()
                     if not self.of_address(ip)}
        merged = SystemMap([*self.systems.values(), *extra], {**addresses, **self._addresses})
        return merged


def server_ip(address: str | None) -> str | None:
    """The IP address of an ``ip:port`` (IPv6 in brackets), or the text itself when it has no port."""
    if not address:
        return None
    if address.startswith("["):
        return address[1:address.index("]")]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address
