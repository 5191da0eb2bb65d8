"""pytest integration: `pytest --chaos scenarios/smoke` runs one test per scenario, and a
`chaos_stack` fixture (with the `chaos` marker) gives users' own tests a running stack.

A scenario test fails with the breached SLOs, measured vs target, one per line, and the path of
its report. Loaded through the `pytest11` entry point; imports nothing heavy until used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.stack import Stack
    from reports import Report

SCENARIO_SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "chaos-harness scenarios as tests")
    group.addoption("--chaos", metavar="PATH", default=None, help="Run each scenario under PATH as a test.")
    group.addoption("--chaos-time-scale", type=float, default=None, help="Multiply every scenario duration.")
    group.addoption("--chaos-out", default="runs", help="Where run folders go (default: runs).")
    group.addoption(
        "--chaos-mode",
        choices=["resilient", "passthrough"],
        default="resilient",
        help="Our gateway's mode as the system under test.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos(models=3, mode='resilient', policies=None): uses chaos_stack")
    path = config.getoption("chaos", None)
    if path:
        if not Path(path).exists():
            raise pytest.UsageError(f"--chaos {path}: no such file or folder")
        config.args[:] = [str(path)]  # collect the scenarios, not the project's own tests


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not parent.config.getoption("chaos", None):
        return None
    if file_path.suffix in SCENARIO_SUFFIXES and not file_path.name.startswith("_"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class SLOBreached(Exception):
    """A scenario ran and its verdicts failed: carries the report for the failure message."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.results["scenario"])
        self.report = report


class ScenarioFile(pytest.File):
    """A scenario YAML file: one test."""

    def collect(self) -> Iterator[pytest.Item]:
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioItem(pytest.Item):
    """Runs the scenario against the system under test and its control, then judges it."""

    def runtest(self) -> None:
        from harness.run import Runner
        from harness.scenario import load_scenario

        config = self.config
        scenario = load_scenario(self.path)
        scale = config.getoption("chaos_time_scale")
        if scale is not None:
            scenario = scenario.model_copy(update={"time_scale": scale})
        runner = Runner(Path(config.getoption("chaos_out")), progress=lambda line: None)
        result = runner.run(scenario, mode=config.getoption("chaos_mode"))
        assert result.report is not None
        self.user_properties.append(("report", str(result.report.html)))
        if not result.report.passed:
            raise SLOBreached(result.report)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SLOBreached):
            report = excinfo.value.report
            lines = [f"{report.results['scenario']}: SLOs breached", *report.failures]
            return "\n".join([*lines, f"report: {report.html}"])
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"chaos scenario {self.name}"


@pytest.fixture
def chaos_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """Simulated models behind a real Toxiproxy and our gateway, stopped after the test.

    Usage::

        @pytest.mark.chaos(models=3)
        def test_my_client_survives(chaos_stack):
            chaos_stack.toxics.set_enabled("model-0", False)
            ...  # call f"{chaos_stack.gateway_url}/v1/chat/completions" with model "chat"
    """
    from harness.stack import gateway_config, start_stack

    marker = request.node.get_closest_marker("chaos")
    options = dict(marker.kwargs) if marker else {}
    stack = start_stack(int(options.get("models", 3)), tmp_path / "chaos-stack")
    try:
        mode = str(options.get("mode", "resilient"))
        stack.start_gateway(gateway_config(stack, mode, options.get("policies")), tmp_path / "chaos-stack")
        yield stack
    finally:
        stack.stop()
