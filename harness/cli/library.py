"""`chaos-harness list` and `validate`: the scenario library, and checking scenario files."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.errors import fail

DEFAULT_LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"


@click.command(name="list")
@click.argument("folder", type=click.Path(path_type=Path), default=DEFAULT_LIBRARY)
def list_scenarios(folder: Path) -> None:
    """List the scenario library (or any folder of scenarios)."""
    from harness.scenario import ScenarioError, load_scenario

    paths = sorted(folder.rglob("*.yaml"))
    if not paths:
        fail(f"{folder}: no scenario files")
    for path in paths:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            click.echo(f"  {path.relative_to(folder)}  INVALID: {exc}")
            continue
        summary = scenario.description.strip().splitlines()[0] if scenario.description else ""
        click.echo(f"  {path.relative_to(folder)!s:<40} {scenario.duration:6.0f}s  {summary}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check scenario files; the first error names the field and the reason (exit 2)."""
    from harness.scenario import ScenarioError, load_scenario, scenario_files

    try:
        for target in files:
            for path in scenario_files(target):
                scenario = load_scenario(path)
                click.echo(f"ok  {path}  ({scenario.name}, {scenario.duration:.0f}s)")
    except ScenarioError as exc:
        fail(str(exc))
