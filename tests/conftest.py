"""The whole suite runs in UTC: text outputs show local times (``TZ``), and what a test expects of them must
not depend on the machine's zone. Tests of other zones set ``TZ`` themselves (``tests/test_times.py``).
Shared fixtures: ``big_capture``, a capture big enough for the progress line."""

import os
import time

import pytest

from tests.packets import sip_request, udp_frame, write_pcap

os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory):
    """Just over 2 MiB (progress lines show for files over 1 MiB): 4 SIP requests between ~1.4k media
    datagrams of 1.5 kB."""
    path = tmp_path_factory.mktemp("big") / "big.pcap"
    media = udp_frame("10.0.0.1", "10.0.0.2", 40000, 40002, b"\x80" * 1500)
    frames = []
    for i in range(4):
        frames.append(udp_frame("10.0.0.1", "10.0.0.2", 5060, 5060, sip_request("OPTIONS", f"c-{i}")))
        frames += [media] * 360
    write_pcap(path, frames)
    assert path.stat().st_size > 2 << 20
    return path
