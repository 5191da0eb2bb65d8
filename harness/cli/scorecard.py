"""`chaos-harness scorecard`: systems x scenarios from run folders, as Markdown, HTML and JSON."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.errors import fail


@click.command()
@click.argument(
    "run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="VARIANT=NAME",
    help="Name a variant's system in the table (e.g. external=litellm); repeatable.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/scorecard"),
    show_default=True,
)
def scorecard(run_dirs: tuple[Path, ...], labels: tuple[str, ...], out: Path) -> None:
    """One table of systems x scenarios (verdicts and key SLIs) from run folders: runs of our
    gateway and of another (`run --target URL`) side by side."""
    from reports import RunDataError
    from reports.scorecard import cells, write

    named: dict[str, str] = {}
    for label in labels:
        variant, sep, name = label.partition("=")
        if not sep or not variant or not name:
            fail(f"--label {label!r}: expected VARIANT=NAME, e.g. external=litellm")
        named[variant] = name
    # A run folder, or a folder of runs (a suite's --out): each run inside that has results.json.
    folders = []
    for path in run_dirs:
        inside = [path] if (path / "results.json").exists() else sorted(path.iterdir())
        folders += [d for d in inside if (d / "results.json").exists()]
    try:
        found = cells(folders, named)
    except RunDataError as exc:
        fail(str(exc))
    if not found:
        fail("no run folders with results.json under " + ", ".join(map(str, run_dirs)))
    markdown_path, html_path = write(found, out)
    click.echo(markdown_path.read_text(encoding="utf-8"))
    click.echo(f"scorecard: {html_path}")
