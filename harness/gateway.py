"""The system under test we ship: an OpenAI-compatible gateway built on resilience_core.

`resilient` mode routes each public model name (a group) through a `ModelRouter`; `passthrough`
is the control: the same server and upstream client, round-robin, one attempt, no policies.

Operators use `/admin/*` (bearer token; see `GET /admin/openapi.json`) and the dashboard at
`GET /dashboard`, both in their own modules (`harness.admin_api`, `harness.dashboard`).

Run: `python -m harness.gateway --config gateway.yaml [--ready-file F]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hmac
import itertools
import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from harness.admin_api import add_admin_routes
from harness.admin_events import StateFeed
from harness.admin_state import OperatorState, call_counts, model_states
from harness.dashboard import add_dashboard_routes
from harness.gateway_config import GatewayConfig, Group
from harness.upstream import StreamStart, Upstream
from resilience_core import (
    AttemptTimeoutError,
    AuditTrail,
    BulkheadConfig,
    DeadlineExceededError,
    Event,
    ModelCallError,
    ModelRouter,
    ModelSpec,
    Outcome,
    RejectedError,
    RouterConfig,
    StaticAnswer,
)

log = logging.getLogger("harness.gateway")

MAX_GROUPS = 1000
"""Wildcard providers add a group per model name asked for; a bound keeps a typo storm finite."""


def openai_error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    """An OpenAI-style error body: a clear message, never upstream URLs, keys or tracebacks."""
    return web.json_response({"error": {"message": message, "type": kind, "code": code}}, status=status)


def error_response(error: BaseException | None) -> web.Response:
    if isinstance(error, ModelCallError) and error.status is not None and error.status < 500:
        return openai_error(
            error.status,
            f"upstream rejected the request ({error.status})",
            "invalid_request_error" if error.status != 429 else "rate_limit_error",
            error.code,
        )
    timed_out = isinstance(error, ModelCallError) and error.status == 504
    if timed_out or isinstance(error, DeadlineExceededError | AttemptTimeoutError | TimeoutError):
        return openai_error(504, "the model did not answer in time", "timeout")
    if isinstance(error, RejectedError):
        return openai_error(503, "no model is available right now", "service_unavailable")
    return openai_error(502, "the model failed to answer", "upstream_error")


class Gateway:
    """Holds the routers (or round-robin pools), the upstream session and the admin token."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.token = os.environ.get("CHAOS_ADMIN_TOKEN") or config.admin_token
        self.session: aiohttp.ClientSession | None = None
        self.routers: dict[str, ModelRouter] = {}
        self.pools: dict[str, list[tuple[str, Upstream]]] = {}
        self._turns: dict[str, Iterator[int]] = {}
        self.audit: AuditTrail | None = None
        self.bad_tokens = 0
        self.operator = OperatorState(config.policies.degraded_answer)
        self.feed = StateFeed(self.state, self.sample_traffic)
        self.passed: Counter[tuple[str, str]] = Counter()
        """Passthrough requests per (group, label): the control has no router metrics."""
        self._feed_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
        if self.config.audit_path:
            self.audit = AuditTrail(self.config.audit_path)
        for name, group in self._groups().items():
            self._add_group(name, group)
        self.sample_traffic()  # the baseline: shares are right from the first requests on
        self._feed_task = asyncio.create_task(self.feed.run())

    def _add_group(self, name: str, group: Group) -> None:
        upstreams = [
            (f"{d.provider}/{d.model}", d, self._upstream(d.provider, d.model)) for d in group.deployments
        ]
        self.pools[name] = [(label, upstream) for label, _, upstream in upstreams]
        self._turns[name] = itertools.cycle(range(len(upstreams)))
        if self.config.mode == "resilient":
            self.routers[name] = self._router(name, group, upstreams)

    def _groups(self) -> dict[str, Group]:
        """Configured groups, plus one implicit group per explicitly named provider model."""
        from harness.gateway_config import Deployment

        groups = dict(self.config.groups)
        for provider in self.config.providers:
            for model in provider.models:
                if "*" not in model and "?" not in model and model not in groups:
                    groups[model] = Group(deployments=[Deployment(provider=provider.name, model=model)])
        return groups

    def _add_wildcard_group(self, model: str) -> bool:
        """A model no group names, served by a provider with a wildcard: route it there."""
        from harness.gateway_config import Deployment

        provider = next((p for p in self.config.providers if p.serves(model)), None)
        if provider is None or len(self.pools) >= MAX_GROUPS:
            return False
        group = Group(deployments=[Deployment(provider=provider.name, model=model)])
        self._add_group(model, group)
        return True

    def _upstream(self, provider_name: str, model: str) -> Upstream:
        provider = self.config.provider(provider_name)
        assert self.session is not None
        return Upstream(
            self.session, provider.base_url, model, provider.api_key, self.config.policies.first_token_timeout
        )

    def _router(self, name: str, group: Group, upstreams: list[tuple[str, Any, Upstream]]) -> ModelRouter:
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
        )
        router = ModelRouter(specs, config)
        if self.audit is not None:
            router.events.subscribe(self.audit)
        router.events.subscribe(partial(self._on_router_event, name))
        return router

    def _on_router_event(self, group: str, event: Event) -> None:
        if self.operator.recent.add(event, group):
            self.feed.poke()

    def record(self, event: Event) -> None:
        """Audit a gateway-wide event (no router owns it): the file, the recent list, the feed."""
        if self.audit is not None:
            self.audit(event)
        self.operator.recent.add(event, None)
        self.feed.poke()

    def sample_traffic(self) -> None:
        self.operator.traffic.sample(time.monotonic(), call_counts(self.routers, self.pools, self.passed))

    async def stop(self) -> None:
        await self.feed.close()
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
        if self.session is not None:
            await self.session.close()
        if self.audit is not None:
            self.audit.close()

    def route(self, group: str, body: dict[str, Any], deadline: float | None = None) -> Awaitable[Outcome]:
        """The outcome of one group's call: the router's own awaitable in resilient mode (a
        coroutine layer here would only forward it), one upstream call in passthrough."""
        if self.config.mode == "passthrough":
            return self._pass(group, body)
        return self.routers[group].execute(body, deadline=deadline)

    async def _pass(self, group: str, body: dict[str, Any]) -> Outcome:
        label, upstream = self.pools[group][next(self._turns[group])]
        self.passed[(group, label)] += 1
        try:
            return Outcome(await upstream(body), model=label, attempts=1)
        except Exception as exc:
            return Outcome(error=exc, model=label, attempts=1)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return openai_error(400, "request body is not valid JSON", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return openai_error(400, "the request needs a string 'model'", "invalid_request_error")
        chain = [body["model"], *self._fallbacks(body)]
        unknown = [name for name in chain if name not in self.pools and not self._add_wildcard_group(name)]
        if unknown:
            return openai_error(
                404, f"unknown model {unknown[0]!r}", "invalid_request_error", "model_not_found"
            )
        if self.operator.degraded.enabled:  # the operator's switch: no model is called
            headers = {"x-served-by": "", "x-attempts": "0", "x-degraded": "true"}
            headers["x-gateway-ms"] = f"{(time.monotonic() - started) * 1000:.2f}"
            return await self._degraded(request, self.operator.degraded_answer, body, headers)
        attempts = 0
        outcome = Outcome(error=RuntimeError("no model tried"))
        deadline = time.monotonic() + self.config.policies.deadline  # one budget for the whole chain
        for name in chain:
            if time.monotonic() >= deadline:
                break
            outcome = await self.route(name, body, deadline)
            attempts += outcome.attempts
            if outcome.ok or not self._worth_falling_back(outcome):
                break
        headers = {
            "x-served-by": outcome.model or "",
            "x-attempts": str(attempts),
            "x-degraded": "true" if outcome.degraded else "false",
            "x-gateway-ms": f"{(time.monotonic() - started) * 1000:.2f}",
        }
        if not outcome.ok:
            response = error_response(outcome.error)
            response.headers.update(headers)
            return response
        value = outcome.value
        if isinstance(value, StreamStart):
            return await self._relay(request, value, headers)
        if outcome.degraded:
            return await self._degraded(request, str(value), body, headers)
        return web.json_response(value, headers=headers)

    async def _degraded(
        self, request: web.Request, text: str, body: dict[str, Any], headers: dict[str, str]
    ) -> web.StreamResponse:
        value = _degraded_completion(text, bool(body.get("stream")))
        if body.get("stream"):
            return await self._send_events(request, [json.dumps(value).encode()], headers)
        return web.json_response(value, headers=headers)

    def _fallbacks(self, body: dict[str, Any]) -> list[str]:
        if self.config.mode != "resilient":
            return []  # the control has no fallback, whatever the request asks for
        requested = body.get("fallbacks")
        if isinstance(requested, list):
            return [str(name) for name in requested]
        group = self.config.groups.get(body["model"])
        return list(group.fallbacks) if group else []

    @staticmethod
    def _worth_falling_back(outcome: Outcome) -> bool:
        error = outcome.error
        return not (
            isinstance(error, ModelCallError)
            and error.status in (400, 401, 403, 422)
            and error.code != "context_length_exceeded"
        )

    async def _relay(
        self,
        request: web.Request,
        stream: StreamStart,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
        except BaseException:
            stream.settle(failed=False)  # the client went before a byte: says nothing of the model
            stream.close()
            raise

        async def send(payload: bytes) -> None:
            try:
                await response.write(b"data: " + payload + b"\n\n")
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                raise _ClientGone from None

        try:
            await send(stream.first)
            async for payload in stream.events(self.config.policies.stream_idle_timeout):
                await send(payload)
        except _ClientGone:
            stream.settle(failed=False)  # the client left: says nothing about the model
            stream.close()
            return response
        except (ModelCallError, TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            # Bytes have gone out: no failover now. End with an in-band error and no [DONE],
            # so no client mistakes the truncated answer for a complete one.
            stream.settle(failed=True)
            message = (
                "the model stream failed mid-answer"
                if not isinstance(exc, TimeoutError)
                else "the model stream stalled"
            )
            error = {"error": {"message": message, "type": "stream_error", "code": "stream_interrupted"}}
            await _write_quietly(response, f"data: {json.dumps(error)}\n\n".encode())
            return response
        finally:
            stream.settle(failed=False)  # no-op when already settled
        await _write_quietly(response, b"data: [DONE]\n\n")
        return response

    async def _send_events(
        self, request: web.Request, payloads: list[bytes], headers: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await response.prepare(request)
        for payload in payloads:
            await response.write(b"data: " + payload + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    def authorized(self, request: web.Request, *, allow_query: bool = False) -> bool:
        """The bearer token, compared in constant time; `allow_query` also takes `?token=`
        (only the event stream: EventSource cannot send headers)."""
        supplied = request.headers.get("Authorization", "")
        if allow_query and not supplied and "token" in request.query:
            supplied = f"Bearer {request.query['token']}"
        expected = f"Bearer {self.token}" if self.token else None
        ok = expected is not None and hmac.compare_digest(supplied.encode(), expected.encode())
        if not ok:
            self.bad_tokens += 1
            log.warning(
                "admin request refused: %s %s from %s (bad or missing token)",
                request.method,
                request.path,
                request.remote,
            )
        return ok

    def state(self) -> dict[str, Any]:
        """What /admin/state and the dashboard show; finite numbers only, no URLs or keys."""
        operator = self.operator
        return {
            "mode": self.config.mode,
            "time": time.time(),
            "groups": operator.decorate(
                model_states(self.routers, self.pools, self.passed), time.monotonic()
            ),
            "pools": {name: [label for label, _ in pool] for name, pool in self.pools.items()},
            "refused_admin_requests": self.bad_tokens,
            "degraded": operator.degraded.to_dict(),
            "run": operator.run(),
            "audit": operator.recent.last(),
            "traffic_window": operator.traffic.window,
        }


class _ClientGone(Exception):
    """Writing to the client failed: it disconnected mid-stream."""


def _degraded_completion(text: str, stream: bool) -> dict[str, Any]:
    if stream:
        return {
            "object": "chat.completion.chunk",
            "model": "degraded",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}],
        }
    return {
        "object": "chat.completion",
        "model": "degraded",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }


async def _write_quietly(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
        await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass


class _Metrics(Collector):
    """Every router's metrics in one exposition, families merged by name."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for router in self.gateway.routers.values():
            for family in router.metrics.collect():
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        yield from merged.values()


def build_app(gateway: Gateway) -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Metrics(gateway))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "mode": gateway.config.mode})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")

    async def models(request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": n, "object": "model"} for n in gateway.pools]}
        )

    app.router.add_post("/v1/chat/completions", gateway.chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    add_admin_routes(app, gateway)
    add_dashboard_routes(app)
    return app


async def serve(config: GatewayConfig, ready_file: Path | None) -> None:
    gateway = Gateway(config)
    await gateway.start()
    runner = web.AppRunner(build_app(gateway), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=2048)
    await site.start()
    # What startup built (modules, config, routers, the app) lives as long as the process: out
    # of the collector's sight, a full collection walks only what requests left behind. One
    # walked it all (~17 M instructions with 5 models) every few thousand requests.
    gc.collect()
    gc.freeze()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]
    announcement = {"url": f"http://{config.host}:{port}", "pid": os.getpid(), "mode": config.mode}
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(announcement))
        tmp.replace(ready_file)
    else:
        print(json.dumps(announcement), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await gateway.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenAI-compatible resilient gateway")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(GatewayConfig.load(args.config), args.ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
