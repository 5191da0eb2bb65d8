"""The gateway's admin API and CLI on a real stack: endpoints, Toxiproxy and the gateway process."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from harness.cli.admin import admin
from harness.gateway.launch import GROUP, gateway_config
from harness.pytest_plugin import ChaosStack as Stack
from harness.run import GatewayProcess
from harness.stack import start_stack
from harness.stack.processes import Child, free_port, python_module, read_ready_file, wait_until
from resilience_core import read_audit

TOKEN = os.environ.get("CHAOS_ADMIN_TOKEN") or "test-admin-token"
"""The gateway takes CHAOS_ADMIN_TOKEN over its config, so a developer's own value must win here too."""
WRONG = "wrong-token-9f3b"
ANSWER = "Degraded: the assistant is resting."
API_KEY = "sk-upstream-secret-7c1e"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("admin")
    running = start_stack(3, folder)
    gateway = None
    try:
        # No active health checks here: they probe every model not isolated, a drained one too
        # (so a restore knows its health), and these tests count what user traffic reached each
        # endpoint. The checks have their own tests (test_gateway_defaults.py).
        policies = {"degraded_answer": ANSWER, "health": None}
        config = gateway_config(running, "resilient", policies, folder / "audit.jsonl", plan="weighted")
        config["admin_token"] = TOKEN
        for provider in config["providers"]:
            provider["api_key"] = API_KEY
        gateway = GatewayProcess.start(config, folder)
        yield Stack(running, gateway)
    finally:
        if gateway is not None:
            gateway.stop()
        running.stop()


@pytest.fixture(scope="module")
def audit_path(stack: Stack) -> Path:
    return stack.gateway.folder / "audit.jsonl"


def call(stack: Stack, method: str, path: str, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    headers |= kwargs.pop("headers", {})
    return requests.request(method, f"{stack.gateway_url}{path}", headers=headers, timeout=10, **kwargs)


def state(stack: Stack) -> dict[str, Any]:
    response = call(stack, "GET", "/admin/state")
    assert response.status_code == 200
    return dict(response.json())


def model(snapshot: dict[str, Any], label: str, group: str = GROUP) -> dict[str, Any]:
    return next(m for m in snapshot["groups"][group] if m["model"] == label)


def chat(stack: Stack, count: int, **extra: Any) -> list[requests.Response]:
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}], **extra}
    return [
        requests.post(f"{stack.gateway_url}/v1/chat/completions", json=body, timeout=10) for _ in range(count)
    ]


def received(stack: Stack) -> dict[str, int]:
    """What each endpoint received since its counts were last reset."""
    return {
        name: sum(sum(c.values()) for c in counts["per_second"].values())
        for name, counts in stack.endpoint_counts().items()
    }


