"""Short, time-scaled scenario runs through the whole real chain, judged on recorded data."""

from __future__ import annotations

import json
import statistics

import pytest

from harness.run import Runner
from harness.run.variant import RemoteWorkers
from harness.scenario import load_scenario, parse_scenario
from harness.scenario.timeline import Timeline
from harness.stack import PROJECT_ROOT
from harness.stack.processes import Child, free_port, python_module
from tests.integration.conftest import in_window, read_records

SMOKE = PROJECT_ROOT / "scenarios" / "smoke"


def quiet(line: str) -> None:
    return None


def test_one_model_down_resilient_keeps_serving_while_control_loses_a_third(tmp_path):
    scenario = load_scenario(SMOKE / "one-model-down.yaml").model_copy(update={"time_scale": 0.6})
    result = Runner(tmp_path, progress=quiet).run(scenario)
    resilient, control = result.variants
    for variant in result.variants:
        assert variant.records == variant.locust_total > 0, "every Locust request is recorded"
    assert resilient.summary["all"]["error_rate"] <= 0.001
    control_faults = control.summary["faults"]
    assert 0.2 <= control_faults["error_rate"] <= 0.45, control_faults  # about 1/N with N = 3
    applied = [json.loads(line) for line in (resilient.folder / "timeline.jsonl").read_text().splitlines()]
    assert [(a["action"], a["kind"], a["model"]) for a in applied] == [
        ("start", "down", "model-0"),
        ("stop", "down", "model-0"),
    ]
    start, end = Timeline(scenario.scaled()).windows()[0][1:]
    assert abs(applied[0]["t"] - start) < 0.3 and abs(applied[1]["t"] - end) < 0.3
    served = {r["served_by"] for r in in_window(read_records(resilient.folder), start + 0.5, end)}
    assert "model-0/model-0" not in served
    # Taken out and in the audit trail: by its breaker when requests met it dead first, or by the
    # health checks when a probe did (both happen, by a few milliseconds either way).
    audit = [json.loads(line) for line in (resilient.folder / "audit.jsonl").read_text().splitlines()]
    assert any(
        entry.get("model", "").startswith("model-0") and entry.get("to") in ("open", "unhealthy")
        for entry in audit
    ), audit
    counts = json.loads((resilient.folder / "endpoint_counts.json").read_text())
    assert set(counts) == {"model-0", "model-1", "model-2"}
    # Side by side: one t0 for both, each on a stack of its own, so neither sees the other's
    # requests or faults, and both see the same seconds of the machine.
    metas = [json.loads((v.folder / "run.json").read_text()) for v in result.variants]
    assert metas[0]["t0"] == metas[1]["t0"]
    stacks = [json.loads((result.folder / s / "stack.json").read_text()) for s in ("stack", "stack-control")]
    assert stacks[0]["toxiproxy_url"] != stacks[1]["toxiproxy_url"]
    assert set(stacks[0]["endpoint_urls"].values()).isdisjoint(stacks[1]["endpoint_urls"].values())
    control_counts = json.loads((control.folder / "endpoint_counts.json").read_text())
    served_control = sum(
        sum(sec.values()) for m in control_counts.values() for sec in m["per_second"].values()
    )
    assert 0.5 * control.records < served_control <= control.records, (
        "the control's stack saw the control's load alone"
    )


def test_latency_toxic_shows_in_the_affected_models_latencies(tmp_path):
    scenario = parse_scenario(
        {
            "name": "latency-visible",
            "models": {"count": 2},
            "load": {"rate": 20, "users": 2},
            "phases": {"warmup": 0.5, "baseline": 2, "recovery": 1},
            "faults": [
                {
                    "at": 0,
                    "for": 3,
                    "target": "model-0",
                    "network": {"type": "latency", "attributes": {"latency": 250}},
                }
            ],
        }
    )
    # The passthrough relays every request to model-0; the resilient gateway rightly moves off a
    # model that turned slow, so its records would hold no model-0 latencies during the fault.
    result = Runner(tmp_path, progress=quiet).run(scenario, control=False, mode="passthrough")
    rows = read_records(result.variants[0].folder)
    before = [
        float(r["latency_ms"]) for r in in_window(rows, 0.5, 2.5) if r["served_by"].startswith("model-0")
    ]
    during = [
        float(r["latency_ms"]) for r in in_window(rows, 2.8, 5.5) if r["served_by"].startswith("model-0")
    ]
    assert before and during
    assert max(before) < 200
    assert statistics.median(during) >= 250
    assert sum(1 for ms in during if ms >= 250) >= 0.9 * len(during)  # a request or two may straddle the edge


