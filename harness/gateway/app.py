"""The gateway we ship, wired: routing (the data plane), the HTTP handlers, the admin routes,
the dashboard and the metrics, in one aiohttp application. The one module that knows them all.

`resilient` routes each public model name (a group) through a `ModelRouter`; `passthrough` is
the control: the same server and upstream client, round-robin, one attempt, no policies.
Operators use `/admin/*` (bearer token; `GET /admin/openapi.json`) and `GET /dashboard`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import signal
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.gateway.admin.api import add_admin_routes
from harness.gateway.admin.auth import AdminAuth, resolve_token
from harness.gateway.admin.feed import StateFeed
from harness.gateway.admin.state import OperatorState, call_counts, model_states
from harness.gateway.config import GatewayConfig
from harness.gateway.dashboard import add_dashboard_routes
from harness.gateway.health import GroupHealth, own_connection, through_upstream
from harness.gateway.http.front import Front
from harness.gateway.http.guards import json_bodies_only
from harness.gateway.http.handlers import ChatHandler
from harness.gateway.metrics import add_metrics_route
from harness.gateway.routing import Routing
from harness.gateway.upstream_client import UpstreamSession
from resilience_core import AUDITED, AuditTrail, Clock, Event, HealthChanged, HealthStatus, ModelRouter

MAX_BODY = 8 * 1024 * 1024
"""The largest request body the gateway reads (aiohttp answers 413 past it)."""


class Gateway:
    """Routing plus what operators see and do: audit trail, operator state, feed, token check."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        session: UpstreamSession | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """The keywords are for the simulation: a session that reaches models in virtual time
        with no socket, a seeded random source so a run replays exactly, and its clocks."""
        self.config = config
        self.routing = Routing(
            config,
            on_router=self._watch,
            on_dropped=self._unwatch,
            session=session,
            rng=rng,
            clock=clock,
        )
        self.health: dict[str, GroupHealth] = {}
        self._probed: dict[str, str] = {}
        """Each probed deployment's label, and the group whose checks probe it."""
        self._stopping: set[asyncio.Task[None]] = set()
        self._started = False
        self.auth = AdminAuth(resolve_token(config.admin_token))
        self.audit = AuditTrail(config.audit_path, wall_clock=wall_clock) if config.audit_path else None
        self.operator = OperatorState(config.policies.degraded_answer)
        self.feed = StateFeed(self.state, self.sample_traffic)
        self.chat = ChatHandler(self.routing, self._degraded_answer, self.routing.clock.now)
        self._feed_task: asyncio.Task[None] | None = None

    @property
    def routers(self) -> Mapping[str, ModelRouter]:
        return self.routing.routers

    async def start(self) -> None:
        await self.routing.start()
        self._started = True
        self.sample_traffic()  # the baseline: shares are right from the first requests on
        self._feed_task = asyncio.create_task(self.feed.run())

    async def stop(self) -> None:
        for health in self.health.values():
            await health.stop()
        await self.feed.close()
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
        await self.routing.stop()
        if self.audit is not None:
            self.audit.close()

    def _watch(self, group: str, router: ModelRouter) -> None:
        if self.audit is not None:
            self.audit.attach(router.events)
        router.events.subscribe(partial(self._on_router_event, group), kinds=AUDITED)
        policy = self.config.policies.health
        if policy is not None:
            # A group made on demand (a wildcard) just served a request: its first probe can wait.
            first_after = policy.interval if self._started else None
            # A deployment in several groups (every provider model also has its own implicit
            # group) is probed once, by the first group that has it; its health reaches every
            # router that routes to it (`_health_event`). Probing it per group doubled the
            # probes, and the endpoints count each as an upstream call.
            upstreams = {
                label: upstream for label, upstream in self.routing.pools[group] if label not in self._probed
            }
            if not upstreams:
                return
            self._probed.update(dict.fromkeys(upstreams, group))
            record = partial(self._health_event, group)
            rng = random.Random(self.routing.rng.random()) if self.routing.rng is not None else None
            health = GroupHealth(
                router,
                upstreams,
                policy,
                self.routing.session,
                record,
                first_after,
                clock=self.routing.clock,
                rng=rng,
                probe_with=own_connection if self.routing.owns_session else through_upstream,
            )
            self.health[group] = health
            health.start()

    def _unwatch(self, group: str) -> None:
        self._probed = {label: owner for label, owner in self._probed.items() if owner != group}
        health = self.health.pop(group, None)
        if health is not None:  # dropped from a request handler: its checks end in the background
            task = asyncio.get_running_loop().create_task(health.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def _health_event(self, group: str, event: Event) -> None:
        if isinstance(event, HealthChanged) and event.model is not None:
            healthy = event.to_state != HealthStatus.UNHEALTHY
            for name, router in self.routing.routers.items():  # its own group's router is told already
                if name != group and event.model in router.models:
                    router.set_health(event.model, healthy)
        if self.audit is not None:
            self.audit(event)
        if self.operator.recent.add(event, group):
            self.feed.poke()

    def _on_router_event(self, group: str, event: Event) -> None:
        if self.operator.recent.add(event, group):
            self.feed.poke()

    def _degraded_answer(self) -> str | None:
        return self.operator.degraded_answer if self.operator.degraded.enabled else None

    def record(self, event: Event) -> None:
        """Audit a gateway-wide event (no router owns it): the file, the recent list, the feed."""
        if self.audit is not None:
            self.audit(event)
        self.operator.recent.add(event, None)
        self.feed.poke()

    def health_statuses(self) -> dict[str, dict[str, str]]:
        return {group: health.statuses() for group, health in self.health.items()}

    def sample_traffic(self) -> None:
        routing = self.routing
        self.operator.traffic.sample(
            time.monotonic(), call_counts(routing.routers, routing.pools, routing.passed)
        )

    def state(self) -> dict[str, Any]:
        """What /admin/state and the dashboard show; finite numbers only, no URLs or keys."""
        operator, routing = self.operator, self.routing
        return {
            "mode": self.config.mode,
            "time": time.time(),
            "groups": operator.decorate(
                model_states(routing.routers, routing.pools, routing.passed), time.monotonic()
            ),
            "pools": {name: [label for label, _ in pool] for name, pool in routing.pools.items()},
            "refused_admin_requests": self.auth.refused,
            "degraded": operator.degraded.to_dict(),
            "run": operator.run(),
            "audit": operator.recent.last(),
            "traffic_window": operator.traffic.window,
        }


def build_app(gateway: Gateway) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[json_bodies_only])
    gateway.chat.add_routes(app)
    requests = add_metrics_route(
        app, lambda: gateway.routers, lambda: {g: h.statuses() for g, h in gateway.health.items()}
    )
    gateway.chat.observe = requests.observe
    add_admin_routes(app, gateway)
    add_dashboard_routes(app)
    return app


