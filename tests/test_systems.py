"""MC systems: inferred from domains and server addresses, or named in a systems file."""

import pytest

from analyzer.base.errors import InputError
from analyzer.meaning.systems import SystemMap


def test_inference_groups_subdomains_and_domains_served_by_one_address():
    seen = [("a.mcx.example", "10.10.0.10:5060"), ("ims.a.mcx.example", "10.10.0.10:5060"),
            ("cms.a.mcx.example", "10.10.0.20:80"),
            ("b.mcx.example", "10.20.0.10:5060"), ("ims.mnc001.mcc262.3gppnetwork.org", "10.20.0.10:5060")]
    systems = SystemMap.infer(seen)
    assert set(systems.systems) == {"a.mcx.example", "b.mcx.example"}
    assert systems.of_host("cms.a.mcx.example") == "a.mcx.example"
    assert systems.of_host("ims.mnc001.mcc262.3gppnetwork.org") == "b.mcx.example"
    assert systems.of_address("10.20.0.10:5060") == "b.mcx.example"
    assert systems.of_address("[2001:db8::1]:5060") is None
    assert systems.primary() is None


def test_ip_literals_are_not_domains():
    systems = SystemMap.infer([("10.1.0.5", "10.10.0.10:5060"), ("a.mcx.example", "10.10.0.10:5060")])
    assert set(systems.systems) == {"a.mcx.example"}


def test_systems_file_names_systems_ranges_and_servers(tmp_path):
    path = tmp_path / "systems.yaml"
    path.write_text("""
systems:
  Home:
    primary: true
    domains: [a.mcx.example]
    addresses: [10.10.0.0/16, "2001:db8:a::/48"]
    cms: [config.home.example]
  Partner: {domains: [b.mcx.example], addresses: [10.20.0.0/16]}
""")
    systems = SystemMap.from_file(path)
    assert systems.primary() == "Home"
    assert systems.of_host("sip.a.mcx.example") == "Home"
    assert systems.of_address("10.20.3.4:5060") == "Partner"
    assert systems.of_address("[2001:db8:a::10]:5060") == "Home"
    assert systems.server_kind("config.home.example") == "cms"
    assert systems.server_kind("cms.b.mcx.example") == "cms"  # conventional name, no file entry
    merged = systems.merged_with(SystemMap.infer([("c.mcx.example", "10.30.0.10:5060")]))
    assert merged.of_host("c.mcx.example") == "c.mcx.example" and merged.of_host("a.mcx.example") == "Home"


@pytest.mark.parametrize("text,needle", [
    ("systems:\n  A: {domainz: [a]}\n", "unknown key 'domainz'"),
    ("systems:\n  A: {addresses: [not-an-ip]}\n", "is not an address or network"),
    ("systems:\n  A: {primary: true}\n  B: {primary: true}\n", "more than one system"),
    ("system: {}\n", "unknown key 'system'"),
])
def test_bad_systems_files_give_one_line_naming_file_and_line(tmp_path, text, needle):
    path = tmp_path / "systems.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        SystemMap.from_file(path)
    message = str(err.value)
    assert needle in message and "systems.yaml:" in message and "\n" not in message


def test_the_readme_systems_file_example_loads(tmp_path):
    """The README shows a systems file: it must stay valid."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if b.startswith("systems:")]
    path = tmp_path / "systems.yaml"
    path.write_text(block)
    systems = SystemMap.from_file(path)
    assert systems.primary() == "Home" and systems.server_kind("login.home.example") == "idms"


def test_a_partner_domain_under_the_primary_domain_stays_a_system_of_its_own():
    seen = [("a.mcx.example", "10.10.0.10:5060"), ("mcx.example", "10.98.0.1:5060"),
            ("cms.mcx.example", "10.98.0.1:443"), ("ims.a.mcx.example", "10.10.0.10:5060")]
    systems = SystemMap.infer(seen)
    assert set(systems.systems) == {"a.mcx.example", "mcx.example"}
    assert systems.of_host("ims.a.mcx.example") == "a.mcx.example"


def test_two_domains_served_by_one_address_are_one_system_however_long_their_names():
    """The same address served both: one system, named after the shorter name (alphabetical on a tie) —
    domain names of the same length were left two systems."""
    for other in ("b.mcx.example", "bb.mcx.example"):
        seen = [("a.mcx.example", "10.10.0.10:5060"), (other, "10.10.0.10:5060")]
        systems = SystemMap.infer(seen)
        assert set(systems.systems) == {"a.mcx.example"}
        assert systems.of_host(other) == "a.mcx.example"


def test_inference_depends_on_each_pairs_first_coming_and_count_only():
    """The events stage gives each (domain, server) pair once, at its first coming, repeated as often as it
    came: the systems, their addresses and the cap's count must be those of the pairs in capture order,
    caps hit or not (random sequences over a few names, with caps of 2 and 3)."""
    import itertools
    import random

    rnd = random.Random(5)
    domains = ["a.mcx.example", "b.mcx.example", "bb.mcx.example", "ims.a.mcx.example", "c.example",
               "10.0.0.9"]
    servers = ["10.1.0.1:5060", "10.1.0.2:5060", "10.1.0.3:5060", None]
    for trial in range(300):
        sequence = [(rnd.choice(domains), rnd.choice(servers)) for _ in range(rnd.randint(1, 30))]
        counts = dict.fromkeys(sequence, 0)
        for pair in sequence:
            counts[pair] += 1
        grouped = list(itertools.chain.from_iterable(itertools.repeat(p, n) for p, n in counts.items()))
        limit = (2, 3, 100)[trial % 3]
        told, told_grouped = [], []
        whole = SystemMap.infer(sequence, limit, told)
        first = SystemMap.infer(grouped, limit, told_grouped)
        assert {n: s.domains for n, s in whole.systems.items()} == \
            {n: s.domains for n, s in first.systems.items()}, sequence
        assert [whole.of_address(s) for s in servers if s] == [first.of_address(s) for s in servers if s]
        assert [p.message for p in told] == [p.message for p in told_grouped]
