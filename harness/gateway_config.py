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
    RestorationConfig,
    RetryConfig,
    Sequential,
    Weighted,
    exponential,
    jitter,
    stop_after_attempt,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(_Strict):
    """An OpenAI-compatible upstream and the model names it serves (`*` wildcards allowed)."""

    name: str
    base_url: str
    models: list[str] = Field(default_factory=lambda: ["*"])
    api_key: str | None = None

    def serves(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


class Deployment(_Strict):
    provider: str
    model: str
    priority: int = 0
    weight: float = Field(1.0, ge=0)


class Group(_Strict):
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


class RetryPolicy(_Strict):
    attempts: int = Field(2, ge=1)
    base: float = Field(0.05, ge=0)
    cap: float = Field(1.0, ge=0)
    jitter: float = Field(0.02, ge=0)
    budget: float | None = Field(0.2, ge=0, le=1)

    def to_core(self) -> RetryConfig:
        return RetryConfig(
            stop=stop_after_attempt(self.attempts),
            wait=exponential(self.base, cap=self.cap) + jitter(self.jitter),
        )


class BreakerPolicy(_Strict):
    consecutive_failures: int = Field(5, ge=1)
    failure_rate: float = Field(0.5, gt=0, le=1)
    minimum_calls: int = Field(10, ge=1)
    window_seconds: float | None = Field(10.0, gt=0)
    """A time window of this many seconds; null for a count window of `window_size` calls."""
    window_size: int = Field(50, ge=1)
    wait_duration: float = Field(2.0, ge=0)
    half_open_probes: int = Field(2, ge=1)
    slow_call_duration: float = Field(float("inf"), gt=0)
    slow_call_rate: float = Field(1.0, gt=0, le=1)

    def to_core(self) -> CircuitBreakerConfig:
        return CircuitBreakerConfig(**self.model_dump())


class RestorationPolicy(_Strict):
    steps: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    hold: float = Field(2.0, ge=0)

    def to_core(self) -> RestorationConfig:
        return RestorationConfig(self.steps, self.hold)


class Policies(_Strict):
    deadline: float = Field(10.0, gt=0)
    attempt_timeout: float = Field(5.0, gt=0)
    first_token_timeout: float = Field(3.0, gt=0)
    stream_idle_timeout: float = Field(5.0, gt=0)
    retry: RetryPolicy | None = Field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    restoration: RestorationPolicy | None = Field(default_factory=RestorationPolicy)
    max_concurrent: int | None = Field(None, ge=1)
    max_queue: int = Field(0, ge=0)
    degraded_answer: str | None = None


class GatewayConfig(_Strict):
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
