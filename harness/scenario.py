"""Scenario files: YAML validated into frozen objects, errors naming the field and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.faults import EndpointFault, LatencyModel

NETWORK_TOXICS = ("latency", "bandwidth", "slicer", "slow_close", "timeout", "reset_peer", "limit_data")


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file, the field and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(_Strict):
    first_token: float = Field(0.02, ge=0)
    first_token_jitter: float = Field(0.005, ge=0)
    tokens_per_second: float = Field(2000.0, gt=0)
    tokens_min: int = Field(8, ge=1)
    tokens_max: int = Field(24, ge=1)
    token_rate_jitter: float = Field(0.1, ge=0, lt=1)

    def to_model(self) -> LatencyModel:
        return LatencyModel(**self.model_dump())


class Models(_Strict):
    count: int = Field(3, ge=1, le=1000)
    latency: Latency = Field(default_factory=Latency)


class SystemUnderTest(_Strict):
    """Our gateway (policies as in the gateway config) or an external OpenAI-compatible URL."""

    kind: Literal["gateway", "external"] = "gateway"
    plan: Literal["sequential", "hedged", "weighted"] = "sequential"
    hedge_delay: float = Field(0.5, ge=0)
    policies: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = None
    model: str = "chat"

    @field_validator("policies")
    @classmethod
    def _policies_are_the_gateways(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Checked now against the gateway's own schema, not when the gateway fails to start."""
        from harness.gateway_config import Policies

        try:
            Policies.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{_field_path(tuple(first['loc']))}: {first['msg']}") from None
        return value

    @model_validator(mode="after")
    def _external_needs_url(self) -> SystemUnderTest:
        if self.kind == "external" and not self.base_url:
            raise ValueError("an external system under test needs base_url")
        return self


class Load(_Strict):
    rate: float = Field(20.0, gt=0, le=5000, description="requests per second, open loop")
    users: int = Field(4, ge=1, le=1000)
    stream_share: float = Field(0.0, ge=0, le=1)
    request_timeout: float = Field(30.0, gt=0)


class Phases(_Strict):
    warmup: float = Field(2.0, ge=0)
    baseline: float = Field(5.0, gt=0)
    recovery: float = Field(5.0, ge=0)


class NetworkFault(_Strict):
    type: Literal["latency", "bandwidth", "slicer", "slow_close", "timeout", "reset_peer", "limit_data"]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    attributes: dict[str, int] = Field(default_factory=dict)
    """Toxiproxy's attributes are integers (milliseconds, KB/s, bytes)."""


class Fault(_Strict):
    """One fault on the timeline: `at` seconds into the fault phase, for `for_` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: float = Field(ge=0)
    for_: float = Field(alias="for", gt=0)
    target: str | list[str] | dict[str, float] = "model-0"
    network: NetworkFault | None = None
    down: bool = False
    endpoint: dict[str, Any] | None = None

    @field_validator("target")
    @classmethod
    def _target_shape(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) != {"fraction"}:
            raise ValueError("a target mapping takes only 'fraction'")
        if isinstance(value, dict) and not 0 < value["fraction"] <= 1:
            raise ValueError("fraction must be in (0, 1]")
        return value

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Fault:
        kinds = [
            k for k, on in (("network", self.network), ("down", self.down), ("endpoint", self.endpoint)) if on
        ]
        if len(kinds) != 1:
            raise ValueError(f"a fault needs exactly one of network, down, endpoint (got {kinds or 'none'})")
        if self.endpoint is not None:
            try:
                EndpointFault(**self.endpoint)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"endpoint: {exc}") from None
        return self

    def models(self, all_models: list[str]) -> list[str]:
        """The models this fault hits, resolved against the run's model list."""
        target = self.target
        if target == "all":
            return list(all_models)
        if isinstance(target, dict):
            count = max(1, round(target["fraction"] * len(all_models)))
            return list(all_models[:count])
        names = [target] if isinstance(target, str) else list(target)
        unknown = [n for n in names if n not in all_models]
        if unknown:
            raise ScenarioError(f"faults: target {unknown[0]!r} is not one of {all_models}")
        return names


