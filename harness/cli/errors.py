"""Exit codes and the one-line failure every command uses."""

from __future__ import annotations

from typing import NoReturn

import click

EXIT_OK = 0
EXIT_BREACHED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def fail(message: str) -> NoReturn:
    """One clear line on stderr, exit code 2 (bad input or environment)."""
    click.echo(f"chaos-harness: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)