def controls(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The parts of the state an admin request could change, but for its audit lines."""
    models = {
        (group, m["model"]): (m["circuit"], m["drained"], m["weight"])
        for group, ms in snapshot["groups"].items()
        for m in ms
    }
    run = {k: v for k, v in (snapshot["run"] or {}).items() if k != "age"}
    return {"models": models, "degraded": snapshot["degraded"], "run": run}


def admin_actions(snapshot: dict[str, Any]) -> set[tuple[Any, ...]]:
    records = [r for r in snapshot["audit"] if r["kind"] == "AdminAction"]
    return {(r["time"], r["action"], r["model"], r["group"]) for r in records}


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Nothing an admin request could change did. The state shows the latest audit lines only,
    so an older action may leave the window as other lines arrive (a restoration step a test
    before started): a new action is what must not be there."""
    assert controls(after) == controls(before)
    assert not admin_actions(after) - admin_actions(before), "a refused request left an admin action"


ADMIN_REQUESTS = [
    ("POST", "/admin/models/model-0/isolate", {"reason": "r"}),
    ("POST", "/admin/models/model-0%2Fmodel-0/drain", {"reason": "r"}),
    ("POST", "/admin/models/model-0/restore", {"reason": "r"}),
    ("POST", "/admin/models/model-0/weight", {"weight": 0.1, "reason": "r"}),
    ("POST", "/admin/degraded", {"enabled": True, "reason": "r"}),
    ("POST", "/admin/run-status", {"scenario": "s", "phase": "p", "elapsed": 1, "duration": 2}),
    ("GET", "/admin/state", None),
    ("GET", "/admin/events", None),
    ("GET", "/admin/openapi.json", None),
]


def test_every_admin_endpoint_refuses_a_missing_or_wrong_token_and_changes_nothing(stack):
    before = state(stack)
    refused = 0
    for method, path, body in ADMIN_REQUESTS:
        for token in (None, WRONG, TOKEN + "x", ""):
            response = call(stack, method, path, token=token, json=body)
            refused += 1
            assert response.status_code == 401, (method, path, token)
            assert response.json()["error"]["type"] == "authentication_error"
            assert WRONG not in response.text and TOKEN not in response.text
    # The event stream also takes ?token= (EventSource cannot send headers), checked the same way.
    assert call(stack, "GET", f"/admin/events?token={WRONG}", token=None).status_code == 401
    assert call(stack, "GET", f"/admin/state?token={TOKEN}", token=None).status_code == 401
    refused += 2
    after = state(stack)
    assert_unchanged(before, after)
    shown = call(stack, "GET", "/admin/state").text + call(stack, "GET", "/admin/openapi.json").text
    assert API_KEY not in shown and TOKEN not in shown
    assert not any(url.split("//")[1] in shown for url in stack.proxy_urls.values())
    assert after["refused_admin_requests"] - before["refused_admin_requests"] == refused
    assert chat(stack, 1)[0].headers["x-degraded"] == "false"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/models/model-0/isolate", {}, "reason"),
        ("/admin/models/model-0/drain", {"reason": "   "}, "reason"),
        ("/admin/models/model-0/restore", {"reason": 7}, "reason"),
        ("/admin/models/model-0/weight", {"reason": "r"}, "weight"),
        ("/admin/models/model-0/weight", {"reason": "r", "weight": -1}, "weight"),
        ("/admin/models/model-0/weight", {"weight": 0.5}, "reason"),
        ("/admin/degraded", {"reason": "r"}, "enabled"),
        ("/admin/degraded", {"enabled": True}, "reason"),
        ("/admin/run-status", {"scenario": "s", "elapsed": 1, "duration": 2}, "phase"),
        ("/admin/run-status", {"scenario": "s", "phase": "p", "elapsed": "x", "duration": 2}, "elapsed"),
        (
            "/admin/run-status",
            {"scenario": "s", "phase": "p", "elapsed": 1, "duration": 2, "faults": [{}]},
            None,
        ),
        ("/admin/models/model-9/isolate", {"reason": "r"}, "name"),
    ],
)
def test_bad_admin_requests_are_refused_naming_the_field(stack, path, body, field):
    before = state(stack)
    response = call(stack, "POST", path, json=body)
    assert response.status_code == (404 if field == "name" else 400)
    error = response.json()["error"]
    if field is not None:
        assert error["param"] == field
        assert (field if field != "name" else "model-9") in error["message"]
    assert_unchanged(before, state(stack))


def test_a_body_that_is_not_json_is_a_400_and_one_not_declared_json_a_415(stack):
    json_type = {"Content-Type": "application/json"}
    response = call(stack, "POST", "/admin/models/model-0/isolate", data=b"{nope", headers=json_type)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "body"
    # A browser's cross-origin "simple" POST cannot carry a JSON type: refused before any route.
    plain = call(stack, "POST", "/admin/models/model-0/isolate", data=b'{"reason": "x"}')
    assert plain.status_code == 415 and plain.json()["error"]["param"] == "Content-Type"


