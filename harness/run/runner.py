"""One scenario run: the stack, each system under test, the records, then the report.

The scenario runs against the resilient gateway and the passthrough control at the same time,
each on a stack of its own started with the same seed, so both see the same seconds of the
machine (or once against an external URL; one after the other on an attached stack, a docker
stack or remote workers, which a run cannot duplicate). Whatever happens (normal end, Ctrl-C,
SIGTERM, a child dying) the `finally` blocks remove every toxic and stop every process the run
started, and the files already written stay on disk.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from harness.gateway.admin.auth import resolve_token, shown_token
from harness.run.meta import versions
from harness.run.sut import GatewayProcess
from harness.run.target_command import StartedTarget, TargetCommand
from harness.run.variant import Context, RemoteWorkers, Variant, VariantResult, run_together, run_variant
from harness.scenario import Scenario
from harness.stack import EnvironmentProblem, Stack, start_stack
from harness.stack.peer_configs import EMITTERS
from harness.stack.processes import free_port, port_is_free, raise_on_sigterm, reachable
from reports import NOT_JUDGED, Report, build
from reports.markdown import format_phases


@dataclass
class RunResult:
    run_id: str
    folder: Path
    variants: list[VariantResult]
    report: Report | None = None


class Runner:
    """Runs scenarios; `progress` receives one line per second of a running variant."""

    def __init__(
        self,
        out: Path,
        *,
        progress: Callable[[str], None] = print,
        workers: int = 0,
        backend: str = "local",
        remote: RemoteWorkers | None = None,
    ) -> None:
        self.out = out
        self.progress = progress
        self.workers = workers
        self.remote = remote
        """Load from other machines instead of this one (`run --remote-workers`)."""
        self.backend = backend
        self.gateway_port = free_port()
        """One address for every gateway of this runner, so a dashboard left open follows the suite."""
        self.token = str(resolve_token(generate=True))
        """The run's gateways take CHAOS_ADMIN_TOKEN over their config, so the runner must too."""

    def run(
        self,
        scenario: Scenario,
        *,
        target: str | None = None,
        control: bool = True,
        attach: Path | None = None,
        mode: str = "resilient",
        target_pid: int | None = None,
        target_command: TargetCommand | None = None,
        target_headers: tuple[tuple[str, str], ...] = (),
    ) -> RunResult:
        """`target_command` starts the system under test on this scenario's own stack and stops
        it at the end (`run --target-cmd`); `target` and `attach` are then not given. The load
        sends an external target `target_headers` (a started command's own, filled in, else
        these, as sent)."""
        scenario = scenario.scaled()
        if target_command is not None and (target is not None or attach is not None):
            raise ValueError("a target command brings its own target on the run's own stack")
        sut = scenario.system_under_test
        if target is None and sut.kind == "external":
            target = sut.base_url
        if target is not None and (problem := reachable(target)) is not None:
            raise EnvironmentProblem(f"the system under test at {target} is unreachable: {problem}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        run_id = f"{stamp}-{scenario.name}"
        folder = self.out / run_id
        folder.mkdir(parents=True, exist_ok=False)
        (folder / "scenario.yaml").write_text(
            yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True), sort_keys=False), encoding="utf-8"
        )
        raise_on_sigterm()
        stack = self._stack(scenario, folder, attach)
        stacks = [stack]
        started: StartedTarget | None = None
        done: list[VariantResult] = []
        try:
            if target_command is not None:
                latency = asdict(scenario.models.latency.to_model())
                described = {**stack.describe(), "seed": scenario.seed, "latency": latency}
                self.progress(f"[external] starting: {target_command.line}")
                group = scenario.system_under_test.model
                started = target_command.start(
                    described, folder / "target", lambda name: EMITTERS[name].render(described, group)
                )
                target, target_pid = started.url, started.child.pid
                target_headers = started.headers
            plan = [Variant(mode, mode)]
            if target is not None:
                plan = [Variant("external", None, target, target_pid, target_headers)]
            elif control:
                plan.append(Variant("control", "passthrough"))
            context = Context(
                stack,
                versions(stack),
                self.token,
                self.workers,
                self.progress,
                self._start_gateway,
                self.remote,
            )
            if len(plan) > 1 and attach is None and self.remote is None and self.backend == "local":
                stacks.append(self._stack(scenario, folder, None, "stack-control"))
                control_context = replace(
                    context, stack=stacks[-1], start_gateway=partial(self._start_gateway, port=free_port())
                )
                pairs = [
                    (plan[0], folder / plan[0].name, context),
                    (plan[1], folder / plan[1].name, control_context),
                ]
                done.extend(run_together(scenario, pairs))
            else:
                for variant in plan:
                    done.append(run_variant(scenario, variant, folder / variant.name, context))
        except EnvironmentProblem as exc:
            (folder / NOT_JUDGED).write_text(json.dumps({"reason": str(exc)}), encoding="utf-8")
            raise
        finally:
            if started is not None:
                started.stop()
            for each in reversed(stacks):
                each.stop()
        result = RunResult(run_id, folder, done)
        result.report = build(folder)
        for variant_result in done:
            variant_result.summary = result.report.results["variants"][variant_result.name]["phases"]
        summary = {
            v.name: {"records": v.records, "locust_total": v.locust_total, "phases": v.summary} for v in done
        }
        (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return result

    def _note_differences(self, scenario: Scenario, described: dict[str, Any]) -> None:
        """An attached stack keeps the seed and latency it was started with (`up --scenario`
        gives it a scenario's): say so when they are not this scenario's."""
        wanted = {"seed": scenario.seed, "latency": asdict(scenario.models.latency.to_model())}
        for key, value in wanted.items():
            if key in described and described[key] != value:
                ours = described[key]
                self.progress(f"note: the attached stack's {key} is {ours}, not the scenario's {value}")

    def _stack(self, scenario: Scenario, folder: Path, attach: Path | None, name: str = "stack") -> Stack:
        if attach is not None:
            stack = Stack.attach(attach)
            if len(stack.models) < scenario.models.count:
                raise EnvironmentProblem(
                    f"{attach} has {len(stack.models)} models; the scenario needs {scenario.models.count}"
                )
            stack.clean()  # what a run killed before its cleanup left behind
            self._note_differences(scenario, json.loads(attach.read_text(encoding="utf-8")))
            return stack
        start = start_stack
        if self.backend == "docker":
            from harness.stack.docker import start_docker_stack as start  # the docker SDK only when asked
        stack = start(
            scenario.models.count,
            folder / name,
            latency=scenario.models.latency.to_model(),
            seed=scenario.seed,
        )
        try:
            (folder / name / "stack.json").write_text(
                json.dumps(stack.describe(), indent=2), encoding="utf-8"
            )
        except BaseException:
            stack.stop()
            raise
        return stack

    def _start_gateway(self, config: dict[str, Any], folder: Path, port: int | None = None) -> GatewayProcess:
        """On `port` for a gateway that runs beside another of this runner's, else on the
        runner's own address (chosen anew if someone took it between gateways)."""
        if port is not None:
            gateway = GatewayProcess.start({**config, "port": port}, folder)
        else:
            try:
                gateway = GatewayProcess.start({**config, "port": self.gateway_port}, folder)
            except EnvironmentProblem:
                if port_is_free(self.gateway_port):
                    raise
                self.gateway_port = free_port()
                gateway = GatewayProcess.start({**config, "port": self.gateway_port}, folder)
        self.progress(
            f"[{folder.name}] dashboard: {gateway.url}/dashboard  (admin token: {shown_token(self.token)})"
        )
        return gateway


def format_summary(result: RunResult) -> str:
    """The console's per-variant, per-phase table: the reports' own figures."""
    lines = [f"run {result.run_id}  ->  {result.folder}"]
    assert result.report is not None
    lines.append(format_phases(result.report.results))
    for variant in result.variants:
        load = f"Locust total {variant.locust_total}" if variant.locust_total >= 0 else "simulated"
        lines.append(f"  {variant.name:<10}records {variant.records} / {load}")
    return "\n".join(lines)


def main_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