def test_retry_after_is_honoured_between_attempts(tmp_path):
    scenario = parse_scenario(
        {
            "name": "retry-after",
            "models": {"count": 1},
            "load": {"rate": 20, "users": 2},
            "phases": {"warmup": 0.5, "baseline": 1, "recovery": 0.5},
            "faults": [
                {
                    "at": 0,
                    "for": 3,
                    "target": "model-0",
                    "endpoint": {"error_rate": 0.5, "status": 429, "retry_after": 0.3},
                }
            ],
            "system_under_test": {
                "policies": {
                    "retry": {"attempts": 3, "base": 0.01, "cap": 0.05, "jitter": 0.0},
                    "breaker": {"consecutive_failures": 100, "failure_rate": 1.0, "minimum_calls": 1000},
                }
            },
        }
    )
    result = Runner(tmp_path, progress=quiet).run(scenario, control=False)
    rows = read_records(result.variants[0].folder)
    retried = [r for r in rows if r["attempts"] and int(r["attempts"]) >= 2]
    assert len(retried) >= 5, "a 50 % 429 rate must cause retries"
    # Each retry waited at least Retry-After (0.3 s), though the backoff alone was <= 0.05 s.
    for row in retried:
        assert float(row["latency_ms"]) >= 300 * (int(row["attempts"]) - 1), row


def test_a_cut_stream_is_never_counted_as_a_success(tmp_path):
    scenario = load_scenario(SMOKE / "stream-cut.yaml").model_copy(update={"time_scale": 0.5})
    result = Runner(tmp_path, progress=quiet).run(scenario)
    for variant in result.variants:
        # The breaker opens after two cut streams, within a tick of the fault: judge from when the
        # cut actually took effect at the endpoint, not from the planned start plus a margin.
        applied = [json.loads(line) for line in (variant.folder / "timeline.jsonl").read_text().splitlines()]
        start = next(a["t"] for a in applied if a["action"] == "start") + 0.02
        end = next(a["t"] for a in applied if a["action"] == "stop") - 0.2
        if variant.name == "control":
            rows = in_window(read_records(variant.folder), start, end)
            cut = [r for r in rows if r["served_by"] == "model-0/model-0"]
            assert cut, "control: some streams must reach the cutting model"
            assert all(r["ok"] == "False" and r["error_kind"] == "stream_error" for r in cut)
        else:
            # The gateway holds model-0 at its first cut, so the streams it cut are the few in
            # flight then (they may have started before `start`): the endpoint says which it cut.
            produced = (variant.folder / "answers.jsonl").read_text().splitlines()
            answers = [json.loads(line) for line in produced]
            assert any(a["model"] == "model-0" and a["outcome"] == "stream_cut" for a in answers), (
                "resilient: some streams must reach the cutting model"
            )
            # The gateway splices a continuation into a cut stream: a success only when every word
            # the endpoints produced reached the client, checked against answers.jsonl.
            for r in read_records(variant.folder):
                if r["served_by"] == "model-0/model-0":
                    assert (r["ok"] == "False" and r["error_kind"] == "stream_error") or (
                        r["ok"] == "True" and r["integrity"] == "whole"
                    ), r
    resilient, control = result.variants
    assert resilient.summary["faults"]["error_rate"] < control.summary["faults"]["error_rate"] / 2


@pytest.mark.parametrize("bad", [{"name": "x", "load": {"rate": 0}}])
def test_runner_never_starts_on_an_invalid_scenario(bad, tmp_path):
    from harness.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"load\.rate"):
        parse_scenario(bad)
    assert not any(tmp_path.iterdir())


