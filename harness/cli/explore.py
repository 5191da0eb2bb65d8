"""`chaos-harness explore`: search fault timelines for an SLO breach, in simulation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import yaml

from harness.cli.errors import EXIT_BREACHED, EXIT_INTERRUPTED, fail


def _mapping(path: Path, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        fail(f"{path}: not YAML: {exc}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        fail(f"{path}: {what} must be a mapping, got {type(data).__name__}")
    return data


@click.command()
@click.option(
    "--budget", type=click.IntRange(min=1), default=2000, show_default=True, help="Timelines to try."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--policies",
    "policies_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="The gateway's policies (YAML, as system_under_test.policies); default: the defaults.",
)
@click.option(
    "--base",
    "base_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="A scenario whose models, load and phases each timeline goes into (its faults are ignored).",
)
@click.option(
    "--slo",
    "slos",
    multiple=True,
    help="Only this SLO counts as a breach (repeatable); default: every one the simulation "
    "measures but the p95 increase, which counts only when named here.",
)
@click.option(
    "--database",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep breaches found here (Hypothesis' example database); tried first next time.",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/explore"), show_default=True)
@click.option("--no-replay", is_flag=True, help="Do not replay breaches on the real stack.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=min(2, os.cpu_count() or 1),
    show_default="2 or the CPUs, if fewer",
    help="Searches in parallel (each its own share of the budget and its own seed).",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=1),
    default=None,
    help="Stop searching, and shrinking, after this long.",
)
def explore(
    budget: int,
    seed: int,
    policies_file: Path | None,
    base_file: Path | None,
    slos: tuple[str, ...],
    database: Path | None,
    out: Path,
    no_replay: bool,
    max_seconds: float | None,
    jobs: int,
) -> None:
    """Search fault timelines for an SLO breach of our gateway, in simulation.

    Each breach found is shrunk to a minimal timeline (or until --max-seconds), written as a
    scenario file, and replayed on the real stack. Exit 0 when nothing breached, 1 on a
    confirmed breach (with --no-replay: on any breach), 2 for bad input.
    """
    from pydantic import ValidationError

    from harness.gateway.config import Policies
    from harness.scenario import ScenarioError, load_scenario
    from harness.scenario.model import field_path
    from harness.sim.explore import BASE, Search
    from harness.sim.explore import explore as search_for_breaches
    from harness.stack import EnvironmentProblem
    from reports.slo import PHASE_SLIS, RUN_SLIS

    policies = _mapping(policies_file, "a policies file") if policies_file else {}
    try:
        Policies.model_validate(policies)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{policies_file}: {field_path(tuple(first['loc']))}: {first['msg']}")
    base = dict(BASE)
    if base_file is not None:
        try:
            scenario = load_scenario(base_file)
        except ScenarioError as exc:
            fail(str(exc))
        dumped = scenario.model_dump(mode="json", by_alias=True)
        base = {key: dumped[key] for key in ("models", "load", "phases", "seed", "system_under_test", "slo")}
    known = RUN_SLIS | PHASE_SLIS
    unknown = [s for s in slos if s.split("{")[0] not in known]
    if unknown:
        fail(f"--slo {unknown[0]!r}: not an SLI (known: {', '.join(sorted(known))})")
    search = Search(base, policies, frozenset(slos) if slos else None)
    try:
        found = search_for_breaches(
            search,
            out,
            budget=budget,
            seed=seed,
            database=database,
            replay=not no_replay,
            max_seconds=max_seconds,
            progress=lambda line: click.echo(line, err=True),
            jobs=jobs,
        )
    except EnvironmentProblem as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("chaos-harness: interrupted; breaches found so far are in their files", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    for finding in found.findings:
        click.echo(f"{finding.replay.upper():<15} {', '.join(finding.slis)}  {finding.file}")
    click.echo(
        f"{len(found.findings)} breach(es) in {found.examples} timelines, {found.seconds:.0f} s: "
        f"{out / 'explore.html'}"
    )
    bad = [f for f in found.findings if f.replay == "confirmed" or (no_replay and f.replay == "not replayed")]
    raise SystemExit(EXIT_BREACHED if bad else 0)
