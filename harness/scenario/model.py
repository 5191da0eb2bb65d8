"""The scenario as pure data: pydantic models, frozen, each error naming the field and the reason."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from harness.endpoints.model import EndpointFault, LatencyModel
from harness.gateway.config import Policies, Strict

MAX_SECONDS = 86_400.0
"""No phase, fault or step lasts longer than a day: a typo should not become a week-long run."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""A scenario's name becomes part of its run folder's name, so it must be a safe one."""


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file, the field and the reason."""


class Data(Strict):
    """A scenario part: closed, frozen, and without infinities or NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Latency(Data):
    first_token: float = Field(0.02, ge=0)
    first_token_jitter: float = Field(0.005, ge=0)
    tokens_per_second: float = Field(2000.0, gt=0)
    tokens_min: int = Field(8, ge=1)
    tokens_max: int = Field(24, ge=1)
    token_rate_jitter: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _tokens_in_order(self) -> Latency:
        if self.tokens_min > self.tokens_max:
            raise ValueError(f"tokens_min ({self.tokens_min}) must be <= tokens_max ({self.tokens_max})")
        return self

    def to_model(self) -> LatencyModel:
        return LatencyModel(**self.model_dump())


class Models(Data):
    count: int = Field(3, ge=1, le=1000)
    latency: Latency = Field(default_factory=Latency)


class SystemUnderTest(Data):
    """Our gateway (policies as in the gateway config) or an external OpenAI-compatible URL."""

    kind: Literal["gateway", "external"] = "gateway"
    plan: Literal["sequential", "hedged", "weighted"] = "sequential"
    hedge_delay: float = Field(0.5, ge=0, le=MAX_SECONDS)
    policies: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = None
    model: str = "chat"

    @field_validator("policies")
    @classmethod
    def _policies_are_the_gateways(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Checked now against the gateway's own schema, not when the gateway fails to start."""
        try:
            Policies.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{field_path(tuple(first['loc']))}: {first['msg']}") from None
        return value

    @model_validator(mode="after")
    def _external_needs_url(self) -> SystemUnderTest:
        if self.kind == "external" and not self.base_url:
            raise ValueError("an external system under test needs base_url")
        return self


class Load(Data):
    rate: float = Field(20.0, gt=0, le=5000, description="requests per second, open loop")
    users: int = Field(4, ge=1, le=1000)
    stream_share: float = Field(0.0, ge=0, le=1)
    tool_share: float = Field(
        0.0, ge=0, le=1, description="share of requests offering a tool: the model answers with a call"
    )
    request_timeout: float = Field(30.0, gt=0, le=3600)


class Phases(Data):
    warmup: float = Field(2.0, ge=0, le=MAX_SECONDS)
    baseline: float = Field(5.0, gt=0, le=MAX_SECONDS)
    recovery: float = Field(5.0, ge=0, le=MAX_SECONDS)


class NetworkFault(Data):
    type: Literal["latency", "bandwidth", "slicer", "slow_close", "timeout", "reset_peer", "limit_data"]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    attributes: dict[str, int] = Field(default_factory=dict)
    """Toxiproxy's attributes are integers (milliseconds, KB/s, bytes); which ones a toxic takes
    depends on its type (`TOXIC_ATTRIBUTES`)."""

    @model_validator(mode="after")
    def _attributes_fit_the_type(self) -> NetworkFault:
        known = TOXIC_ATTRIBUTES[self.type]
        for name, value in self.attributes.items():
            if name not in known:
                raise ValueError(f"attributes.{name}: a {self.type} toxic takes {', '.join(known)}")
            low, high = known[name]
            if not low <= value <= high:
                raise ValueError(f"attributes.{name}: must be within [{low}, {high}]")
        return self


TOXIC_ATTRIBUTES: dict[str, dict[str, tuple[int, int]]] = {
    "latency": {"latency": (0, 600_000), "jitter": (0, 600_000)},
    "bandwidth": {"rate": (0, 10_000_000)},
    "slow_close": {"delay": (0, 600_000)},
    "timeout": {"timeout": (0, 600_000)},
    "reset_peer": {"timeout": (0, 600_000)},
    "slicer": {"average_size": (1, 10_000_000), "size_variation": (0, 10_000_000), "delay": (0, 60_000_000)},
    "limit_data": {"bytes": (0, 1_000_000_000)},
}
"""Each toxic type's attributes (Toxiproxy's own names) and their bounds: milliseconds, KB/s,
bytes, microseconds for the slicer's delay."""

ENDPOINT_FAULT = TypeAdapter(EndpointFault)


class Fault(Data):
    """One fault on the timeline: `at` seconds into the fault phase, for `for_` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: float = Field(ge=0, le=MAX_SECONDS)
    for_: float = Field(alias="for", gt=0, le=MAX_SECONDS)
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
                ENDPOINT_FAULT.validate_python(self.endpoint)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in ("endpoint", *first["loc"]))
                raise ValueError(f"{where}: {_hint(first['msg'].removeprefix('Value error, '))}") from None
        return self

    @property
    def family(self) -> str:
        """Which of the three kinds of fault this is: `network`, `down` or `endpoint`."""
        return "network" if self.network is not None else ("down" if self.down else "endpoint")

    @property
    def kind(self) -> str:
        """What reports call it: the toxic's type for a network fault, else the family."""
        return self.network.type if self.network is not None else self.family

    @property
    def detail(self) -> Any:
        """The fault's settings, as run files record them."""
        if self.network is not None:
            return self.network.model_dump()
        return self.endpoint

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


class AdminStep(Data):
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

    at: float = Field(ge=0, le=MAX_SECONDS)
    for_: float | None = Field(None, alias="for", gt=0, le=MAX_SECONDS)
    action: Literal["isolate", "drain", "weight", "degraded"]
    target: str | None = None
    weight: float | None = Field(None, ge=0, le=1_000_000)
    reason: str = Field(min_length=1, max_length=500)

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


class Scenario(Data):
    name: str = Field(pattern=NAME_PATTERN)
    """Letters, digits, `.`, `_` and `-` (it names the run folder)."""
    description: str = ""
    seed: int = Field(1, ge=0, le=2**63 - 1)
    time_scale: float = Field(1.0, gt=0, le=1000)
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


def field_path(location: tuple[Any, ...]) -> str:
    """pydantic's error location as people write it: `faults[0].endpoint`."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _hint(message: str) -> str:
    """pydantic's message, with the usual slip spelled out."""
    if "unable to parse string as a number" in message:
        return f"{message} (shares are fractions: 0.3, not 30%)"
    if message == "Unexpected keyword argument":
        return "unknown setting (see scenarios/README.md for the endpoint faults)"
    return message
