"""Value objects shared by the endpoints, the scenarios and the runner."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Time to first token plus a token rate, each with jitter; an endpoint draws from its seed.

    Usage::

        LatencyModel(first_token=0.05, tokens_per_second=200.0, tokens_min=8, tokens_max=24)
    """

    first_token: float = 0.02
    first_token_jitter: float = 0.005
    tokens_per_second: float = 2000.0
    tokens_min: int = 8
    tokens_max: int = 24
    token_rate_jitter: float = 0.1
    """Each answer's token rate varies by up to this share either way."""

    def tokens(self, rng: random.Random) -> int:
        return rng.randint(self.tokens_min, self.tokens_max)

    def first_token_delay(self, rng: random.Random) -> float:
        return max(0.0, self.first_token + rng.uniform(-1.0, 1.0) * self.first_token_jitter)

    def per_token(self, rng: random.Random, rate_override: float | None = None) -> float:
        """Seconds per token for one answer; a fault's rate override is exact (no jitter)."""
        if rate_override:
            return 1.0 / rate_override
        rate = self.tokens_per_second * (1.0 + rng.uniform(-1.0, 1.0) * self.token_rate_jitter)
        return 1.0 / rate if rate > 0 else 0.0


@dataclass(frozen=True, slots=True)
class EndpointFault:
    """HTTP/LLM-level misbehaviour set on a simulated endpoint (TCP faults go to Toxiproxy).

    The defaults mean "healthy". `error_rate` is the share of requests answered with `status`.
    """

    error_rate: float = 0.0
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    malformed_json: bool = False
    malformed_sse: bool = False
    cut_after_tokens: int | None = None
    no_done: bool = False
    extra_first_token: float = 0.0
    token_rate: float | None = None
    stall_after_tokens: int | None = None
    stall_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        if self.error_rate > 0 and self.status is None:
            raise ValueError("error_rate needs a status")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
