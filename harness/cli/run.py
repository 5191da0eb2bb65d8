"""`chaos-harness run` and `gate`: run scenarios against a system under test and judge them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.cli.errors import EXIT_INTERRUPTED, fail

if TYPE_CHECKING:
    from reports import Report


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
        click.option(
            "--target-pid",
            type=click.IntRange(min=1),
            default=None,
            help="With --target: the external gateway's process; its CPU (children included) is measured.",
        ),
        click.option(
            "--target-cmd",
            default=None,
            metavar="COMMAND",
            help="Start this gateway for each scenario, on that scenario's own stack, and stop it after: "
            "{port} (the target is http://127.0.0.1:{port}), {stack} (stack.json), {litellm} and {portkey} "
            "(that gateway's config for the stack) are filled in. Its CPU is measured.",
        ),
        click.option(
            "--target-header",
            "target_headers",
            multiple=True,
            metavar="'NAME: VALUE'",
            help="Send this header with every request to the external target (repeatable). VALUE @FILE "
            "sends the file's content; with --target-cmd it may name the placeholders: "
            "'x-portkey-config: @{portkey}'.",
        ),
        click.option("--seed", type=int, default=None),
        click.option("--no-control", is_flag=True, help="Skip the passthrough control run."),
        click.option(
            "--workers", type=int, default=0, help="Locust master + N worker processes on this machine."
        ),
        click.option(
            "--remote-workers",
            type=click.IntRange(min=1),
            default=None,
            help="Send the load from N workers on other machines (`chaos-harness worker --master "
            "HOST:PORT` on each), waiting up to 120 s for them.",
        ),
        click.option(
            "--master-bind",
            default="127.0.0.1:5557",
            show_default=True,
            metavar="HOST:PORT",
            help="With --remote-workers: where the Locust master listens for them.",
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
            "--sim",
            is_flag=True,
            help="Simulate in virtual time (our gateway only, no sockets): seconds instead of minutes.",
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
    sim: bool = False,
    target_pid: int | None = None,
    target_cmd: str | None = None,
    target_headers: tuple[str, ...] = (),
    remote_workers: int | None = None,
    master_bind: str = "127.0.0.1:5557",
) -> list[Report]:
    """Run every scenario of `target`, print progress, summaries and verdicts; exit 2 on bad input."""
    from harness.run import Runner, format_summary, main_progress
    from harness.run.target_command import TargetCommand, TargetCommandError
    from harness.run.target_headers import HeaderError, headers_from
    from harness.scenario import ScenarioError, load_scenario, scenario_files
    from harness.stack import EnvironmentProblem
    from reports.markdown import text_table

    try:
        scenarios = [load_scenario(path) for path in scenario_files(target)]
    except ScenarioError as exc:
        fail(str(exc))
    if time_scale is not None and time_scale <= 0:
        fail("--time-scale must be > 0")
    if workers < 0:
        fail("--workers must be >= 0")
    if target_pid is not None and target_url is None:
        fail("--target-pid names the process behind --target: give --target too")
    if target_pid is not None and not Path(f"/proc/{target_pid}").exists():
        fail(f"--target-pid {target_pid}: no such process")
    remote = None
    if remote_workers is not None:
        if workers:
            fail("--remote-workers sends the load from other machines: drop --workers")
        from harness.cli.worker import parse_master
        from harness.run.variant import RemoteWorkers

        remote = RemoteWorkers(remote_workers, *parse_master(master_bind, "--master-bind"))
    external = target_url is not None or any(s.system_under_test.kind == "external" for s in scenarios)
    if target_headers and target_cmd is None and not external:
        fail("--target-header is sent to an external system under test: give --target or --target-cmd")
    try:
        headers = headers_from(target_headers, templated=target_cmd is not None)
    except HeaderError as exc:
        fail(str(exc))
    command = None
    if target_cmd is not None:
        for name, given in (("--stack", stack_file), ("--target-pid", target_pid)):
            if given is not None:
                fail(f"--target-cmd starts its own gateway on each scenario's own stack: drop {name}")
        try:
            command = TargetCommand(target_cmd, url=target_url, headers=headers)
        except TargetCommandError as exc:
            fail(str(exc))
    if sim:
        named = (("--target", target_url), ("--stack", stack_file), ("--target-cmd", target_cmd))
        given = [name for name, on in named if on]
        given += ["--workers"] if workers else []
        given += ["--remote-workers"] if remote_workers else []
        given += ["--backend docker"] if backend != "local" else []
        given += ["--target-header"] if target_headers else []
        if given or any(s.system_under_test.kind == "external" for s in scenarios):
            what = ", ".join(given) or "an external system under test"
            fail(f"--sim runs our own gateway in virtual time: {what} cannot be simulated")
        from harness.sim import Simulator

        runner: Any = Simulator(out, progress=main_progress)
    else:
        runner = Runner(out, progress=main_progress, workers=workers, backend=backend, remote=remote)
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
            if sim:
                result = runner.run(scenario, control=not no_control, mode=mode)
            else:
                result = runner.run(
                    scenario,
                    target=None if command is not None else target_url,
                    control=not no_control,
                    attach=stack_file,
                    mode=mode,
                    target_pid=target_pid,
                    target_command=command,
                    target_headers=() if command is not None else headers,
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
        raise SystemExit(EXIT_INTERRUPTED) from None
    passed = sum(1 for report in done if report.passed)
    click.echo(f"{passed}/{len(done)} scenario(s) passed every SLO, in {time.monotonic() - started:.0f}s:")
    for report in done:
        click.echo(f"  {'PASS' if report.passed else 'FAIL'}  {report.html}")
    return done


@click.command()
@run_options
def run(**options: Any) -> None:
    """Run a scenario file, or every scenario in a folder (a suite), and judge it.

    Exit code 0 when every SLO holds (inconclusive verdicts allowed), 1 when any is breached,
    a fault was not exercised or did not bite, 2 for bad input or environment.
    """
    done = run_scenarios(**options)
    raise SystemExit(0 if all(report.passed for report in done) else 1)


@click.command()
@run_options
@click.option(
    "--junit", "junit_path", type=click.Path(path_type=Path), default=None, help="Write JUnit XML here."
)
@click.option(
    "--summary", "summary_path", type=click.Path(path_type=Path), default=None, help="Write Markdown here."
)
@click.option("--strict", is_flag=True, help="An inconclusive verdict fails the gate too.")
def gate(junit_path: Path | None, summary_path: Path | None, strict: bool, **options: Any) -> None:
    """Run and judge for CI: exit 0 when every SLO holds, 1 when any is breached, a fault was not
    exercised or did not bite (with --strict: or a verdict was inconclusive)."""
    from reports import junit, markdown

    done = run_scenarios(**options)
    everything = [report.results for report in done]
    if junit_path is not None:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(junit.render(everything), encoding="utf-8")
    if summary_path is not None:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        # Links relative to the summary, so they work where it is uploaded with the run folders.
        links = [os.path.relpath(report.html, summary_path.parent.resolve()) for report in done]
        summary = markdown.render_suite(everything, links)
        summary_path.write_text(summary, encoding="utf-8")
    from reports.results import failures

    failed = [report for report in done if not (report.passed_strictly() if strict else report.passed)]
    for report in failed:
        reasons = failures(report.results, strict=strict)
        click.echo(f"chaos-harness: {report.results['scenario']}: {'; '.join(reasons)}", err=True)
    raise SystemExit(1 if failed else 0)
