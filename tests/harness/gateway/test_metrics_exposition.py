"""/metrics follows Prometheus' conventions (tests/promlint.py, like promtool), checked on the
gateway's real exposition with two groups sharing a model, and the checker itself bites."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from harness.gateway.metrics import add_metrics_route
from resilience_core import ModelRouter, ModelSpec, RouterConfig
from tests.promlint import problems


async def ok(request):
    return {"content": "hi"}


def exposition() -> str:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    async def main() -> str:
        spec = [ModelSpec("model-0", ok), ModelSpec("model-1", ok, priority=1)]
        routers = {"chat": ModelRouter(spec, RouterConfig()), "other": ModelRouter(spec, RouterConfig())}
        for router in routers.values():
            await router.call({})
        app = web.Application()
        requests = add_metrics_route(app, lambda: routers, lambda: {"chat": {"model-0": "healthy"}})
        requests.observe("chat", 200, 0.03)
        requests.observe("chat", 503, 1.2)
        requests.observe("made-up-by-a-client", 404, 0.001)
        async with TestClient(TestServer(app)) as client:
            return await (await client.get("/metrics")).text()

    return asyncio.run(main())


def test_the_gateways_metrics_follow_the_conventions():
    text = exposition()
    assert problems(text) == []
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["model_latency_seconds"].type == "summary"
    assert families["gateway_request_duration_seconds"].type == "histogram"
    assert {"model_error_ratio", "model_availability_ratio", "gateway_requests", "model_calls"} <= set(
        families
    )
    calls = [s for s in families["model_calls"].samples if s.name == "model_calls_total"]
    assert {s.labels["group"] for s in calls} == {"chat", "other"}  # one model, two groups, no collision
    codes = {
        (s.labels["group"], s.labels["code"])
        for s in families["gateway_requests"].samples
        if s.name.endswith("_total")
    }
    assert codes == {("chat", "200"), ("chat", "503"), ("unknown", "404")}


def test_the_checker_flags_what_promtool_would():
    bad = "\n".join(
        [
            "# HELP x_error_rate errors",
            "# TYPE x_error_rate gauge",
            'x_error_rate{model="a"} 0.1',
            'x_error_rate{model="a"} 0.2',
            "# HELP x_latency_ms latency",
            "# TYPE x_latency_ms gauge",
            'x_latency_ms{quantile="0.5"} 3',
            "# HELP x_calls calls",
            "# TYPE x_calls counter",
            "x_calls 1",
            "",
        ]
    )
    found = problems(bad)
    assert any("duplicated series" in p for p in found)
    assert any("_ratio" in p for p in found)
    assert any("base units" in p for p in found)
    assert any("quantiles belong to a summary" in p for p in found)
