"""Selection plans: in what order a fallback tries candidates, and whether it overlaps them.

One fallback policy runs every plan (after Polly's hedging): `Sequential` tries by priority,
`Hedged(delay)` starts the next candidate when the earlier ones have not answered within
`delay` (0 races them all), `Weighted` orders by live weight. Weighted and hedged combine.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import ClassVar, Protocol

from .context import Call, Context
from .outcome import Outcome


class Candidate(Protocol):
    """A model the fallback may try."""

    @property
    def name(self) -> str: ...

    @property
    def priority(self) -> int: ...

    @property
    def call(self) -> Call: ...

    def weight(self) -> float:
        """Current routing weight (0 = no traffic)."""
        ...

    def admission(self) -> float:
        """Share of requests that may try this model first (progressive restoration)."""
        ...

    def run(self, ctx: Context) -> Awaitable[Outcome]: ...


class Plan(Protocol):
    """Orders candidates; `hedge_delay` is inf for one-at-a-time plans.

    A plan whose order depends only on the candidates it is given (their priorities), not on
    chance or live figures, says so with a true `keeps_order`: a router may then keep the
    order it returned until its pool changes. Plans without the attribute are asked each time.
    """

    @property
    def hedge_delay(self) -> float: ...

    def order(self, candidates: Sequence[Candidate], rng: random.Random) -> list[Candidate]: ...


@dataclass(frozen=True, slots=True)
class Sequential:
    """Priority order (lower number first), one at a time.

    Usage::

        Fallback(models, Sequential())
    """

    hedge_delay: float = math.inf
    keeps_order: ClassVar[bool] = True

    def order(self, candidates: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
        return sorted(candidates, key=_priority)


@dataclass(frozen=True, slots=True)
class Hedged:
    """Priority order, starting the next candidate every `delay` seconds until one succeeds.

    Usage::

        Fallback(models, Hedged(0.3))   # second model starts if the first is silent for 300 ms
    """

    delay: float = 0.0
    keeps_order: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError("Hedged.delay must be >= 0")

    @property
    def hedge_delay(self) -> float:
        return self.delay

    def order(self, candidates: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
        return sorted(candidates, key=_priority)


@dataclass(frozen=True, slots=True)
class Weighted:
    """Random order drawn by weight: the first pick follows the weights exactly; zero-weight
    candidates are left out. `hedge_delay` makes it weighted and hedged.

    Usage::

        Fallback(models, Weighted())
    """

    hedge_delay: float = math.inf
    keeps_order: ClassVar[bool] = False

    def order(self, candidates: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
        # Efraimidis-Spirakis (u ** (1/w), largest first) in log space over weights relative
        # to the largest, so tiny or huge weights cannot underflow every key to the same
        # value and hand the tie to list order.
        weighted = [(c.weight(), c) for c in candidates]
        heaviest = max((w for w, _ in weighted), default=0.0)
        keyed = []
        for weight, candidate in weighted:
            if weight > 0:
                relative = weight / heaviest  # 0 when negligible beside the heaviest
                key = math.log(1.0 - rng.random()) / relative if relative > 0 else -math.inf
                keyed.append((key, candidate))
        keyed.sort(key=lambda pair: pair[0], reverse=True)
        return [candidate for _, candidate in keyed]


_priority = attrgetter("priority")
