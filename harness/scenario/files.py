"""Scenario files: YAML read and validated, suites (a folder or a `.suite` list) expanded."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.scenario.model import Scenario, ScenarioError, field_path


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping, got {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = field_path(tuple(p for p in first["loc"] if p not in ("function-after",)))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "string_pattern_mismatch" and path == "name":
            message = f"{first['input']!r} is not a safe folder name (letters, digits, '.', '_', '-')"
        message = " ".join(message.split())  # one line, whatever pydantic wrote
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ScenarioError(f"{source}: {path}: {message}{more}") from None
    for i, fault in enumerate(scenario.faults):
        try:
            fault.models(scenario.model_names())
        except ScenarioError as exc:
            raise ScenarioError(f"{source}: faults[{i}].target: {str(exc).split(': ', 1)[1]}") from None
    for i, step in enumerate(scenario.admin):
        if step.target is not None and step.target not in scenario.model_names():
            raise ScenarioError(
                f"{source}: admin[{i}].target: {step.target!r} is not one of {scenario.model_names()}"
            )
    return scenario


MAX_FILE_BYTES = 1_000_000
"""A scenario is a page of YAML; anything bigger is a mistake (or not a scenario)."""


def read_text(path: Path) -> str:
    """A scenario or suite file's text: a regular file (never a FIFO or a device, which could
    block or never end), of sane size, in UTF-8; else ScenarioError naming the file."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ScenarioError(f"{path}: {info.st_size} bytes is too big for a scenario file")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    text = read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: not valid YAML: nested too deeply") from None
    return parse_scenario(data, str(path))


SUITE_SUFFIX = ".suite"


def scenario_files(target: str | Path) -> list[Path]:
    """A scenario file, every *.yaml in a folder, or the files a `.suite` list names (globs
    relative to the list, one a line, `#` comments), in that order."""
    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.yaml") if not p.name.startswith("_"))
        if not files:
            raise ScenarioError(f"{path}: no *.yaml scenario files in this folder")
        return files
    if not path.exists():
        raise ScenarioError(f"{path}: no such file or folder")
    if path.suffix == SUITE_SUFFIX:
        return _suite(path)
    return [path]


def _suite(path: Path) -> list[Path]:
    files: list[Path] = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        pattern = line.split("#", 1)[0].strip()
        if not pattern:
            continue
        matched = sorted(path.parent.glob(pattern))
        if not matched:
            raise ScenarioError(f"{path}: line {number}: {pattern!r} matches no scenario file")
        files.extend(m for m in matched if m not in files)
    if not files:
        raise ScenarioError(f"{path}: the suite lists no scenario")
    return files


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint in one line, with where it happened."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"