def test_isolate_stops_traffic_to_the_model_and_restore_undoes_it_all_audited(stack, audit_path):
    chat(stack, 20)
    answer = call(
        stack, "POST", "/admin/models/model-1/isolate", json={"reason": "incident 42", "who": "alice"}
    ).json()
    assert {(a["group"], a["model"]) for a in answer["applied"]} == {
        (GROUP, "model-1/model-1"),
        ("model-1", "model-1/model-1"),
    }
    snapshot = state(stack)
    assert model(snapshot, "model-1/model-1")["circuit"] == "isolated"
    assert model(snapshot, "model-1/model-1")["health"] == "isolated"
    assert model(snapshot, "model-1/model-1", group="model-1")["circuit"] == "isolated"
    stack.reset_endpoint_counts()
    responses = chat(stack, 30)
    assert all(r.status_code == 200 for r in responses)
    counts = received(stack)
    assert counts["model-1"] == 0
    assert counts["model-0"] + counts["model-2"] >= 30

    records = read_audit(audit_path)
    isolations = [r for r in records if r["kind"] == "AdminAction" and r["action"] == "isolate"]
    assert isolations and isolations[-1]["who"] == "alice" and isolations[-1]["why"] == "incident 42"
    assert isolations[-1]["model"] == "model-1/model-1"
    recent = [r for r in snapshot["audit"] if r.get("action") == "isolate" and r["group"] == GROUP]
    assert recent[-1]["who"] == "alice"

    assert call(stack, "POST", "/admin/models/model-1%2Fmodel-1/restore", json={"reason": "fixed"}).ok
    restored = model(state(stack), "model-1/model-1")
    assert restored["circuit"] == "closed" and not restored["drained"]
    last = read_audit(audit_path)[-4:]
    assert any(r.get("action") == "restore" and r["who"] == "admin" for r in last)  # who defaults


def test_drain_and_weight_show_in_the_state_and_the_audit(stack, audit_path):
    assert call(stack, "POST", "/admin/models/model-2/drain", json={"reason": "maintenance"}).ok
    assert model(state(stack), "model-2/model-2")["health"] == "drained"
    stack.reset_endpoint_counts()
    chat(stack, 20)
    assert received(stack)["model-2"] == 0
    assert call(stack, "POST", "/admin/models/model-2/restore", json={"reason": "done"}).ok

    body = {"weight": 0.25, "reason": "cost", "who": "bob"}
    assert call(stack, "POST", "/admin/models/model-0%2Fmodel-0/weight", json=body).ok
    snapshot = state(stack)
    assert model(snapshot, "model-0/model-0")["weight"] == 0.25
    assert model(snapshot, "model-0/model-0", group="model-0")["weight"] == 0.25
    records = read_audit(audit_path)
    changed = [r for r in records if r["kind"] == "WeightChanged" and r["model"] == "model-0/model-0"]
    assert changed[-1]["to"] == 0.25
    action = [r for r in records if r.get("action") == "set_weight"][-1]
    assert (action["who"], action["why"], action["details"]) == ("bob", "cost", {"weight": 0.25})
    assert call(stack, "POST", "/admin/models/model-0/weight", json={"weight": 1, "reason": "back"}).ok


def test_degraded_mode_answers_without_calling_any_model(stack, audit_path):
    on = call(stack, "POST", "/admin/degraded", json={"enabled": True, "reason": "provider outage"})
    assert on.ok and on.json()["degraded"]["enabled"]
    try:
        stack.reset_endpoint_counts()
        plain = chat(stack, 5)
        streamed = chat(stack, 1, stream=True)[0]
        assert all(r.status_code == 200 and r.headers["x-degraded"] == "true" for r in plain)
        assert plain[0].json()["choices"][0]["message"]["content"] == ANSWER
        assert streamed.headers["x-degraded"] == "true"
        assert ANSWER in streamed.text and "[DONE]" in streamed.text
        assert sum(received(stack).values()) == 0
        snapshot = state(stack)
        assert snapshot["degraded"]["enabled"] and snapshot["degraded"]["reason"] == "provider outage"
    finally:
        off = call(
            stack, "POST", "/admin/degraded", json={"enabled": False, "reason": "over", "who": "carol"}
        )
    assert off.ok
    assert chat(stack, 1)[0].headers["x-degraded"] == "false"
    actions = [r for r in read_audit(audit_path) if r["kind"] == "AdminAction"]
    assert [a["action"] for a in actions[-2:]] == ["degraded_on", "degraded_off"]
    assert actions[-1]["who"] == "carol" and actions[-1]["model"] is None


