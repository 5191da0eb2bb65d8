"""The `chaos-harness` command line. Exit codes: 0 ok, 1 an SLO breached, 2 bad input or environment."""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path

import click

from harness.cli.admin import admin
from harness.cli.conformance import conformance
from harness.cli.errors import EXIT_BAD_INPUT
from harness.cli.explore import explore
from harness.cli.library import list_scenarios, validate
from harness.cli.report import report
from harness.cli.run import gate, run
from harness.cli.scorecard import scorecard
from harness.cli.up import up
from harness.cli.worker import worker
from resilience_core import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chaos-harness")
def cli() -> None:
    """Chaos-test AI model endpoints: simulated models behind Toxiproxy, Locust load, SLO verdicts."""


@cli.command()
def demo() -> None:
    """Show the resilience core at work, in virtual time (under a second)."""
    from harness.sim.tour import run_demo

    raise SystemExit(run_demo())


commands = (run, gate, report, scorecard, list_scenarios, validate, up, admin, conformance, explore, worker)
for command in commands:
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point for the console script and `python -m harness`.

    Exit 1 means "an SLO was breached" to CI, so nothing else may end in 1: a disk that fills,
    a file that cannot be written, or a bug here all end in 2 with one line (a bug's traceback
    goes to a file the line names)."""
    try:
        cli.main(args=argv, prog_name="chaos-harness", standalone_mode=True)
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
            return EXIT_BAD_INPUT
        return int(exit_.code or 0)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"chaos-harness: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        log = Path(tempfile.gettempdir()) / f"chaos-harness-error-{os.getpid()}.log"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        print(
            f"chaos-harness: internal error: {type(exc).__name__}: {exc} (traceback in {log})",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return 0
