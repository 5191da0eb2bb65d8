"""The `chaos-harness` command line. Exit codes: 0 ok, 1 an SLO breached, 2 bad input or environment."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from resilience_core import __version__

EXIT_BAD_INPUT = 2
DEFAULT_LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"


def fail(message: str) -> None:
    """One clear line on stderr, exit code 2."""
    click.echo(f"chaos-harness: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chaos-harness")
def cli() -> None:
    """Chaos-test AI model endpoints: simulated models behind Toxiproxy, Locust load, SLO verdicts."""


@cli.command()
def demo() -> None:
    """Show the resilience core at work, in virtual time (under a second)."""
    from harness.demo import run_demo

    raise SystemExit(run_demo())


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option("--time-scale", type=float, default=None, help="Multiply every duration (0.2 = 5x faster).")
@click.option("--target", "target_url", default=None, help="Run against this external base URL instead.")
@click.option("--seed", type=int, default=None)
@click.option("--no-control", is_flag=True, help="Skip the passthrough control run.")
@click.option("--workers", type=int, default=0, help="Locust master + N worker processes on this machine.")
@click.option(
    "--stack",
    "stack_file",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Attach to the stack `chaos-harness up` started (its stack.json) instead of starting one.",
)
def run(
    target: Path,
    out: Path,
    time_scale: float | None,
    target_url: str | None,
    seed: int | None,
    no_control: bool,
    stack_file: Path | None,
    workers: int,
) -> None:
    """Run a scenario file, or every scenario in a folder (a suite)."""
    from harness.processes import EnvironmentProblem
    from harness.run import Runner, format_summary, main_progress
    from harness.scenario import ScenarioError, load_scenario, scenario_files

    try:
        scenarios = [load_scenario(path) for path in scenario_files(target)]
    except ScenarioError as exc:
        fail(str(exc))
    if time_scale is not None and time_scale <= 0:
        fail("--time-scale must be > 0")
    if workers < 0:
        fail("--workers must be >= 0")
    runner = Runner(out, progress=main_progress, workers=workers)
    folders = []
    started = time.monotonic()
    try:
        for scenario in scenarios:
            updates = {}
            if time_scale is not None:
                updates["time_scale"] = time_scale
            if seed is not None:
                updates["seed"] = seed
            scenario = scenario.model_copy(update=updates)
            headline = scenario.description.strip().splitlines()[0] if scenario.description else ""
            click.echo(f"== {scenario.name}: {headline}")
            result = runner.run(scenario, target=target_url, control=not no_control, attach=stack_file)
            click.echo(format_summary(result))
            folders.append(result.folder)
    except EnvironmentProblem as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("chaos-harness: interrupted; toxics removed, processes stopped, records kept", err=True)
        raise SystemExit(130) from None
    click.echo(f"\n{len(folders)} run folder(s) in {time.monotonic() - started:.0f}s:")
    for folder in folders:
        click.echo(f"  {folder}")


@cli.command(name="list")
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


@cli.command()
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


@cli.command()
@click.option("--models", type=int, default=3, show_default=True)
@click.option(
    "--mode", type=click.Choice(["resilient", "passthrough"]), default="resilient", show_default=True
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/up"), show_default=True)
def up(models: int, mode: str, out: Path) -> None:
    """Start endpoints, Toxiproxy and a gateway, print their addresses, stop on Ctrl-C."""
    from harness.processes import EnvironmentProblem, raise_on_sigterm
    from harness.stack import GROUP, gateway_config, start_stack

    raise_on_sigterm()
    try:
        stack = start_stack(models, out)
    except EnvironmentProblem as exc:
        fail(str(exc))
    try:
        url = stack.start_gateway(gateway_config(stack, mode), out)
        (out / "stack.json").write_text(json.dumps(stack.describe(), indent=2), encoding="utf-8")
        click.echo(f"gateway ({mode}): {url}/v1  (model name: {GROUP})")
        click.echo(f"toxiproxy API:  {stack.toxiproxy.url}")
        for model in stack.models:
            click.echo(
                f"  {model}: endpoint {stack.endpoint_urls[model]}  via proxy {stack.proxy_urls[model]}"
            )
        click.echo(
            f"stack file: {out / 'stack.json'}  (chaos-harness run ... --target URL --stack this-file)"
        )
        click.echo("Ctrl-C to stop.")
        while all(child.alive() for child in stack.children):
            time.sleep(0.5)
        fail("a process of the stack exited; see the logs in " + str(out))
    except EnvironmentProblem as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point for the console script and `python -m harness`."""
    try:
        cli.main(args=argv, prog_name="chaos-harness", standalone_mode=True)
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
            return EXIT_BAD_INPUT
        return int(exit_.code or 0)
    return 0
