"""The value checks every part of a scenario shares: addresses, URIs, text that ends up in a header, and
closed choices. Each failure is an ``InputError`` naming file, line and key.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from analyzer.base.errors import InputError
from analyzer.base.yamlfile import Locations, describe
from analyzer.synth.scenario.model import URI_SCHEMES


def family(address: str) -> int:
    """4 or 6: an address's IP version (a UE and the servers it talks to must agree)."""
    return ipaddress.ip_address(address).version


class Checker:
    """Checks values against one file's locations, so every error points at its line."""

    def __init__(self, locations: Locations):
        self.loc = locations

    def error(self, path, reason: str) -> InputError:
        return self.loc.error(tuple(path), reason)

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
