"""pytest integration: `pytest --chaos scenarios/smoke` runs one test per scenario, and a
`chaos_stack` fixture (with the `chaos` marker) gives users' own tests a running stack.

A scenario test fails with the breached SLOs, measured vs target, one per line, and the path of
its report. Loaded through the `pytest11` entry point; imports nothing heavy until used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.endpoints import EndpointFault
    from harness.run import GatewayProcess
    from harness.stack import Stack, Toxics
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
    config.addinivalue_line(
        "markers",
        "chaos(models=3, mode='resilient', policies=None, plan='sequential', hedge_delay=0.5, seed=1): "
        "how chaos_stack starts",
    )
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


class ChaosStack:
    """A running stack and our gateway in front of it, as the `chaos_stack` fixture gives them."""

    def __init__(self, stack: Stack, gateway: GatewayProcess) -> None:
        self.stack = stack
        self.gateway = gateway

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    @property
    def toxics(self) -> Toxics:
        return self.stack.toxics

    @property
    def models(self) -> list[str]:
        return self.stack.models

    @property
    def proxy_urls(self) -> dict[str, str]:
        return self.stack.proxy_urls

    @property
    def endpoint_urls(self) -> dict[str, str]:
        return self.stack.endpoint_urls

    def set_endpoint_fault(self, model: str, fault: EndpointFault) -> None:
        """Make `model`'s endpoint misbehave (HTTP errors, cut or slow streams) until cleared."""
        self.stack.set_endpoint_fault(model, fault)

    def clear_endpoint_fault(self, model: str) -> None:
        self.stack.clear_endpoint_fault(model)

    def endpoint_counts(self) -> dict[str, Any]:
        """What each endpoint received, per second and outcome, since the last reset."""
        return self.stack.endpoint_counts()

    def reset_endpoint_counts(self) -> None:
        self.stack.reset_endpoint_counts()

    @contextmanager
    def fault(
        self,
        model: str,
        *,
        down: bool = False,
        latency_ms: int | None = None,
        jitter_ms: int = 0,
        **endpoint: Any,
    ) -> Iterator[None]:
        """One fault on `model` for the `with` block, cleared after it even when the block fails:
        `down=True` (connections refused), `latency_ms` (a Toxiproxy latency toxic), or any
        `EndpointFault` field (`error_rate=1.0, status=503`, `cut_after_tokens=3`, ...)."""
        from harness.endpoints.model import EndpointFault

        if down:
            self.toxics.set_enabled(model, False)
        if latency_ms is not None:
            attributes = {"latency": latency_ms, "jitter": jitter_ms}
            self.toxics.add_toxic(model, "chaos-latency", "latency", attributes)
        if endpoint:
            self.set_endpoint_fault(model, EndpointFault(**endpoint))
        try:
            yield
        finally:
            if endpoint:
                self.clear_endpoint_fault(model)
            if latency_ms is not None:
                self.toxics.remove_toxic(model, "chaos-latency")
            if down:
                self.toxics.set_enabled(model, True)

    def reset(self) -> None:
        """Every fault gone: toxics removed, proxies enabled, endpoint faults cleared."""
        self.toxics.reset()
        for model in self.models:
            self.clear_endpoint_fault(model)


def _start(folder: Path, options: dict[str, Any]) -> ChaosStack:
    from harness.gateway.launch import gateway_config
    from harness.run import GatewayProcess
    from harness.stack import start_stack

    stack = start_stack(int(options.get("models", 3)), folder, seed=int(options.get("seed", 1)))
    try:
        config = gateway_config(
            stack,
            str(options.get("mode", "resilient")),
            options.get("policies"),
            plan=str(options.get("plan", "sequential")),
            hedge_delay=float(options.get("hedge_delay", 0.5)),
        )
        return ChaosStack(stack, GatewayProcess.start(config, folder))
    except BaseException:
        stack.stop()
        raise


def _stop(chaos: ChaosStack) -> None:
    try:
        chaos.gateway.stop()
    finally:
        chaos.stack.stop()


@pytest.fixture
def chaos_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChaosStack]:
    """Simulated models behind a real Toxiproxy and our gateway, started for one test and
    stopped after it. The `chaos` marker sets `models`, `mode`, `policies`, `plan`
    (sequential, hedged, weighted), `hedge_delay` and the endpoints' `seed`.

    Usage::

        @pytest.mark.chaos(models=3, plan="hedged", hedge_delay=0.2)
        def test_my_client_survives(chaos_stack):
            with chaos_stack.fault("model-0", down=True):
                ...  # call f"{chaos_stack.gateway_url}/v1/chat/completions" with model "chat"
    """
    marker = request.node.get_closest_marker("chaos")
    chaos = _start(tmp_path / "chaos-stack", dict(marker.kwargs) if marker else {})
    try:
        yield chaos
    finally:
        _stop(chaos)


@pytest.fixture(scope="session")
def chaos_stack_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    """One stack (three models, our gateway with defaults) for the whole session: start-up is
    paid once. Tests share it, so use `chaos_stack_shared`, which clears faults after each."""
    chaos = _start(tmp_path_factory.mktemp("chaos-stack-session"), {})
    try:
        yield chaos
    finally:
        _stop(chaos)


@pytest.fixture
def chaos_stack_shared(chaos_stack_session: ChaosStack) -> Iterator[ChaosStack]:
    """The session's stack for one test, every fault cleared after it (pass or fail)."""
    try:
        yield chaos_stack_session
    finally:
        chaos_stack_session.reset()
