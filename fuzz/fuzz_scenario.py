"""Harness: synth scenarios (YAML text → ``parse_scenario``), and one in ``SYNTH_EVERY`` of the scenarios
that load (chosen by a checksum of the input, so a finding replays) is synthesised into packets and pcapng
bytes: synthesis takes ~100 times as long as parsing. ``InputError`` is the documented error."""

from __future__ import annotations

import zlib

from fuzz import harness

SYNTH_EVERY = 8


def load():
    from analyzer.base.errors import InputError
    from analyzer.synth import synthesize
    from analyzer.synth.pcapng import pcapng_bytes
    from analyzer.synth.scenario import parse_scenario

    def target(data: bytes) -> None:
        try:
            scenario = parse_scenario(data.decode("utf-8"))
        except (InputError, UnicodeDecodeError):
            return
        if zlib.crc32(data) % SYNTH_EVERY == 0:
            pcapng_bytes(synthesize(scenario).packets)

    return target


if __name__ == "__main__":
    harness.main(load)
