"""`chaos-harness conformance`: the sixteen single-request faults against our gateway (default
config) or any OpenAI-compatible URL, scored pass / partial / safe / fail."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.cli.errors import fail


@click.command()
@click.option(
    "--target",
    "target_url",
    default=None,
    help="Judge this OpenAI-compatible base URL instead of our gateway.",
)
@click.option(
    "--target-cmd",
    default=None,
    metavar="COMMAND",
    help="Start this gateway on the suite's endpoints and stop it after: {port} (the target is "
    "http://127.0.0.1:{port}), {stack} (stack.json), {litellm} and {portkey} (that gateway's config "
    "for the suite's models) are filled in.",
)
@click.option(
    "--target-header",
    "target_headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Send this header with every request (repeatable); VALUE @FILE sends a file's content, and "
    "with --target-cmd it may name the placeholders: 'x-portkey-config: @{portkey}'.",
)
@click.option("--profile", type=click.Choice(["full", "fast"]), default="full", show_default=True)
@click.option("--only", default="", help="Comma-separated case ids (S01,S08).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/conformance"), show_default=True)
def conformance(
    target_url: str | None,
    target_cmd: str | None,
    target_headers: tuple[str, ...],
    profile: str,
    only: str,
    out: Path,
) -> None:
    """Run the conformance suite; exit 1 unless every case passes."""
    from harness.conformance import load, run_conformance
    from harness.run.target_command import TargetCommand, TargetCommandError
    from harness.run.target_headers import HeaderError, headers_from
    from harness.stack import EnvironmentProblem
    from harness.stack.processes import raise_on_sigterm

    raise_on_sigterm()
    cases = tuple(c.strip().upper() for c in only.split(",") if c.strip())
    catalogue = load(profile, only=cases)
    if cases and len(catalogue.cases) != len(cases):
        fail(f"--only: unknown case among {', '.join(cases)} (S01 to S16)")
    if target_headers and target_cmd is None and target_url is None:
        fail("--target-header is sent to another gateway: give --target or --target-cmd")
    try:
        headers = headers_from(target_headers, templated=target_cmd is not None)
    except HeaderError as exc:
        fail(str(exc))
    command = None
    if target_cmd is not None:
        try:
            command = TargetCommand(target_cmd, url=target_url, headers=headers)
        except TargetCommandError as exc:
            fail(str(exc))
    try:
        results = run_conformance(
            catalogue,
            out,
            target=None if command is not None else target_url,
            target_command=command,
            headers=() if command is not None else headers,
            progress=lambda line: click.echo(line),
        )
    except EnvironmentProblem as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("chaos-harness: interrupted; processes stopped", err=True)
        sys.exit(130)
    counts = results["counts"]
    click.echo(
        f"{counts['pass']} pass, {counts['partial']} partial, {counts['safe']} safe, {counts['fail']} fail "
        f"in {results['run_seconds']} s  ({out / 'conformance.md'})"
    )
    raise SystemExit(0 if counts["pass"] == len(results["cases"]) else 1)
