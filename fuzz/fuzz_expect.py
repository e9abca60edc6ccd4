"""Harness: replay expect files (YAML text → ``check_expectations`` against the shipped rules).
``InputError`` is the documented error of an expect file."""

from __future__ import annotations

from fuzz import harness


def load():
    from analyzer.base.errors import InputError
    from analyzer.base.yamlfile import parse_yaml
    from analyzer.rules import load_rules
    from analyzer.run.replay import check_expectations

    rules = load_rules()

    def target(data: bytes) -> None:
        try:
            data_, where = parse_yaml(data.decode("utf-8"), "expect.yaml")
            check_expectations(data_, where, rules)
        except (InputError, UnicodeDecodeError):
            return

    return target


if __name__ == "__main__":
    harness.main(load)
