"""The GitHub Actions example in docs/ci/ stays runnable: every `make` target it names exists,
every chaos-harness command in it parses with the options it uses, and what the gate writes is
what the job uploads and shows as its summary."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from harness.cli import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "ci" / "github-actions.yml"


def steps() -> list[dict]:
    workflow = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    return job["steps"]


def commands() -> list[list[str]]:
    found = []
    for step in steps():
        script = step.get("run", "").replace("\\\n", " ")
        found += [shlex.split(line) for line in script.splitlines() if line.strip()]
    return found


def test_every_make_target_it_runs_exists():
    targets = set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    used = [word for command in commands() if command[0] == "make" for word in command[1:]]
    assert used and set(used) <= targets, set(used) - targets


HARNESS_COMMANDS = [c for c in commands() if c[0].endswith("chaos-harness")]


@pytest.mark.parametrize("command", HARNESS_COMMANDS, ids=lambda c: c[1])
def test_every_chaos_harness_command_parses(command, monkeypatch):
    monkeypatch.chdir(ROOT)  # paths in the example are relative to a checkout
    name, *args = command[1:]
    sub = cli.get_command(click.Context(cli), name)
    assert sub is not None, name
    sub.make_context(name, list(args))  # raises on an unknown option or a missing path


def test_the_job_uploads_what_the_gate_writes_and_shows_its_summary():
    (gate,) = [c for c in HARNESS_COMMANDS if c[1] == "gate"]
    junit, summary = gate[gate.index("--junit") + 1], gate[gate.index("--summary") + 1]
    text = EXAMPLE.read_text(encoding="utf-8")
    assert f'cat {summary} >> "$GITHUB_STEP_SUMMARY"' in text
    upload = next(s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact"))
    paths = upload["with"]["path"].split()
    assert junit in paths and summary in paths and "runs/**/report.html" in paths
