"""`GET /metrics`: every router's metrics in one Prometheus exposition, each series labelled with
its group (one model may serve several groups: without the label their series collide), plus the
gateway's own request counter and latency histogram."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from aiohttp import web
from prometheus_client import Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from resilience_core import ModelRouter

REQUEST_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Seconds, for whole answers (a stream counts until its end): a model call is tens of ms to
minutes, so the buckets span both."""
UNKNOWN_GROUP = "unknown"
"""The `group` label of requests for no known group: a client-chosen name must not make series."""


class RequestMetrics:
    """Requests the gateway answered, by group and status code, and how long each took."""

    def __init__(self, registry: CollectorRegistry, groups: Callable[[], Mapping[str, object]]) -> None:
        self.groups = groups
        self.requests = Counter(
            "gateway_requests", "Chat requests answered, by status code", ["group", "code"], registry=registry
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time to a whole answer (a stream: to its end)",
            ["group"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        """Each label pair's series, found once: `labels()` costs twice the counting itself
        (3.2 against 1.2 µs a request, measured). No more pairs than the metrics keep anyway."""

    def observe(self, group: str, code: int, seconds: float) -> None:
        label = group if group in self.groups() else UNKNOWN_GROUP
        children = self._children.get((label, code))
        if children is None:
            children = (self.requests.labels(label, str(code)), self.duration.labels(label))
            self._children[(label, code)] = children
        children[0].inc()
        children[1].observe(seconds)


class RouterMetrics(Collector):
    """Reads the routers when scraped: nothing is counted twice on the request path."""

    def __init__(
        self,
        routers: Callable[[], Mapping[str, ModelRouter]],
        health: Callable[[], Mapping[str, Mapping[str, str]]] = dict,
    ) -> None:
        self.routers = routers
        self.health = health

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for group, router in self.routers().items():
            for family in router.metrics.collect():
                target = merged.get(family.name)
                if target is None:
                    target = merged[family.name] = Metric(family.name, family.documentation, family.type)
                target.samples.extend(
                    sample._replace(labels={"group": group, **sample.labels}) for sample in family.samples
                )
        yield from merged.values()
        health = GaugeMetricFamily(
            "gateway_model_health",
            "1 for each model's health status from active checks",
            labels=["group", "model", "status"],
        )
        for group, statuses in self.health().items():
            for model, status in statuses.items():
                health.add_metric([group, model, status], 1.0)
        yield health


def add_metrics_route(
    app: web.Application,
    routers: Callable[[], Mapping[str, ModelRouter]],
    health: Callable[[], Mapping[str, Mapping[str, str]]] = dict,
) -> RequestMetrics:
    """Serve /metrics; the returned RequestMetrics is what the chat route reports to."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RouterMetrics(routers, health))
    requests = RequestMetrics(registry, routers)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")

    app.router.add_get("/metrics", metrics)
    return requests
