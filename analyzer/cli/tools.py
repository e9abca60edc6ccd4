"""The tools beside the pipeline: ``synth`` (a capture from a scenario) and ``rules lint|explain``."""

from __future__ import annotations

import os

import click

from analyzer.cli.options import (
    output_path,
    quiet_option,
)


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, writable=True),
              callback=output_path, help="The pcapng file to write.")
@quiet_option
def synth(scenario, output, quiet):
    """Synthesise the capture a SCENARIO (YAML) describes and write it as pcapng to OUTPUT."""
    from analyzer.synth import load_scenario, synthesize, write_pcapng

    result = synthesize(load_scenario(scenario))
    sa_file = write_pcapng(result, output)
    if not quiet:
        err = click.get_text_stream("stderr")
        err.write(f"mcxa: {output}: {len(result.packets)} packets, {len(result.declared)} SIP/HTTP "
                  f"messages, {len(result.hellos)} TLS ClientHello(s)\n")
        if sa_file:
            err.write(f"mcxa: {sa_file}: its {len(result.esp_sas)} IPsec SAs (give it with --esp-sa to check "
                      "every ICV)\n")
        for note in result.notes:
            err.write(f"  note: {note}\n")


@click.group()
def rules():
    """Check and explain rule files."""


@rules.command("lint")
@click.argument("paths", nargs=-1, type=click.Path())
def rules_lint(paths):
    """Validate rule files (default: the shipped rules/); one line per problem, exit 2 on any."""
    from analyzer.rules import load_rules

    loaded = [r for path in (paths or (None,)) for r in load_rules(path)]
    for rule in loaded:
        steps = f"{len(rule.steps)} step{'s' if len(rule.steps) != 1 else ''}"
        click.echo(f"ok  {rule.id:<28} {steps:<8} {rule.path}")


@rules.command("explain")
@click.argument("rule")
@click.option("--rules", "rules_dir", type=click.Path(), help="Rule directory (default: the shipped rules/).")
def rules_explain(rule, rules_dir):
    """Print RULE (an id or a file) as numbered steps in plain words."""
    from analyzer.rules import load_rules
    from analyzer.rules.explain import explain

    found = [r for r in load_rules(rule if os.path.isfile(rule) else rules_dir) if r.id == rule
             or os.path.isfile(rule)]
    if not found:
        known = ", ".join(r.id for r in load_rules(rules_dir))
        raise click.BadParameter(f"no rule '{rule}' (known: {known})", param_hint="RULE")
    click.echo(explain(found[0]))
