import json

import pytest

from resilience_core import (
    AdminControls,
    AuditTrail,
    CircuitState,
    ModelRouter,
    ModelSpec,
    NoCandidateError,
    RecoveryService,
    RouterConfig,
    UnknownModelError,
    read_audit,
)
from tests.conftest import Scripted, run_on


def make_router(clock, tmp_path):
    a = Scripted(clock, ["a"], "a")
    b = Scripted(clock, ["b"], "b")
    router = ModelRouter(
        [ModelSpec("a", a), ModelSpec("b", b, priority=1)],
        RouterConfig(restoration=None),
        clock=clock,
    )
    trail = AuditTrail(tmp_path / "audit.jsonl", wall_clock=lambda: 1700000000.0)
    trail.attach(router.events)
    return router, trail


def test_isolate_sends_all_traffic_elsewhere_and_is_audited(clock, tmp_path):
    router, trail = make_router(clock, tmp_path)
    AdminControls(router).isolate("a", who="alice", why="incident 42")
    assert run_on(clock, lambda: router.call({})).model == "b"
    records = read_audit(trail.path)
    assert records[0] == {
        "time": 1700000000.0,
        "at": 0.0,
        "kind": "AdminAction",
        "model": "a",
        "action": "isolate",
        "who": "alice",
        "why": "incident 42",
        "details": {},
    }
    assert (records[1]["from"], records[1]["to"]) == ("closed", "isolated")


def test_drain_and_restore(clock, tmp_path):
    router, _ = make_router(clock, tmp_path)
    admin = RecoveryService(router)
    admin.drain("a", who="bob", why="maintenance")
    admin.drain("b", who="bob", why="maintenance")
    outcome = run_on(clock, lambda: router.execute({}))
    assert isinstance(outcome.error, NoCandidateError)
    admin.restore("a", who="bob", why="done")
    assert run_on(clock, lambda: router.call({})).model == "a"
    assert router.models["a"].breaker.state is CircuitState.CLOSED


def test_set_weight_zero_takes_a_model_out_of_rotation(clock, tmp_path):
    router, trail = make_router(clock, tmp_path)
    AdminControls(router).set_weight("a", 0.0, who="carol", why="cost cap")
    assert run_on(clock, lambda: router.call({})).model == "b"
    weight_change = next(r for r in read_audit(trail.path) if r["kind"] == "WeightChanged")
    assert (weight_change["from"], weight_change["to"]) == (1.0, 0.0)


def test_admin_actions_need_a_reason_and_a_known_model(clock, tmp_path):
    router, _ = make_router(clock, tmp_path)
    admin = AdminControls(router)
    with pytest.raises(ValueError, match="reason"):
        admin.isolate("a", who="x", why="  ")
    with pytest.raises(UnknownModelError):
        admin.isolate("nope", who="x", why="y")
    assert router.models["a"].breaker.state is CircuitState.CLOSED


def test_audit_lines_are_on_disk_before_close(clock, tmp_path):
    router, _trail = make_router(clock, tmp_path)
    AdminControls(router).isolate("a", who="x", why="y")
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()  # no close(), no flush() by us
    assert len(lines) == 2 and json.loads(lines[0])["kind"] == "AdminAction"
