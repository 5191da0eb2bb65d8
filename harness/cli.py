"""The `chaos-harness` command line. Exit codes: 0 ok, 1 an SLO breached, 2 bad input or environment."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.admin_cli import admin
from resilience_core import __version__

if TYPE_CHECKING:
    from reports import Report

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


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `run` and `gate` share: where, how fast, against what."""
    options = [
        click.argument("target", type=click.Path(path_type=Path)),
        click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True),
        click.option(
            "--time-scale", type=float, default=None, help="Multiply every duration (0.2 = 5x faster)."
        ),
        click.option(
            "--target", "target_url", default=None, help="Run against this external base URL instead."
        ),
        click.option("--seed", type=int, default=None),
        click.option("--no-control", is_flag=True, help="Skip the passthrough control run."),
        click.option(
            "--workers", type=int, default=0, help="Locust master + N worker processes on this machine."
        ),
        click.option(
            "--mode",
            type=click.Choice(["resilient", "passthrough"]),
            default="resilient",
            show_default=True,
            help="Our gateway's mode as the system under test (passthrough = judge the control itself).",
        ),
        click.option(
            "--backend",
            type=click.Choice(["local", "docker"]),
            default="local",
            show_default=True,
            help="Endpoints and Toxiproxy as local processes, or as containers (needs a Docker engine).",
        ),
        click.option(
            "--stack",
            "stack_file",
            type=click.Path(path_type=Path, exists=True),
            default=None,
            help="Attach to the stack `chaos-harness up` started (its stack.json) instead of starting one.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_scenarios(
    target: Path,
    out: Path,
    time_scale: float | None,
    target_url: str | None,
    seed: int | None,
    no_control: bool,
    stack_file: Path | None,
    workers: int,
    mode: str,
    backend: str,
) -> list[Report]:
    """Run every scenario of `target`, print progress, summaries and verdicts; exit 2 on bad input."""
    from harness.processes import EnvironmentProblem
    from harness.run import Runner, format_summary, main_progress
    from harness.scenario import ScenarioError, load_scenario, scenario_files
    from reports.markdown import text_table

    try:
        scenarios = [load_scenario(path) for path in scenario_files(target)]
    except ScenarioError as exc:
        fail(str(exc))
    if time_scale is not None and time_scale <= 0:
        fail("--time-scale must be > 0")
    if workers < 0:
        fail("--workers must be >= 0")
    runner = Runner(out, progress=main_progress, workers=workers, backend=backend)
    done: list[Report] = []
    started = time.monotonic()
    try:
        for scenario in scenarios:
            updates: dict[str, Any] = {}
            if time_scale is not None:
                updates["time_scale"] = time_scale
            if seed is not None:
                updates["seed"] = seed
            scenario = scenario.model_copy(update=updates)
            headline = scenario.description.strip().splitlines()[0] if scenario.description else ""
            click.echo(f"== {scenario.name}: {headline}")
            result = runner.run(
                scenario, target=target_url, control=not no_control, attach=stack_file, mode=mode
            )
            click.echo(format_summary(result))
            assert result.report is not None
            click.echo(text_table(result.report.results))
            click.echo(f"  report: {result.report.html}\n")
            done.append(result.report)
    except EnvironmentProblem as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("chaos-harness: interrupted; toxics removed, processes stopped, records kept", err=True)
        raise SystemExit(130) from None
    passed = sum(1 for report in done if report.passed)
    click.echo(f"{passed}/{len(done)} scenario(s) passed every SLO, in {time.monotonic() - started:.0f}s:")
    for report in done:
        click.echo(f"  {'PASS' if report.passed else 'FAIL'}  {report.html}")
    return done


@cli.command()
@run_options
def run(**options: Any) -> None:
    """Run a scenario file, or every scenario in a folder (a suite), and judge it.

    Exit code 0 when every SLO holds, 1 when any is breached, 2 for bad input or environment.
    """
    done = run_scenarios(**options)
    raise SystemExit(0 if all(report.passed for report in done) else 1)


@cli.command()
@run_options
@click.option(
    "--junit", "junit_path", type=click.Path(path_type=Path), default=None, help="Write JUnit XML here."
)
@click.option(
    "--summary", "summary_path", type=click.Path(path_type=Path), default=None, help="Write Markdown here."
)
def gate(junit_path: Path | None, summary_path: Path | None, **options: Any) -> None:
    """Run and judge for CI: exit 0 when every SLO holds, 1 when any is breached or a fault did not bite."""
    from reports import junit, markdown

    done = run_scenarios(**options)
    everything = [report.results for report in done]
    if junit_path is not None:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(junit.render(everything), encoding="utf-8")
    if summary_path is not None:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary = markdown.render_suite(everything, [str(report.html) for report in done])
        summary_path.write_text(summary, encoding="utf-8")
    failed = [report for report in done if not report.passed]
    for report in failed:
        click.echo(f"chaos-harness: {report.results['scenario']}: {'; '.join(report.failures)}", err=True)
    raise SystemExit(1 if failed else 0)


@cli.command()
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
        token = os.environ.get("CHAOS_ADMIN_TOKEN") or secrets.token_urlsafe(16)
        url = stack.start_gateway({**gateway_config(stack, mode), "admin_token": token}, out)
        (out / "stack.json").write_text(json.dumps(stack.describe(), indent=2), encoding="utf-8")
        click.echo(f"gateway ({mode}): {url}/v1  (model name: {GROUP})")
        shown = "$CHAOS_ADMIN_TOKEN" if os.environ.get("CHAOS_ADMIN_TOKEN") else token
        click.echo(f"dashboard:      {url}/dashboard  (admin token: {shown})")
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


cli.add_command(admin)


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
