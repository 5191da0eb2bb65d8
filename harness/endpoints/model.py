"""What a simulated endpoint is told: its latency model and the app-level fault it plays.

Plain frozen values, so scenarios, the control API and the endpoints share one definition."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar


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


MAX_SECONDS = 3600.0
"""No simulated delay is longer than an hour: a typo in a duration should not hang a run."""


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
    cut_before_finish: bool = False
    """A stream's connection drops after its last word, before its end (finish and `[DONE]`)."""
    error_after_tokens: int | None = None
    """After this many words a stream sends an in-band error event (`data: {"error": ...}`, as
    OpenAI does when a 200 stream fails) and ends cleanly, without `[DONE]`."""
    no_done: bool = False
    extra_first_token: float = 0.0
    token_rate: float | None = None
    stall_after_tokens: int | None = None
    stall_seconds: float = 0.0
    close_after_stall: bool = False
    """After the stall, close the connection without ending the stream (a hung-up provider)."""
    malformed_at: int = 1
    """Before which token `malformed_sse` inserts its broken event."""
    first_n: int | None = None
    """The fault plays only on the first n requests after it is set, then the model is healthy
    ("429 once, then fine")."""
    reset_before_headers: bool = False
    """The connection is reset (RST) before any response byte."""
    silent: bool = False
    """The request is read and never answered (until the client gives up or `stall_seconds`
    pass, when given)."""
    first_token_after_headers: float = 0.0
    """Stream headers go out at once; the first event only after this many seconds."""
    rejects_prefill: bool = False
    """A request whose last message is the assistant's (a prefill) gets 400 `invalid_prefill`."""
    tokens_per_minute: int | None = None
    """A provider's token budget: once a minute's prompt and answer tokens would pass it, 429
    `rate_limit_exceeded` with Retry-After and OpenAI's `x-ratelimit-*-tokens` headers until the
    minute (counted from when the fault was set) is over."""

    __pydantic_config__: ClassVar[dict[str, object]] = {"extra": "forbid", "allow_inf_nan": False}
    """How a scenario file's `endpoint:` mapping is checked (unknown keys and infinities refused)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        for name in ("retry_after", "extra_first_token", "stall_seconds", "first_token_after_headers"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_SECONDS:
                raise ValueError(f"{name} must be within [0, {MAX_SECONDS:g}] seconds")
        if self.tokens_per_minute is not None and self.tokens_per_minute < 1:
            raise ValueError("tokens_per_minute must be >= 1")
        for name in (
            "cut_after_tokens",
            "error_after_tokens",
            "stall_after_tokens",
            "first_n",
            "malformed_at",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.token_rate is not None and not self.token_rate > 0:
            raise ValueError("token_rate must be > 0 tokens per second")
        if self.error_rate > 0 and self.status is None:
            raise ValueError("error_rate needs a status")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