async def serve(config: GatewayConfig, ready_file: Path | None) -> None:
    """Serve until SIGINT or SIGTERM; the address goes to `ready_file` (or stdout) once listening."""
    gateway = Gateway(config)
    await gateway.start()
    # aiohttp's keep-alive timer starts with the connection and closes it when no whole
    # request has arrived by then: the one bound it offers on a slow header.
    runner = web.AppRunner(
        build_app(gateway), access_log=None, handle_signals=False, keepalive_timeout=config.client_timeout
    )
    await runner.setup()
    assert runner.server is not None
    # The chat route's common case is answered by the front; it hands every other connection
    # to aiohttp's protocol (http/front.py says why).
    front = Front(gateway.chat, runner.server, max_body=MAX_BODY, idle_timeout=config.client_timeout)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(front, config.host, config.port, backlog=2048)
    # What startup built (modules, config, routers, the app) lives as long as the process: out
    # of the collector's sight, a full collection walks only what requests left behind
    # (docs/benchmarks.md: a full collection of the startup heap showed in the per-request cost).
    gc.collect()
    gc.freeze()
    port = server.sockets[0].getsockname()[1]
    announcement = {"url": f"http://{config.host}:{port}", "pid": os.getpid(), "mode": config.mode}
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(announcement))
        tmp.replace(ready_file)
    else:
        print(json.dumps(announcement), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    front.close()
    await runner.cleanup()
    await gateway.stop()
