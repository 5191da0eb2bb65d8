"""`chaos-harness worker --master HOST:PORT`: load from this machine for a run started on
another one (`run --remote-workers N --master-bind HOST:PORT`).

Each variant of a run (ours, then the control) is one Locust master on the same address: a
worker joins it, takes the target and the schedule from it, sends its records back when the
load stops, and exits with it; this command then waits for the next one, until `--runs` are
done or Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import click

from harness.cli.errors import EXIT_INTERRUPTED, fail


def parse_master(value: str, option: str = "--master") -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"{option} {value!r}: expected HOST:PORT, e.g. 10.0.0.5:5557")
    return host, int(port)


def rows(records: Path) -> int:
    if not records.exists():
        return 0
    with records.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


@click.command()
@click.option("--master", required=True, metavar="HOST:PORT", help="Where the run's Locust master listens.")
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after joining this many load runs (a run with a control has two) [default: until stopped].",
)
def worker(master: str, runs: int | None) -> None:
    """Join the load of runs started elsewhere with --remote-workers."""
    from harness.stack.processes import Child, python_module, raise_on_sigterm

    host, port = parse_master(master)
    raise_on_sigterm()
    done = 0
    with tempfile.TemporaryDirectory(prefix="chaos-worker-") as folder:
        try:
            while runs is None or done < runs:
                click.echo(f"waiting for a run's load at {host}:{port} (joined {done} so far)")
                records = Path(folder) / f"records-{done}.csv"
                argv = python_module(
                    "harness.load",
                    "--role",
                    "worker",
                    "--master-host",
                    host,
                    "--master-port",
                    str(port),
                    "--host",
                    "http://127.0.0.1",  # the master sends the real target
                    "--records",
                    str(records),
                )
                child = Child("locust-worker", argv, Path(folder) / f"worker-{done}.log")
                try:
                    child.process.wait()
                finally:
                    child.stop()
                if child.process.returncode != 0:
                    fail(f"the Locust worker exited ({child.process.returncode}): {child.tail()}")
                done += 1
                click.echo(f"load run {done} over: {rows(records)} request(s) from here, their records sent")
        except KeyboardInterrupt:
            click.echo("chaos-harness worker: stopped", err=True)
            sys.exit(EXIT_INTERRUPTED)
