"""`chaos-harness report`: rebuild a run's reports from its files, optionally against a baseline."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.errors import fail


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--compare", "other", type=click.Path(path_type=Path), default=None, help="A baseline run folder."
)
@click.option(
    "--fail-on",
    default="uptime,failure_impact,recovery_time_s,p99_ms",
    show_default=True,
    help="With --compare: SLIs whose regression past the tolerance fails (exit 1).",
)
@click.option("--tolerance", type=float, default=0.10, show_default=True, help="Relative worsening allowed.")
def report(run_dir: Path, other: Path | None, fail_on: str, tolerance: float) -> None:
    """Rebuild results.json, report.html, summary.md and junit.xml from a run folder's files."""
    from reports import RunDataError, ThresholdError, build, compare
    from reports.compare import COMPARED
    from reports.compare import render as render_changes
    from reports.markdown import text_table

    try:
        built = build(run_dir)
        baseline = build(other, plots=False) if other is not None else None
    except (RunDataError, ThresholdError) as exc:
        fail(str(exc))
    click.echo(text_table(built.results))
    click.echo(f"  report: {built.html}")
    if baseline is None:
        return
    watched = {name.strip() for name in fail_on.split(",") if name.strip()}
    unknown = watched - set(COMPARED)
    if unknown:
        fail(f"--fail-on: unknown SLI {sorted(unknown)[0]!r}; one of {', '.join(COMPARED)}")
    changes = compare(built.results, baseline.results)
    click.echo(f"\ncompared with {other} (tolerance {tolerance:.0%}):")
    click.echo(render_changes(changes, tolerance, watched))
    regressed = [c.sli for c in changes if c.sli in watched and c.regressed(tolerance)]
    if regressed:
        click.echo(f"chaos-harness: regressed past {tolerance:.0%}: {', '.join(regressed)}", err=True)
        raise SystemExit(1)
