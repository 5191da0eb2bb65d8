import subprocess
import sys

import pytest


def chaos(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("name: x\nload: {rate: -5}\n", "load.rate"),
        ("name: x\nfaults:\n  - {at: 0, for: 2, target: model-7, down: true}\n", "faults[0].target"),
        ("name: x\nfaults:\n  - {at: 0, for: 2, down: true, endpoint: {status: 503}}\n", "faults[0]"),
        ("name: x\nfaults:\n  - {at: 0, for: 2, endpoint: {error_rate: 2, status: 503}}\n", "faults[0]"),
        ("name: x\nbogus: 1\n", "bogus"),
        ("- just\n- a list\n", "a scenario must be a mapping"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_malformed_scenario_exits_2_naming_the_field(tmp_path, content, field, command):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = (
        chaos(command, str(path), "--out", str(tmp_path / "runs"))
        if command == "run"
        else chaos(command, str(path))
    )
    assert result.returncode == 2, result.stderr
    assert field in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_unreachable_toxiproxy_url_is_an_environment_error(tmp_path):
    import os

    path = tmp_path / "ok.yaml"
    path.write_text("name: ok\nphases: {warmup: 0, baseline: 1, recovery: 0}\n")
    result = chaos(
        "run",
        str(path),
        "--out",
        str(tmp_path / "runs"),
        env={**os.environ, "TOXIPROXY_URL": "http://127.0.0.1:9"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "127.0.0.1:9" in result.stderr


def test_list_shows_the_library():
    result = chaos("list")
    assert result.returncode == 0
    for name in ("one-model-down", "latency-spike", "flapping-model", "rate-limit-storm", "stream-cut"):
        assert name in result.stdout