def test_run_status_shows_in_the_state(stack):
    status = {
        "scenario": "one-model-down",
        "variant": "resilient",
        "phase": "fault",
        "elapsed": 12.5,
        "duration": 40.0,
        "faults": [{"model": "model-0", "kind": "down", "fault": 0}],
    }
    assert call(stack, "POST", "/admin/run-status", json=status).ok
    run = state(stack)["run"]
    assert {k: run[k] for k in status} == status
    assert 0 <= run["age"] < 5


def events(response: requests.Response) -> Iterator[dict[str, Any]]:
    """The JSON states of a server-sent event stream, as they arrive."""
    buffer = b""
    for chunk in response.iter_content(chunk_size=None):
        buffer += chunk
        while b"\n\n" in buffer:
            message, buffer = buffer.split(b"\n\n", 1)
            data = [line[6:] for line in message.split(b"\n") if line.startswith(b"data: ")]
            if data:
                yield json.loads(b"\n".join(data))


@pytest.mark.parametrize("how", ["header", "query"])
def test_the_event_stream_pushes_the_state_and_promptly_after_an_action(stack, how):
    if how == "header":
        response = call(stack, "GET", "/admin/events", stream=True)
    else:
        response = call(stack, "GET", f"/admin/events?token={TOKEN}", token=None, stream=True)
    with response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        stream = events(response)
        first = next(stream)
        assert set(first) >= {"groups", "degraded", "audit", "run", "mode"}
        weight = 0.5 if how == "header" else 0.75
        acted = time.monotonic()
        body = {"weight": weight, "reason": "stream test"}
        assert call(stack, "POST", "/admin/models/model-2/weight", json=body).ok
        for pushed in stream:
            if model(pushed, "model-2/model-2")["weight"] == weight:
                break
            assert time.monotonic() - acted < 5, "the change never arrived"
        assert time.monotonic() - acted < 1.5
    assert call(stack, "POST", "/admin/models/model-2/weight", json={"weight": 1, "reason": "back"}).ok


def test_openapi_document_describes_every_admin_route(stack):
    document = call(stack, "GET", "/admin/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/admin/state",
        "/admin/events",
        "/admin/models/{name}/isolate",
        "/admin/models/{name}/drain",
        "/admin/models/{name}/restore",
        "/admin/models/{name}/weight",
        "/admin/degraded",
        "/admin/run-status",
        "/admin/openapi.json",
    }


