"""The docker backend without a Docker engine: one clear line when none is reachable, and (with a
fake SDK client) labelled containers on loopback-only ports that are all removed on failure."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import docker.errors
import pytest

from harness.stack import PROJECT_ROOT
from harness.stack.docker import (
    IMAGE,
    LABEL,
    TOXIPROXY_IMAGE,
    engine_address,
    start_docker_stack,
)
from harness.stack.processes import EnvironmentProblem


def test_no_engine_raises_one_line_naming_where_it_looked(tmp_path, monkeypatch):
    socket = tmp_path / "no-such-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket}")
    with pytest.raises(EnvironmentProblem) as caught:
        start_docker_stack(3, tmp_path / "stack")
    message = str(caught.value)
    assert message == f"no Docker engine reachable at unix://{socket}; use the default local backend"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained traceback
    assert not (tmp_path / "stack").exists()  # nothing was made before the engine answered


def test_no_engine_message_is_one_line_without_traceback_in_a_fresh_process(tmp_path):
    script = (
        "import sys; from pathlib import Path; from harness.stack.docker import start_docker_stack\n"
        "from harness.stack.processes import EnvironmentProblem\n"
        "try:\n    start_docker_stack(3, Path(sys.argv[1]))\n"
        "except EnvironmentProblem as exc:\n    print(exc, file=sys.stderr); sys.exit(2)\n"
    )
    env = {"DOCKER_HOST": f"unix://{tmp_path / 'missing.sock'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "stack")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"no Docker engine reachable at unix://{tmp_path / 'missing.sock'}; use the default local backend"
    ]


def test_engine_address_defaults_to_the_standard_socket(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine_address() == "unix:///var/run/docker.sock"


class FakeContainer:
    def __init__(self, name: str, status: str) -> None:
        self.name = name
        self.status = status
        self.removed = False

    def reload(self) -> None:
        pass

    def logs(self, tail: int | None = None) -> bytes:
        return b"starting\nboom: port in use\n"

    def remove(self, force: bool = False) -> None:
        self.removed = force


class FakeNetwork:
    def __init__(self, name: str, labels: dict[str, str]) -> None:
        self.name = name
        self.labels = labels
        self.removed = False

    def remove(self) -> None:
        self.removed = True


class FakeClient:
    """Just the SDK calls the backend makes; containers 'exit' at once unless told otherwise."""

    def __init__(self, *, status: str = "exited", missing_image: bool = False, run_error: bool = False):
        self.status, self.missing_image, self.run_error = status, missing_image, run_error
        self.runs: list[dict[str, Any]] = []
        self.made: list[FakeContainer] = []
        self.network_list: list[FakeNetwork] = []
        self.images = self
        self.containers = self
        self.networks = self

    def get(self, image: str) -> object:
        if self.missing_image:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        return object()

    def create(self, name: str, **kwargs: Any) -> FakeNetwork:
        self.network_list.append(FakeNetwork(name, kwargs["labels"]))
        return self.network_list[-1]

    def run(self, image: str, command: list[str], **kwargs: Any) -> FakeContainer:
        if self.run_error:
            raise docker.errors.APIError("500 Server Error: port is already allocated\nmore detail")
        self.runs.append({"image": image, "command": command, **kwargs})
        self.made.append(FakeContainer(kwargs["name"], self.status))
        return self.made[-1]


def test_containers_are_labelled_on_their_network_with_ports_on_loopback_only(tmp_path):
    client = FakeClient()
    with pytest.raises(EnvironmentProblem):
        start_docker_stack(2, tmp_path, client=client)  # type: ignore[arg-type]
    (network,) = client.network_list
    assert [run["image"] for run in client.runs] == [IMAGE, TOXIPROXY_IMAGE]
    for run in client.runs:
        assert run["labels"] == network.labels and LABEL in run["labels"]
        assert run["network"] == network.name
        assert run["detach"] is True
        assert {host for host, _ in run["ports"].values()} == {"127.0.0.1"}
    endpoints, toxiproxy = client.runs
    assert set(endpoints["ports"]) == {"18000/tcp", "18001/tcp"}
    assert set(toxiproxy["ports"]) == {"8474/tcp", "18100/tcp", "18101/tcp"}
    assert endpoints["command"][-4:] == ["--host", "0.0.0.0", "--port-base", "18000"]


def test_a_container_that_exits_fails_with_its_log_and_everything_is_removed(tmp_path):
    client = FakeClient(status="exited")
    with pytest.raises(EnvironmentProblem) as caught:
        start_docker_stack(3, tmp_path, client=client)  # type: ignore[arg-type]
    assert "endpoints exited before ready: starting | boom: port in use" in str(caught.value)
    assert all(container.removed for container in client.made) and len(client.made) == 2
    assert all(network.removed for network in client.network_list)
    assert (tmp_path / "endpoints.log").read_bytes().endswith(b"boom: port in use\n")


def test_a_missing_project_image_names_the_build_command_and_creates_nothing(tmp_path):
    client = FakeClient(missing_image=True)
    with pytest.raises(EnvironmentProblem, match="docker compose build") as caught:
        start_docker_stack(3, tmp_path, client=client)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    assert client.runs == [] and client.network_list == []


def test_an_engine_error_becomes_one_line_and_the_network_is_removed(tmp_path):
    client = FakeClient(run_error=True)
    with pytest.raises(EnvironmentProblem) as caught:
        start_docker_stack(3, tmp_path, client=client)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("docker: starting chaos-") and "\n" not in message
    assert "port is already allocated" in message
    assert caught.value.__suppress_context__
    assert all(network.removed for network in client.network_list)


def test_run_with_the_docker_backend_and_no_engine_exits_2_in_one_line(tmp_path):
    scenario = "scenarios/smoke/one-model-down.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", scenario, "--backend", "docker", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"chaos-harness: no Docker engine reachable at unix://{tmp_path}/no-engine.sock; "
        "use the default local backend"
    )
