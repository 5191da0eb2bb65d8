"""The gateway's configuration file (YAML), validated with pydantic."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from resilience_core import (
    CircuitBreakerConfig,
    Hedged,
    Plan,
    RateLimitHold,
    RestorationConfig,
    RetryConfig,
    Sequential,
    SlowFirstAnswer,
    Weighted,
    classes,
    exponential,
    jitter,
    stop_after_attempt,
)


class Strict(BaseModel):
    """Frozen and closed: an unknown key is an error naming it, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(Strict):
    """An OpenAI-compatible upstream and the model names it serves (`*` wildcards allowed)."""

    name: str
    base_url: str
    models: list[str] = Field(default_factory=lambda: ["*"])
    api_key: str | None = None
    prefill: bool = True
    """Accepts an assistant message as the start of its answer (how a cut stream is continued);
    learned false at its first `invalid_prefill` refusal either way."""

    def serves(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


class Deployment(Strict):
    provider: str
    model: str
    priority: int = 0
    weight: float = Field(1.0, ge=0)


class Group(Strict):
    """A public model name backed by several deployments, with its own selection plan."""

    deployments: list[Deployment] = Field(min_length=1)
    plan: Literal["sequential", "hedged", "weighted"] = "sequential"
    hedge_delay: float = Field(0.5, ge=0)
    fallbacks: list[str] = Field(default_factory=list)

    def selection(self) -> Plan:
        if self.plan == "hedged":
            return Hedged(self.hedge_delay)
        if self.plan == "weighted":
            return Weighted()
        return Sequential()


FailureClass = Literal["server_error", "reset", "timeout", "refused", "rate_limited"]


class RetryPolicy(Strict):
    """Which failures are tried again on the same model (`on`), and how patiently. Every other
    transient failure goes straight to the next model: a timed-out or refusing route stays so,
    and a rate limit holds its model (see `rate_limits`)."""

    attempts: int = Field(2, ge=1)
    on: tuple[FailureClass, ...] = ("server_error", "reset")
    last_model_only: bool = True
    """Retry only on a group's last model left to try: with another one there, failing over is
    quicker than asking a flaky model again."""
    base: float = Field(0.05, ge=0)
    cap: float = Field(1.0, ge=0)
    jitter: float = Field(0.02, ge=0)
    budget: float | None = Field(0.2, ge=0, le=1)

    def to_core(self) -> RetryConfig:
        return RetryConfig(
            stop=stop_after_attempt(self.attempts),
            wait=exponential(self.base, cap=self.cap) + jitter(self.jitter),
            handle=classes(*self.on),
            last_candidate_only=self.last_model_only,
        )


class RateLimitPolicy(Strict):
    """A 429 holds its model for its Retry-After (at most `longest_hint` s), else for `backoff`
    seconds doubling with each 429 in a row up to `backoff_cap`; requests fail over meanwhile."""

    backoff: float = Field(0.5, gt=0)
    backoff_cap: float = Field(8.0, gt=0)
    longest_hint: float = Field(60.0, gt=0)

    def to_core(self) -> RateLimitHold:
        return RateLimitHold(self.backoff, self.backoff_cap, self.longest_hint)


class SlowFirstAnswerPolicy(Strict):
    """While another model remains, a call gets `factor` times the fastest model's usual time to
    first answer (smoothed + 4 deviations), at least `floor` s, before it is cut as slow."""

    factor: float = Field(3.0, ge=1)
    floor: float = Field(0.1, gt=0)
    hold: float = Field(3.0, ge=0)
    """Seconds a model cut at the cap is held (tried only after the others: it is slow now)."""
    hold_backoff: float = Field(2.0, ge=1)
    """The next hold's factor when the model is cut again right after one (still slow)."""
    max_hold: float = Field(8.0, ge=0)
    """The longest a backed-off hold grows to."""

    def to_core(self) -> SlowFirstAnswer:
        return SlowFirstAnswer(
            self.factor, self.floor, hold=self.hold, hold_backoff=self.hold_backoff, max_hold=self.max_hold
        )


class StreamPolicy(Strict):
    """How streams are relayed. Before the first content token nothing is committed and any
    failure fails over unseen; after it a stream that stalls (`stall_after` s without an
    event), crawls (under `min_tokens_per_second` once `rate_window` s have passed) or is cut
    is rescued: continued on a model that accepts the answer so far as an assistant prefill."""

    stall_after: float = Field(2.0, gt=0)
    min_tokens_per_second: float = Field(10.0, ge=0)
    rate_window: float = Field(1.0, gt=0)
    malformed_events: Literal["skip", "fail"] = "skip"
    rescues: int = Field(3, ge=0)
    """Continuations per answer: the model that cut it once, then one per model that has not
    failed it (three covers a pool of three with two failing at once)."""
    eject_for: float = Field(3.0, ge=0)
    """Seconds a model whose stream stalled or crawled (or failed a continuation) gets no new
    requests."""


class HealthPolicy(Strict):
    """Active health checks: every model probed each `interval` s (with jitter, so a large pool
    does not probe in step), unhealthy or open ones at most `unhealthy_interval` s apart (a random
    wait from half of it, so probes never fall in step with a model that flaps at that rhythm)."""

    interval: float = Field(30.0, gt=0)
    unhealthy_interval: float = Field(1.0, gt=0)
    jitter: float = Field(0.1, ge=0, lt=1)
    timeout: float = Field(2.0, gt=0)
    """A probe is a one-token answer: seconds are plenty, and a silent model is found quickly."""
    webhook: str | None = None
    """POSTed a JSON body on every health change (best effort); a log line is always written."""


class BreakerPolicy(Strict):
    consecutive_failures: int = Field(5, ge=1)
    failure_rate: float = Field(0.5, gt=0, le=1)
    minimum_calls: int = Field(10, ge=1)
    window_seconds: float | None = Field(10.0, gt=0)
    """A time window of this many seconds; null for a count window of `window_size` calls."""
    window_size: int = Field(50, ge=1)
    wait_duration: float = Field(1.0, ge=0)
    half_open_probes: int = Field(2, ge=1)
    wait_backoff: float = Field(2.0, ge=1)
    max_wait_duration: float = Field(8.0, ge=0)
    slow_call_duration: float = Field(float("inf"), gt=0)
    slow_call_rate: float = Field(1.0, gt=0, le=1)

    def to_core(self) -> CircuitBreakerConfig:
        return CircuitBreakerConfig(**self.model_dump())


class RestorationPolicy(Strict):
    steps: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    hold: float = Field(0.5, ge=0)
    """Seconds at each step. At 1 s a model back from a 2 s flap was still climbing when it
    went down again, and got its share back 4 s after its last flap (LiteLLM, which slams it,
    2 s); half a second keeps the staircase and makes that 2 s."""

    def to_core(self) -> RestorationConfig:
        return RestorationConfig(self.steps, self.hold)


class Policies(Strict):
    """The gateway's policies; every default is the one the library and the conformance suite
    pass with (README: each knob, its default and why)."""

    deadline: float = Field(10.0, gt=0)
    attempt_timeout: float = Field(5.0, gt=0)
    first_token_timeout: float = Field(3.0, gt=0)
    retry: RetryPolicy | None = Field(default_factory=RetryPolicy)
    rate_limits: RateLimitPolicy | None = Field(default_factory=RateLimitPolicy)
    slow_first_answer: SlowFirstAnswerPolicy | None = Field(default_factory=SlowFirstAnswerPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    restoration: RestorationPolicy | None = Field(default_factory=RestorationPolicy)
    stream: StreamPolicy = Field(default_factory=StreamPolicy)
    health: HealthPolicy | None = Field(default_factory=HealthPolicy)
    max_concurrent: int | None = Field(None, ge=1)
    max_queue: int = Field(0, ge=0)
    max_fallbacks: int = Field(4, ge=0, le=32)
    """At most this many fallback groups a request may name (`fallbacks`)."""
    degraded_answer: str | None = None


class GatewayConfig(Strict):
    """Usage::

    GatewayConfig.load("gateway.yaml")
    """

    mode: Literal["resilient", "passthrough"] = "resilient"
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    admin_token: str | None = None
    """Bearer token for /admin; CHAOS_ADMIN_TOKEN in the environment wins."""
    providers: list[Provider] = Field(min_length=1)
    groups: dict[str, Group] = Field(default_factory=dict)
    policies: Policies = Field(default_factory=Policies)
    audit_path: str | None = None
    max_groups: int = Field(1000, ge=1)
    """Wildcard providers add a group per model name asked for; beyond this many groups, the
    least recently used wildcard group is dropped (configured groups never are)."""
    client_timeout: float = Field(75.0, gt=0)
    """Seconds a client connection may take to send its request's headers, or sit idle between
    requests, before it is closed: a client trickling its headers (slowloris) cannot hold a
    connection for ever. 75 s as nginx's keep-alive default: longer than any client pool
    keeps an idle connection, so none meets a connection closed under its request."""

    @model_validator(mode="after")
    def _references_resolve(self) -> GatewayConfig:
        names = {p.name for p in self.providers}
        for group_name, group in self.groups.items():
            for deployment in group.deployments:
                if deployment.provider not in names:
                    raise ValueError(f"groups.{group_name}: unknown provider {deployment.provider!r}")
            for fallback in group.fallbacks:
                if fallback not in self.groups:
                    raise ValueError(f"groups.{group_name}.fallbacks: unknown group {fallback!r}")
        return self

    def provider(self, name: str) -> Provider:
        return next(p for p in self.providers if p.name == name)

    @classmethod
    def load(cls, path: str | Path) -> GatewayConfig:
        return cls.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
