"""``mcxa flow`` as a person at a terminal sees it: on a real pseudo-terminal of 80 to 200 columns every line
fits (and the widest fills it), piped the ladder takes its natural width with nothing cut, COLUMNS is
honoured, and the columns are headed by the role each server played (SIP core, MC server, CMS, IdMS, GMS)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.meaning.events import Event
from analyzer.meaning.roles import event_role, server_roles
from analyzer.meaning.systems import SystemMap
from tests.terminal import ROOT, plain, run_on_terminal

REJECTED = "sample_captures/group-migration-affiliation-rejected.pcapng"
PRIVATE = "sample_captures/private-migration-compliant.pcapng"


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()[:1].isdigit()]


@pytest.mark.parametrize("columns", [80, 100, 120, 160, 200])
def test_every_line_fits_the_terminal_and_the_widest_fills_it(columns):
    code, out = run_on_terminal(["flow", REJECTED, "-q"], columns)
    assert code == ExitCode.OK and "\x1b[" in out  # coloured: it is a terminal
    lines = plain(out).splitlines()
    widest = max(len(line) for line in lines)
    assert columns - 5 < widest <= columns  # 5 lanes share the width: at most 4 columns are left over
    title, roles, _names, addresses = lines[:4]
    assert title.startswith("ue1 sip:alice@a.mcx.example  (32 messages, times 2026-05-01 UTC)")
    assert roles.split() == ["UE", "SIP", "core", "IdMS", "CMS", "SIP", "core"]
    assert "10.10.0.10" in addresses and "10.20.0.21" in addresses
    publish = next(i for i, line in enumerate(lines) if line.lstrip().startswith("63 "))
    # the deviating step is next to its message, or (narrow) on the line under it
    assert "affiliation: failed" in lines[publish] + lines[publish + 1]
    assert " 10:00:12.123339 " in lines[publish]  # time of day; date and zone are in the title


def test_narrow_terminals_keep_labels_readable_by_moving_notes_under_their_rows():
    _, out = run_on_terminal(["flow", REJECTED, "-q"], 80)
    lines = plain(out).splitlines()
    assert any("REGISTER─▶" in line for line in lines)  # not "REG…"
    assert any(line.strip() == "↳ registered: matched" for line in lines)
    _, wide = run_on_terminal(["flow", REJECTED, "-q"], 160)
    assert not any("↳" in line for line in plain(wide).splitlines())


def _piped(*args, env=None) -> str:
    result = subprocess.run([sys.executable, "-m", "analyzer", "flow", *args, "-q"], cwd=ROOT, timeout=120,
                            capture_output=True, text=True, env=env, check=True)
    return result.stdout


def test_piped_the_ladder_has_its_natural_width_with_nothing_cut():
    out = _piped(REJECTED, env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    assert "\x1b[" not in out and "…" not in out
    lines = out.splitlines()
    assert any("sip:alice@a.mcx.example" in line for line in lines[1:4])
    assert any("affiliation: failed" in line and "PUBLISH" in line for line in _rows(out))
    assert 80 <= max(len(line) for line in lines) < 200


def test_columns_sets_the_width_of_a_pipe_too():
    out = _piped(REJECTED, env={**os.environ, "COLUMNS": "100"})
    assert max(len(line) for line in out.splitlines()) <= 100


def test_roles_of_the_servers_of_a_migration():
    code, out = run_on_terminal(["flow", PRIVATE, "-q"], 200)
    assert code == ExitCode.OK
    roles = plain(out).splitlines()[1]
    assert roles.split()[0] == "UE" and "SIP core" in roles


def _event(kind: str, server: str, domain: str | None = None, detail: str | None = None) -> Event:
    return Event(kind, 1.0, (1,), "from-ue", "10.0.0.1:5060", server, "success", domain=domain,
                 detail=detail)


def test_a_server_s_role_is_what_it_did():
    systems = SystemMap([])
    events = [_event("registration", "10.0.0.2:5060"), _event("affiliation", "10.0.0.2:5060"),
              _event("affiliation", "10.0.0.3:5060"),
              _event("profile-retrieval", "10.0.0.4:443", "cms.b.example"),
              _event("config-retrieval", "10.0.0.4:443", "cms.b.example", "org.openmobilealliance.groups"),
              _event("token-request", "10.0.0.5:443", "idms.b.example"),
              _event("config-retrieval", "[2001:db8::6]:8080", "gms.b.example", "403 Forbidden")]
    assert server_roles(events, systems) == {"10.0.0.2": "SIP core", "10.0.0.3": "MC server",
                                             "10.0.0.4": "CMS/GMS", "10.0.0.5": "IdMS", "2001:db8::6": "GMS"}
    assert event_role(_event("config-access-encrypted", "10.0.0.7:443", "idm.b.example"), systems) == "IdMS"


def test_a_cut_server_address_keeps_its_end_so_columns_stay_apart():
    code, out = run_on_terminal(["flow", "sample_captures/group-migration-tcp-ipv6.pcapng", "-q"], 80)
    assert code == ExitCode.OK
    addresses = plain(out).splitlines()[3].split()
    assert addresses[1:] == ["…01:db8:a::10", "…01:db8:b::20", "…01:db8:b::10"]