def test_the_dashboard_is_served_from_the_package_with_nothing_external(stack):
    page = requests.get(f"{stack.gateway_url}/dashboard", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    for asset in ("dashboard.js", "dashboard.css"):
        response = requests.get(f"{stack.gateway_url}/dashboard/{asset}", timeout=5)
        assert response.status_code == 200
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", response.text), asset
    assert not re.search(r"https?://", page.text)
    assert requests.get(f"{stack.gateway_url}/dashboard/secrets.txt", timeout=5).status_code == 404


def invoke(stack: Stack, *args: str, token: str = TOKEN, url: str | None = None) -> Any:
    env = {"CHAOS_GATEWAY_URL": url or stack.gateway_url or "", "CHAOS_ADMIN_TOKEN": token}
    return CliRunner().invoke(admin, list(args), env=env)


def test_the_admin_cli_drives_the_real_gateway(stack, audit_path):
    shown = invoke(stack, "state")
    assert shown.exit_code == 0, shown.output
    assert "model-0/model-0" in shown.output and "degraded mode: off" in shown.output
    assert json.loads(invoke(stack, "state", "--json").output)["mode"] == "resilient"

    done = invoke(stack, "isolate", "model-2", "--reason", "cli test", "--who", "dave")
    assert done.exit_code == 0, done.output
    assert model(state(stack), "model-2/model-2")["circuit"] == "isolated"
    assert invoke(stack, "restore", "model-2/model-2", "--reason", "cli test").exit_code == 0
    assert model(state(stack), "model-2/model-2")["circuit"] == "closed"
    assert invoke(stack, "drain", "model-2", "--reason", "cli").exit_code == 0
    assert model(state(stack), "model-2/model-2")["drained"]
    assert invoke(stack, "restore", "model-2", "--reason", "cli").exit_code == 0
    assert invoke(stack, "weight", "model-2", "0.6", "--reason", "cli").exit_code == 0
    assert model(state(stack), "model-2/model-2")["weight"] == 0.6
    assert invoke(stack, "weight", "model-2", "1", "--reason", "cli").exit_code == 0
    assert invoke(stack, "degraded", "on", "--reason", "cli").exit_code == 0
    assert state(stack)["degraded"]["enabled"]
    assert invoke(stack, "degraded", "off", "--reason", "cli").exit_code == 0
    assert not state(stack)["degraded"]["enabled"]
    assert any(r.get("who") == "dave" and r.get("why") == "cli test" for r in read_audit(audit_path))


@pytest.mark.parametrize(
    ("args", "token", "where", "says"),
    [
        (["isolate", "model-0", "--reason", "x"], WRONG, None, "401"),
        (["isolate", "model-9", "--reason", "x"], TOKEN, None, "404"),
        (["weight", "model-0", "-1", "--reason", "x"], TOKEN, None, "-1"),
        (["state"], TOKEN, "dead", "cannot reach"),
        (["isolate", "model-0"], TOKEN, None, "--reason"),
    ],
)
def test_the_admin_cli_exits_2_with_one_line_when_refused(stack, args, token, where, says):
    before = state(stack)
    url = f"http://127.0.0.1:{free_port()}" if where == "dead" else None
    result = invoke(stack, *args, token=token, url=url)
    assert result.exit_code == 2
    assert says in result.output
    if says in ("401", "404", "cannot reach"):
        assert len(result.output.strip().splitlines()) == 1
    assert WRONG not in result.output
    assert_unchanged(before, state(stack))


def test_a_passthrough_gateway_counts_traffic_and_stops_promptly_with_a_stream_open(stack, tmp_path):
    config = gateway_config(stack, "passthrough")
    config["admin_token"] = TOKEN
    path = tmp_path / "passthrough.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    ready = tmp_path / "ready.json"
    child = Child(
        "passthrough-gateway",
        python_module("harness.gateway", "--config", str(path), "--ready-file", str(ready)),
        tmp_path / "gateway.log",
    )
    try:
        url = wait_until(lambda: read_ready_file(ready), timeout=20, child=child)["url"]
        body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(6):
            assert requests.post(f"{url}/v1/chat/completions", json=body, timeout=10).ok
        headers = {"Authorization": f"Bearer {TOKEN}"}
        refused = requests.post(f"{url}/admin/models/model-0/isolate", json={"reason": "r"}, headers=headers)
        assert refused.status_code == 404 and "passthrough" in refused.json()["error"]["message"]
        with requests.get(f"{url}/admin/events", headers=headers, stream=True, timeout=10) as response:
            pushed = next(events(response))
            assert pushed["mode"] == "passthrough"
            assert sum(m["calls"] for m in pushed["groups"][GROUP]) == 6
            assert {m["health"] for m in pushed["groups"][GROUP]} == {"unknown"}
            started = time.monotonic()
            child.stop()
            assert time.monotonic() - started < 3.0
            assert child.process.returncode == 0
    finally:
        child.stop()
