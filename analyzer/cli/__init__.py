"""The ``mcxa`` command: a thin click layer over the stages; all errors end as one line and an exit code.

The commands live by family (``listing``, ``judging``, ``tools``) and share ``options``; the meaning
stages are imported by the commands that use them, so ``mcxa messages`` on a big capture does not pay for
them at start-up. May import every stage and the side tools.
"""

from __future__ import annotations

import gc
import os
import sys

import click

from analyzer import __version__
from analyzer.base import times
from analyzer.base.errors import McxaError
from analyzer.base.exitcodes import ExitCode
from analyzer.cli import judging, listing, tools, watching


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcxa")
def cli():
    """mcxa: decode MC (MCPTT, MCVideo, MCData) signalling from captures and judge TS 23.280 §10.16
    migrations."""


for command in (listing.messages, listing.events, listing.sessions, listing.flow, judging.analyze,
                judging.batch, judging.replay, watching.watch, tools.synth, tools.rules):
    cli.add_command(command)


def main(argv=None) -> int:
    """Entry point: click handles usage errors (exit 2); our input errors print one line (exit 2)."""
    # Millions of short-lived, acyclic records: collecting every 700 allocations wastes ~10 % of the run.
    gc.set_threshold(20_000, 20, 20)
    with times.use(times.UTC_DATE):  # what a command's --time-format selects ends with the command
        return _run(argv)


def _run(argv) -> int:
    try:
        # Without standalone mode click returns a command's Exit code instead of raising it.
        code = cli.main(args=argv, prog_name="mcxa", standalone_mode=False)
        if isinstance(code, int):
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message(), err=True)
        return ExitCode.BAD_INPUT
    except click.UsageError as exc:  # one line, with where to look, instead of click's three
        command = exc.ctx.command_path if exc.ctx else _command_path(sys.argv[1:] if argv is None else argv)
        click.echo(f"{command}: {_usage_message(exc)} (see '{command} --help')", err=True)
        return ExitCode.BAD_INPUT
    except click.ClickException as exc:
        click.echo(f"mcxa: {exc.format_message()}", err=True)
        return ExitCode.BAD_INPUT
    except click.Abort:
        click.echo("mcxa: aborted", err=True)
        return ExitCode.BAD_INPUT
    except McxaError as exc:
        click.echo(f"mcxa: {exc}", err=True)
        return ExitCode.BAD_INPUT
    except BrokenPipeError:
        sys.stderr.close()  # `mcxa messages ... | head`: the reader left; not an error of ours
        return ExitCode.OK
    except OSError as exc:  # an output file we cannot write
        click.echo(f"mcxa: {exc.filename or 'output'}: {exc.strerror or exc}", err=True)
        return ExitCode.BAD_INPUT
    except Exception as exc:  # a bug of ours: still one line, and the traceback on request
        if os.environ.get("MCXA_DEBUG"):
            raise
        click.echo(f"mcxa: internal error: {type(exc).__name__}: {exc} (set MCXA_DEBUG=1 for the "
                   "traceback, and please report it with the capture)", err=True)
        return ExitCode.BAD_INPUT
    return ExitCode.OK


def _command_path(argv) -> str:
    """The (sub)command ARGV names, for a usage error click raised without its context (an option missing
    its value is found while the subcommand's context is still being made)."""
    path, command = ["mcxa"], cli
    for token in argv:
        if not isinstance(command, click.Group):
            break
        if token in command.commands:
            command = command.commands[token]
            path.append(token)
        elif not token.startswith("-"):
            break
    return " ".join(path)


def _usage_message(exc: click.UsageError) -> str:
    if isinstance(exc, click.BadOptionUsage) and exc.message.endswith("requires an argument."):
        return f"{exc.option_name} needs a value"
    return exc.format_message()


if __name__ == "__main__":
    sys.exit(main())
