"""The data plane: which upstreams serve a public model name, and the outcome of one request.

`resilient` mode routes each group through a `ModelRouter`; `passthrough` (the control) sends
each request to the group's next upstream in turn, one attempt, no policies. A request may name
fallback groups; one deadline covers the whole chain.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from harness.gateway.config import Deployment, GatewayConfig, Group
from harness.gateway.upstream import Upstream
from harness.gateway.upstream_client import UpstreamSession
from resilience_core import (
    BulkheadConfig,
    Clock,
    EventBus,
    LoopClock,
    ModelCallError,
    ModelRouter,
    ModelSpec,
    Outcome,
    RouterConfig,
    StaticAnswer,
)

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
"""What a model name asked for may look like: no control characters, no 2 MB names."""

RouterCreated = Callable[[str, ModelRouter], None]


class Routing:
    """The routers (or round-robin pools) of every group, over one shared upstream session."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        clock: Clock | None = None,
        on_router: RouterCreated = lambda name, router: None,
        on_dropped: Callable[[str], None] = lambda name: None,
        session: UpstreamSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock if clock is not None else LoopClock()
        self.session = session
        """The upstream HTTP session: made (and closed) here unless one is given (the
        simulation gives its own, with no socket under it)."""
        self._owns_session = session is None
        self.rng = rng
        """The routers' random source (seeded in the simulation, so a run replays exactly)."""
        self.on_router = on_router
        """Told of each router as it is made, so telemetry can subscribe to its events."""
        self.on_dropped = on_dropped
        """Told when a wildcard group is dropped to make room."""
        self.routers: dict[str, ModelRouter] = {}
        self.pools: dict[str, list[tuple[str, Upstream]]] = {}
        self._turns: dict[str, Iterator[int]] = {}
        self._wildcards: OrderedDict[str, None] = OrderedDict()
        """Wildcard groups, least recently used first."""
        self.passed: Counter[tuple[str, str]] = Counter()
        """Passthrough requests per (group, label): the control has no router metrics."""
        # What every request reads from the config, read once: the config is a pydantic model,
        # whose `__getattr__` keeps Python 3.11 from specialising any attribute read on it, so
        # each `config.policies.deadline` went the generic way (type lookup, then instance dict),
        # cold on every request.
        self.resilient = config.mode == "resilient"
        self._deadline = config.policies.deadline
        self._max_fallbacks = config.policies.max_fallbacks
        self._configured_fallbacks = {name: tuple(group.fallbacks) for name, group in config.groups.items()}

    async def start(self) -> None:
        if self.session is None:
            self.session = UpstreamSession()
        for name, group in self._groups().items():
            self._add_group(name, group)

    @property
    def owns_session(self) -> bool:
        """Whether the HTTP session is this gateway's own (not one given to it, as the
        simulation gives its in-process one)."""
        return self._owns_session

    async def stop(self) -> None:
        if self.session is not None and self._owns_session:
            await self.session.close()

    def chain(self, body: dict[str, Any]) -> list[str] | str:
        """The groups a request may use, in order; or why it may not: the first name no group
        serves (or a malformed one), or too many fallbacks."""
        fallbacks = self._fallbacks(body)
        if len(fallbacks) > self._max_fallbacks:
            raise TooManyFallbacks(self._max_fallbacks)
        chain = [body["model"], *fallbacks]
        for name in chain:
            if name in self.pools:
                if name in self._wildcards:
                    self._wildcards.move_to_end(name)
            elif not MODEL_NAME.match(name) or not self._add_wildcard_group(name):
                return name
        return chain

    async def answer(self, chain: list[str], body: dict[str, Any]) -> tuple[Outcome, int, str, float]:
        """The first group's outcome worth keeping, the upstream attempts the chain made, the
        group it came from and the chain's deadline (one budget for all of it)."""
        attempts = 0
        outcome: Outcome | None = None
        deadline = self.clock.now() + self._deadline
        group = chain[0]
        for group in chain:
            if outcome is not None and self.clock.now() >= deadline:
                break
            outcome = await self.route(group, body, deadline)
            attempts += outcome.attempts
            if outcome.ok or not worth_falling_back(outcome):
                break
        assert outcome is not None, "a chain names at least the requested model"
        return outcome, attempts, group, deadline

    async def continuation(
        self, groups: list[str], body: dict[str, Any], sent: str, deadline: float, failed: str, eject: bool
    ) -> tuple[str, Any] | None:
        """A stream continuing an answer cut after `sent` went out: the same request with `sent`
        as an assistant prefill, routed as any request of the group that served it, then of the
        fallback groups after it (so a model whose circuit just opened is skipped, and one that
        refuses prefill is passed over). With `eject`, or when another model is free to
        continue (`_another_free`), the `failed` model is first held for the stream policy's
        `eject_for` seconds: new requests, and this continuation, go elsewhere. When every
        model of a group is held, the first hold to end is waited for if it ends within the
        stream's `stall_after` and the deadline (a client already waiting on a paused stream is
        better served a little later than cut), else the group is passed over.
        The model that continues it and its stream, or None when none could in time."""
        if not self.resilient or not sent:
            return None
        if eject or self._another_free(groups, failed):
            for group in groups:
                router = self.routers.get(group)
                if router is not None and failed in router.models:
                    router.hold(failed, self.clock.now() + self.config.policies.stream.eject_for)
        messages = [*body.get("messages", []), {"role": "assistant", "content": sent}]
        patience = self.config.policies.stream.stall_after
        for group in groups:
            router = self.routers.get(group)
            now = self.clock.now()
            if router is None or now >= deadline:
                continue
            if router.all_held(now):
                wait = min(router.held.values()) - now
                if wait > patience or now + wait >= deadline:
                    continue
                await self.clock.sleep(wait)
            outcome = await router.execute({**body, "messages": messages}, deadline=deadline)
            if outcome.ok and not outcome.degraded:
                return outcome.model or "", outcome.value
        return None

    def _another_free(self, groups: list[str], failed: str) -> bool:
        """Another model of `failed`'s own group would take a request now. A first cut may be a
        blip, but continuing on a free model costs no more than on the one that cut, and a model
        that cuts every answer would cut the continuation too: it is held as for a stall whenever
        its group has another to continue (each cut answer took ~250 ms instead of ~100 ms while
        the first cut answers all went back to it, a p95 of +65 % in the fault window of
        `stream-cut`). Not for fallback groups: a held model's whole group is passed over, and
        a fallback may refuse the prefill (failoverbench S14), so the model that cut it is
        asked again first, as before."""
        for group in groups:
            router = self.routers.get(group)
            if router is None or failed not in router.models:
                continue
            for name, handle in router.models.items():
                if name != failed and handle.available and handle.admission() > 0:
                    return True
        return False

    def route(self, group: str, body: dict[str, Any], deadline: float | None = None) -> Awaitable[Outcome]:
        """The outcome of one group's call: the router's own awaitable in resilient mode (a
        coroutine layer here would only forward it), one upstream call in passthrough."""
        if not self.resilient:
            return self._pass(group, body)
        return self.routers[group].execute(body, deadline=deadline)

    async def _pass(self, group: str, body: dict[str, Any]) -> Outcome:
        label, upstream = self.pools[group][next(self._turns[group])]
        self.passed[(group, label)] += 1
        try:
            return Outcome(await upstream(body), model=label, attempts=1)
        except Exception as exc:
            return Outcome(error=exc, model=label, attempts=1)

    def _fallbacks(self, body: dict[str, Any]) -> Sequence[str]:
        if not self.resilient:
            return ()  # the control has no fallback, whatever the request asks for
        requested = body.get("fallbacks")
        if isinstance(requested, list):
            return [name if isinstance(name, str) else "" for name in requested]
        return self._configured_fallbacks.get(body["model"], ())

    def _groups(self) -> dict[str, Group]:
        """Configured groups, plus one implicit group per explicitly named provider model."""
        groups = dict(self.config.groups)
        for provider in self.config.providers:
            for model in provider.models:
                if "*" not in model and "?" not in model and model not in groups:
                    groups[model] = Group(deployments=[Deployment(provider=provider.name, model=model)])
        return groups

    def _add_group(self, name: str, group: Group) -> None:
        upstreams = [
            (f"{d.provider}/{d.model}", d, self._upstream(d.provider, d.model)) for d in group.deployments
        ]
        self.pools[name] = [(label, upstream) for label, _, upstream in upstreams]
        self._turns[name] = itertools.cycle(range(len(upstreams)))
        if self.resilient:
            router = self._router(group, upstreams)
            self.routers[name] = router
            self.on_router(name, router)

    def _add_wildcard_group(self, model: str) -> bool:
        """A model no group names, served by a provider with a wildcard: route it there."""
        provider = next((p for p in self.config.providers if p.serves(model)), None)
        if provider is None:
            return False
        while len(self.pools) >= self.config.max_groups and self._wildcards:
            oldest, _ = self._wildcards.popitem(last=False)
            self.pools.pop(oldest, None)
            self.routers.pop(oldest, None)
            self._turns.pop(oldest, None)
            self.on_dropped(oldest)
        if len(self.pools) >= self.config.max_groups:
            return False
        self._add_group(model, Group(deployments=[Deployment(provider=provider.name, model=model)]))
        self._wildcards[model] = None
        return True

    def _upstream(self, provider_name: str, model: str) -> Upstream:
        provider = self.config.provider(provider_name)
        assert self.session is not None
        return Upstream(
            self.session,
            provider.base_url,
            model,
            provider.api_key,
            self.config.policies.first_token_timeout,
            provider.prefill,
        )

    def _router(self, group: Group, upstreams: list[tuple[str, Deployment, Upstream]]) -> ModelRouter:
        policies = self.config.policies
        bulkhead = (
            BulkheadConfig(policies.max_concurrent, policies.max_queue) if policies.max_concurrent else None
        )
        specs = [
            ModelSpec(
                label,
                upstream,
                priority=d.priority,
                weight=d.weight,
                timeout=policies.attempt_timeout,
                bulkhead=bulkhead,
            )
            for label, d, upstream in upstreams
        ]
        config = RouterConfig(
            deadline=policies.deadline,
            plan=group.selection(),
            retry=policies.retry.to_core() if policies.retry else None,
            retry_budget=policies.retry.budget if policies.retry else None,
            breaker=policies.breaker.to_core(),
            restoration=policies.restoration.to_core() if policies.restoration else None,
            degraded=StaticAnswer(policies.degraded_answer) if policies.degraded_answer else None,
            rate_limits=policies.rate_limits.to_core() if policies.rate_limits else None,
            slow_first_answer=policies.slow_first_answer.to_core() if policies.slow_first_answer else None,
        )
        rng = random.Random(self.rng.random()) if self.rng is not None else None
        return ModelRouter(specs, config, clock=self.clock, events=EventBus(), rng=rng)


def worth_falling_back(outcome: Outcome) -> bool:
    """Whether another group could answer where this one refused: not for the caller's own
    mistakes (a context-length error is the exception: a larger window may succeed)."""
    error = outcome.error
    return not (
        isinstance(error, ModelCallError)
        and error.status in (400, 401, 403, 422)
        and error.code != "context_length_exceeded"
    )


class TooManyFallbacks(ValueError):
    """A request named more fallback groups than the gateway allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} fallbacks per request")
        self.limit = limit