def test_locust_workers_mode_records_every_request(tmp_path):
    scenario = parse_scenario(
        {
            "name": "workers",
            "models": {"count": 2},
            "load": {"rate": 40, "users": 4},
            "phases": {"warmup": 0.5, "baseline": 1.5, "recovery": 1},
            "faults": [{"at": 0, "for": 1, "target": "model-0", "down": True}],
        }
    )
    result = Runner(tmp_path, progress=quiet, workers=2).run(scenario, control=False)
    variant = result.variants[0]
    locust = json.loads((variant.folder / "locust.json").read_text())
    assert locust["workers"] == 2
    assert variant.records == variant.locust_total == locust["locust_requests"]
    assert variant.records >= 0.9 * 40 * scenario.duration
    users = {row["user"] for row in read_records(variant.folder)}
    assert len(users) == 4, "users ran on both workers"
    assert not list(variant.folder.glob("records.csv.worker*")), "worker files merged into records.csv"


def test_workers_on_other_machines_join_by_address_and_their_records_reach_the_run(tmp_path):
    """`run --remote-workers 2` and two `chaos-harness worker --master HOST:PORT`, each its own
    process standing in for another machine (loopback here): the workers take the target and
    the schedule from the master and send their records back; no folder is shared."""
    scenario = parse_scenario(
        {
            "name": "remote",
            "models": {"count": 2},
            "load": {"rate": 40, "users": 4, "stream_share": 0.5},
            "phases": {"warmup": 0.5, "baseline": 1.5, "recovery": 1},
            "faults": [{"at": 0, "for": 1, "target": "model-0", "down": True}],
        }
    )
    port = free_port()
    for i in range(2):
        (tmp_path / f"machine-{i}").mkdir()
    workers = [
        Child(
            f"worker-{i}",
            python_module("harness", "worker", "--master", f"127.0.0.1:{port}", "--runs", "1"),
            tmp_path / f"worker-{i}.log",
            env={"TMPDIR": str(tmp_path / f"machine-{i}")},  # each its own disk
        )
        for i in range(2)
    ]
    try:
        runner = Runner(tmp_path / "runs", progress=quiet, remote=RemoteWorkers(2, "127.0.0.1", port))
        result = runner.run(scenario, control=False)
        for child in workers:
            child.process.wait(timeout=30)  # `--runs 1`: each leaves by itself once the load is over
    finally:
        for child in workers:
            child.stop()
    assert [child.process.returncode for child in workers] == [0, 0], [c.tail() for c in workers]
    variant = result.variants[0]
    locust = json.loads((variant.folder / "locust.json").read_text())
    assert locust["workers"] == 2 and locust["workers_reported"] == 2
    assert variant.records == variant.locust_total == locust["locust_requests"]
    assert variant.records >= 0.9 * 40 * scenario.duration
    users = {row["user"] for row in read_records(variant.folder)}
    assert len(users) == 4, "users ran on both workers"
    assert "records sent" in (tmp_path / "worker-0.log").read_text()


def test_scripted_admin_steps_isolate_then_restore_and_land_in_the_audit_trail(tmp_path):
    scenario = parse_scenario(
        {
            "name": "drill",
            "models": {"count": 2},
            "load": {"rate": 20, "users": 2},
            "phases": {"warmup": 0.5, "baseline": 1.5, "recovery": 2},
            "admin": [{"at": 0, "for": 2, "action": "isolate", "target": "model-0", "reason": "drill #7"}],
            "system_under_test": {"policies": {"restoration": None}},
        }
    )
    result = Runner(tmp_path, progress=quiet).run(scenario, control=False)
    folder = result.variants[0].folder
    rows = read_records(folder)

    def served(start: float, end: float) -> set[str]:
        return {r["served_by"] for r in in_window(rows, start, end)}

    assert served(0.5, 1.9) == {"model-0/model-0"}
    assert served(2.3, 3.9) == {"model-1/model-1"}, "isolated: no traffic to model-0"
    assert "model-0/model-0" in served(4.4, 6.0), "restored when the step ended"
    audit = [json.loads(line) for line in (folder / "audit.jsonl").read_text().splitlines()]
    actions = [(a["action"], a["who"], a["why"]) for a in audit if a["kind"] == "AdminAction"]
    assert ("isolate", "scenario:drill", "drill #7") in actions
    assert ("restore", "scenario:drill", "end of: drill #7") in actions
    applied = [json.loads(line) for line in (folder / "timeline.jsonl").read_text().splitlines()]
    kinds = [(a["action"], a["kind"]) for a in applied]
    assert kinds == [("start", "admin:isolate"), ("stop", "admin:isolate")]
    assert all(r["ok"] == "True" for r in rows)