class AdminStep(_Strict):
    """An operator's intervention rehearsed on the timeline, `at` seconds into the fault phase.

    Usage (YAML)::

        admin:
          - {at: 3, for: 4, action: isolate, target: model-2, reason: "provider incident drill"}
          - {at: 0, action: weight, target: model-1, weight: 0.5, reason: "shift load"}
          - {at: 8, for: 2, action: degraded, reason: "all providers paged"}

    `for` undoes the step when it ends (restore, weight back to 1, degraded mode off); without it
    the step holds to the end of the run. Sent to our gateway's admin API, so it lands in the
    audit trail with who (`scenario:<name>`), what and why.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: float = Field(ge=0)
    for_: float | None = Field(None, alias="for", gt=0)
    action: Literal["isolate", "drain", "weight", "degraded"]
    target: str | None = None
    weight: float | None = Field(None, ge=0)
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _fields_fit_the_action(self) -> AdminStep:
        if self.action == "degraded" and self.target is not None:
            raise ValueError("degraded mode is global: it takes no target")
        if self.action != "degraded" and self.target is None:
            raise ValueError(f"{self.action} needs a target model")
        if (self.action == "weight") != (self.weight is not None):
            raise ValueError("weight goes with action: weight, and only with it")
        return self

    @property
    def end(self) -> float:
        return self.at + (self.for_ or 0.0)


class Scenario(_Strict):
    name: str
    description: str = ""
    seed: int = 1
    time_scale: float = Field(1.0, gt=0)
    models: Models = Field(default_factory=Models)
    system_under_test: SystemUnderTest = Field(default_factory=SystemUnderTest)
    load: Load = Field(default_factory=Load)
    phases: Phases = Field(default_factory=Phases)
    faults: list[Fault] = Field(default_factory=list)
    admin: list[AdminStep] = Field(default_factory=list)
    slo: dict[str, Any] | list[str] = Field(default_factory=dict)
    """SLO overrides, judged by the reports: `uptime: ">= 99%"`, `p99_ms{phase:faults}: "< 800"`, `off`."""

    @field_validator("slo")
    @classmethod
    def _slo_targets_parse(cls, value: dict[str, Any] | list[str]) -> dict[str, Any] | list[str]:
        from reports import ThresholdError, targets

        try:
            targets(value)
        except ThresholdError as exc:
            raise ValueError(str(exc).removeprefix("slo.")) from None
        return value

    def model_names(self) -> list[str]:
        return [f"model-{i}" for i in range(self.models.count)]

    def scaled(self, time_scale: float | None = None) -> Scenario:
        """The same scenario with every duration multiplied by the time scale (then scale 1)."""
        k = time_scale if time_scale is not None else self.time_scale
        phases = Phases(
            warmup=self.phases.warmup * k,
            baseline=self.phases.baseline * k,
            recovery=self.phases.recovery * k,
        )
        faults = [f.model_copy(update={"at": f.at * k, "for_": f.for_ * k}) for f in self.faults]
        admin = [
            a.model_copy(update={"at": a.at * k, "for_": a.for_ * k if a.for_ else None}) for a in self.admin
        ]
        return self.model_copy(update={"phases": phases, "faults": faults, "admin": admin, "time_scale": 1.0})

    @property
    def fault_phase(self) -> float:
        ends = [f.at + f.for_ for f in self.faults] + [a.end for a in self.admin]
        return max(ends, default=0.0)

    @property
    def duration(self) -> float:
        return self.phases.warmup + self.phases.baseline + self.fault_phase + self.phases.recovery


def _field_path(location: tuple[Any, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping, got {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = _field_path(tuple(p for p in first["loc"] if p not in ("function-after",)))
        message = first["msg"].removeprefix("Value error, ")
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


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
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
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
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
