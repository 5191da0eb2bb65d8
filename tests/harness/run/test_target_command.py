"""`--target-cmd`: placeholders checked before anything starts, a real process started with them
filled in, judged ready when its port accepts connections, and stopped by its PID."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from harness.conformance import load
from harness.conformance.runner import FALLBACK, peer_config
from harness.run.target_command import TargetCommand, TargetCommandError
from harness.stack import EnvironmentProblem
from harness.stack.peer_configs import EMITTERS

DESCRIBED = {
    "models": ["model-0", "model-1"],
    "base_urls": {"model-0": "http://127.0.0.1:1001/v1", "model-1": "http://127.0.0.1:1002/v1"},
}
SERVER = f"{sys.executable} -m http.server {{port}} --bind 127.0.0.1"
"""A real process that listens where it is told: Python's own static file server."""
LISTENER = (
    f"{sys.executable} -c 'import socket, sys, time; s = socket.socket(); "
    f's.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)\''
)
"""One that only listens, and takes any further arguments."""


@pytest.mark.parametrize(
    ("line", "url", "says"),
    [
        ("gw --port {port} --x {nope}", None, "unknown placeholder {nope}"),
        ("gw --port 4000", None, "put {port} where"),
        ("", None, "empty"),
        ("gw --config 'unclosed", None, "No closing quotation"),
        ("gw --config {litellm", None, "expected '}'"),
    ],
)
def test_a_command_that_cannot_be_filled_in_names_why(line, url, says):
    with pytest.raises(TargetCommandError) as raised:
        TargetCommand(line, url=url)
    assert says in str(raised.value)


def test_a_command_without_a_port_runs_when_its_address_is_given():
    command = TargetCommand("gw --port 4000", url="http://127.0.0.1:4000")
    assert command.placeholders() == set()
    both = TargetCommand("gw --port {port} --config {litellm} {{literal}}")
    assert both.placeholders() == {"port", "litellm"}


def test_the_command_starts_with_its_placeholders_filled_and_stops_by_its_pid(tmp_path):
    line = f"{SERVER} --directory {{stack}}.dir"
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "stack.json.dir").mkdir()
    asked: list[str] = []
    started = TargetCommand(line).start(DESCRIBED, tmp_path / "target", lambda name: asked.append(name) or "")
    try:
        assert started.child.alive() and started.url.startswith("http://127.0.0.1:")
        assert started.child.argv[-1] == str(tmp_path / "target" / "stack.json.dir")
        assert json.loads((tmp_path / "target" / "stack.json").read_text()) == DESCRIBED
        assert asked == []  # no config placeholder, none written
    finally:
        started.stop()
    assert started.child.process.returncode is not None


def test_a_config_placeholder_writes_that_gateways_config_for_the_stack(tmp_path):
    line = f"{LISTENER} {{port}} {{litellm}}"
    started = TargetCommand(line).start(
        DESCRIBED, tmp_path, lambda name: EMITTERS[name].render(DESCRIBED, "chat")
    )
    try:
        written = Path(started.child.argv[-1])
        config = yaml.safe_load(written.read_text())
        assert [d["litellm_params"]["api_base"] for d in config["model_list"]] == list(
            DESCRIBED["base_urls"].values()
        )
    finally:
        started.stop()


def test_a_command_that_exits_before_listening_fails_with_its_last_words(tmp_path):
    line = f"{sys.executable} -c 'import sys; print(\"no licence key\"); sys.exit(3)' {{port}}"
    with pytest.raises(EnvironmentProblem, match=r"exited \(3\).*no licence key"):
        TargetCommand(line, ready_timeout=20).start(DESCRIBED, tmp_path, lambda name: "")


def test_the_conformance_config_routes_each_case_to_the_primary_and_the_fallback_to_the_secondary():
    catalogue = load("full")
    config = yaml.safe_load(peer_config(catalogue, DESCRIBED)("litellm"))
    routes = {d["model_name"]: d["litellm_params"] for d in config["model_list"]}
    assert set(routes) == {case.model for case in catalogue.cases} | {FALLBACK}
    assert routes[FALLBACK]["api_base"] == DESCRIBED["base_urls"]["model-1"]
    case = catalogue.cases[0].model
    assert routes[case]["api_base"] == DESCRIBED["base_urls"]["model-0"]
    assert routes[case]["model"] == f"openai/{case}"  # the endpoint's log knows the case by it


def test_a_header_placeholder_sends_the_portkey_config_written_for_the_stack(tmp_path):
    """Portkey reads its routing from each request: `@{portkey}` in a header makes the command's
    run write the config for this scenario's stack and send it, one line, with every request."""
    command = TargetCommand(f"{LISTENER} {{port}}", headers=(("x-portkey-config", "@{portkey}"),))
    assert command.placeholders() == {"port", "portkey"}
    started = command.start(DESCRIBED, tmp_path, lambda name: EMITTERS[name].render(DESCRIBED, "chat"))
    try:
        ((name, value),) = started.headers
        config = json.loads(value)
        assert name == "x-portkey-config" and (tmp_path / "portkey-config.json").exists()
        assert config["strategy"] == {"mode": "fallback"}
        assert [t["custom_host"] for t in config["targets"]] == [
            DESCRIBED["base_urls"][m] for m in DESCRIBED["models"]
        ]
        assert [t["override_params"]["model"] for t in config["targets"]] == DESCRIBED["models"]
        assert config["targets"][0]["retry"]["attempts"] == 2  # the primary only, as failoverbench
        assert all("retry" not in target for target in config["targets"][1:])
    finally:
        started.stop()
