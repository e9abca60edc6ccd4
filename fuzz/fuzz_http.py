"""Harness: the HTTP/1.x message parser (``parse_http``) and ``to_message``; see ``fuzz_sip``."""

from __future__ import annotations

from fuzz import harness
from fuzz.fuzz_sip import message_target


def load():
    return message_target("http")


if __name__ == "__main__":
    harness.main(load)
