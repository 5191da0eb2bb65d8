"""The admin API's pieces in process: health words, traffic shares, validation, the state feed,
and an OpenAPI document that matches the routes actually registered."""

from __future__ import annotations

import asyncio
import math

import pytest

from harness.gateway.admin.api import BadField, run_status
from harness.gateway.admin.feed import StateFeed
from harness.gateway.admin.openapi import OPENAPI
from harness.gateway.admin.state import OperatorState, RecentAudit, TrafficWindow, finite, health_of
from harness.gateway.app import Gateway, build_app
from harness.gateway.config import GatewayConfig
from resilience_core import AdminAction, RetryScheduled
from resilience_core.events import CircuitStateChanged


@pytest.mark.parametrize(
    ("model", "health"),
    [
        ({"circuit": "closed", "error_rate": 0.0, "restoration_share": 1.0}, "healthy"),
        ({"circuit": "closed", "error_rate": 0.2, "restoration_share": 1.0}, "degraded"),
        ({"circuit": "closed", "error_rate": 0.6, "restoration_share": 1.0}, "unhealthy"),
        ({"circuit": "open", "error_rate": 0.0}, "unhealthy"),
        ({"circuit": "half_open", "error_rate": 0.0}, "recovering"),
        ({"circuit": "closed", "error_rate": 0.0, "restoration_share": 0.25}, "recovering"),
        ({"circuit": "isolated", "drained": True}, "isolated"),
        ({"circuit": "closed", "drained": True}, "drained"),
        ({"circuit": None}, "unknown"),
    ],
)
def test_health_is_one_word_from_breaker_drain_restoration_and_errors(model, health):
    assert health_of(model) == health


def test_traffic_shares_come_from_calls_over_the_last_seconds():
    window = TrafficWindow(window=3.0)
    window.sample(0.0, {("chat", "a"): 0, ("chat", "b"): 0, ("idle", "c"): 0})
    window.sample(1.0, {("chat", "a"): 10, ("chat", "b"): 0, ("idle", "c"): 0})
    counts = {("chat", "a"): 30, ("chat", "b"): 10, ("idle", "c"): 0}
    rates = window.rates(3.0, counts)
    assert rates[("chat", "a")] == pytest.approx(10.0)
    shares = window.shares(rates)
    assert shares == {("chat", "a"): 0.75, ("chat", "b"): 0.25, ("idle", "c"): 0.0}
    for t in (4.0, 5.0, 6.0, 7.0):
        window.sample(t, counts)
    assert window.rates(7.0, counts)[("chat", "a")] == 0.0  # nothing new within the window


def test_operator_state_adds_rate_share_and_health_with_finite_numbers_only():
    operator = OperatorState()
    operator.traffic.sample(0.0, {("chat", "a"): 0})
    groups = {"chat": [{"model": "a", "calls": 4, "circuit": "closed", "p50": math.nan, "error_rate": 0.0}]}
    decorated = operator.decorate(groups, 2.0)["chat"][0]
    assert (decorated["rate"], decorated["share"], decorated["health"], decorated["p50"]) == (
        2.0,
        1.0,
        "healthy",
        None,
    )
    assert finite({"x": [math.inf, 1.5, {"y": -math.inf}]}) == {"x": [None, 1.5, {"y": None}]}


def test_recent_audit_keeps_audited_events_bounded_with_their_group():
    recent = RecentAudit(size=2, wall_clock=lambda: 100.0)
    assert not recent.add(RetryScheduled(1.0, "a", 1, 0.1, "500"), "chat")
    for n in range(3):
        assert recent.add(AdminAction(float(n), "a", "isolate", "alice", f"why {n}"), "chat")
    recent.add(CircuitStateChanged(5.0, "a", "closed", "isolated", "by alice"), "chat")
    last = recent.last()
    assert [r["kind"] for r in last] == ["AdminAction", "CircuitStateChanged"]
    assert last[0]["why"] == "why 2" and last[0]["group"] == "chat" and last[0]["time"] == 100.0
    assert (last[1]["from"], last[1]["to"]) == ("closed", "isolated")


def test_run_status_keeps_known_fields_and_names_a_bad_one():
    status = run_status(
        {
            "scenario": "s",
            "phase": "fault",
            "elapsed": 3,
            "duration": 9.5,
            "faults": [{"model": "m", "kind": "down", "fault": 0, "extra": 1}],
            "secret": "dropped",
        }
    )
    assert status == {
        "scenario": "s",
        "variant": "",
        "phase": "fault",
        "elapsed": 3.0,
        "duration": 9.5,
        "faults": [{"model": "m", "kind": "down", "fault": 0}],
    }
    with pytest.raises(BadField) as bad:
        run_status({"scenario": "s", "phase": "p", "elapsed": 1, "duration": 1, "faults": [{"model": "m"}]})
    assert bad.value.field == "faults[0].fault"
    with pytest.raises(BadField) as bad:
        run_status({"scenario": "s", "phase": "p", "elapsed": math.nan, "duration": 1})
    assert bad.value.field == "elapsed"


def test_the_feed_pushes_soon_after_a_poke_and_ends_streams_on_close():
    async def scenario() -> tuple[list[int], float]:
        counter = {"n": 0}

        def build() -> dict[str, int]:
            counter["n"] += 1
            return {"n": counter["n"]}

        feed = StateFeed(build, lambda: None, interval=30.0, min_gap=0.01)
        task = asyncio.create_task(feed.run())
        seen: list[int] = []
        second = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def follow() -> None:
            async for payload in feed.follow():
                seen.append(int(payload.split(":")[1].rstrip("}")))
                if len(seen) == 2:
                    second.set()

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        started = loop.time()
        feed.poke()
        await asyncio.wait_for(second.wait(), 5.0)
        took = loop.time() - started
        await feed.close()
        await asyncio.wait_for(follower, 1.0)
        await asyncio.wait_for(task, 1.0)
        assert feed.listeners == 0
        return seen, took

    seen, took = asyncio.run(scenario())
    assert seen[:2] == [1, 2]
    assert took < 1.0  # the interval is 30 s: only the poke can explain it


def test_openapi_describes_exactly_the_admin_routes_registered():
    config = GatewayConfig.model_validate(
        {"providers": [{"name": "p", "base_url": "http://127.0.0.1:9/v1"}], "admin_token": "t"}
    )
    app = build_app(Gateway(config))
    registered = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/admin") and route.method != "HEAD":
            registered.add(path)
    actions = {f"/admin/models/{{name}}/{a}" for a in ("isolate", "drain", "restore", "weight")}
    assert registered == (set(OPENAPI["paths"]) - actions) | {"/admin/models/{name}/{action}"}
    for path, item in OPENAPI["paths"].items():
        for operation in item.values():
            assert "401" in operation["responses"], path
