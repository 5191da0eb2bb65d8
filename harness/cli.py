"""The `chaos-harness` command line."""

from __future__ import annotations

import click

from resilience_core import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chaos-harness")
def cli() -> None:
    """Chaos-test AI model endpoints: simulated models behind Toxiproxy, load, SLO verdicts."""


@cli.command()
def demo() -> None:
    """Show the resilience core at work, in virtual time (under a second)."""
    from harness.demo import run_demo

    raise SystemExit(run_demo())


def main(argv: list[str] | None = None) -> int:
    """Entry point for the console script and `python -m harness`."""
    try:
        cli.main(args=argv, prog_name="chaos-harness", standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    return 0
