"""The docker backend: the same stack as `harness.stack.local.start_stack` (simulated endpoints,
Toxiproxy with one proxy per model) in containers on a network of their own, every port
published on 127.0.0.1 only. It needs a Docker engine; the local backend needs none and stays
the default.

Everything it creates carries the label `model-chaos-harness.stack=<id>`; `stop()` removes
exactly those containers and that network.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from harness.endpoints.model import LatencyModel
from harness.stack.local import Stack
from harness.stack.processes import LOOPBACK, EnvironmentProblem, free_ports
from harness.stack.toxiproxy import PINNED_VERSION, ProxySpec, Toxics, ToxiproxyServer

if TYPE_CHECKING:
    from docker.client import DockerClient

IMAGE = "model-chaos-harness:local"
"""The project's image, as `docker compose build` tags it (see docker-compose.yml)."""
TOXIPROXY_IMAGE = f"ghcr.io/shopify/toxiproxy:{PINNED_VERSION.removeprefix('v')}"
LABEL = "model-chaos-harness.stack"
ENDPOINT_PORT_BASE = 18000
PROXY_PORT_BASE = 18100
TOXIPROXY_API_PORT = 8474
READY_TIMEOUT = 60.0
BUILD_HINT = f"build it with `docker compose build` or `docker build -t {IMAGE} .`"


def engine_address() -> str:
    """Where `docker.from_env()` looks for the engine: DOCKER_HOST, else the platform's socket."""
    import docker.constants

    default = docker.constants.DEFAULT_NPIPE if os.name == "nt" else docker.constants.DEFAULT_UNIX_SOCKET
    return os.environ.get("DOCKER_HOST") or default.removeprefix("http+")


def connect() -> DockerClient:
    """A client of a reachable engine, or EnvironmentProblem in one line (no traceback, no chain)."""
    import docker.client
    import docker.errors

    try:
        client = docker.client.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError):
        raise EnvironmentProblem(
            f"no Docker engine reachable at {engine_address()}; use the default local backend"
        ) from None
    return client


@contextlib.contextmanager
def _docker_errors(action: str) -> Iterator[None]:
    """The SDK raises with HTTP tracebacks attached; the CLI wants one line."""
    import docker.errors

    try:
        yield
    except docker.errors.DockerException as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EnvironmentProblem(f"docker: {action}: {detail}") from None


@dataclass
class DockerStack(Stack):
    """A `Stack` whose endpoints and Toxiproxy run in containers we own and remove on `stop()`."""

    containers: dict[str, Any] = field(default_factory=dict)
    network: Any = None
    log_dir: Path | None = None

    def stop(self) -> None:
        """Remove toxics and proxies, keep each container's log, then remove containers and network."""
        try:
            super().stop()
        finally:
            for role, container in reversed(self.containers.items()):
                if self.log_dir is not None:
                    with contextlib.suppress(Exception):
                        (self.log_dir / f"{role}.log").write_bytes(container.logs())
                with contextlib.suppress(Exception):
                    container.remove(force=True)
            self.containers.clear()
            if self.network is not None:
                with contextlib.suppress(Exception):
                    self.network.remove()
                self.network = None


def start_docker_stack(
    models: int,
    folder: Path,
    *,
    latency: LatencyModel | None = None,
    seed: int = 1,
    image: str = IMAGE,
    client: DockerClient | None = None,
) -> DockerStack:
    """Start endpoints and Toxiproxy in containers, one proxy per model; the caller must `stop()` it."""
    client = client if client is not None else connect()
    folder.mkdir(parents=True, exist_ok=True)
    _require_image(client, image)
    stack_id = uuid.uuid4().hex[:10]
    labels = {LABEL: stack_id}
    names = [f"model-{i}" for i in range(models)]
    ports = free_ports(2 * models + 1)
    endpoint_ports, proxy_ports, api_port = ports[:models], ports[models : 2 * models], ports[-1]
    toxiproxy_url = f"http://{LOOPBACK}:{api_port}"
    stack = DockerStack(
        models=names,
        endpoint_urls={m: f"http://{LOOPBACK}:{p}" for m, p in zip(names, endpoint_ports, strict=True)},
        proxy_urls={m: f"http://{LOOPBACK}:{p}" for m, p in zip(names, proxy_ports, strict=True)},
        toxiproxy=ToxiproxyServer(toxiproxy_url, None),
        toxics=Toxics(toxiproxy_url),
        log_dir=folder,
    )
    try:
        with _docker_errors("creating the network"):
            stack.network = client.networks.create(f"chaos-{stack_id}", driver="bridge", labels=labels)
        endpoints_name = f"chaos-{stack_id}-endpoints"
        command = ["python", "-m", "harness.endpoints", "--models", str(models), "--seed", str(seed)]
        command += ["--latency", json.dumps(asdict(latency or LatencyModel()))]
        command += ["--host", "0.0.0.0", "--port-base", str(ENDPOINT_PORT_BASE)]
        published = {ENDPOINT_PORT_BASE + i: p for i, p in enumerate(endpoint_ports)}
        network = stack.network.name
        stack.containers["endpoints"] = _run(
            client, image, command, endpoints_name, network, labels, published
        )
        published = {PROXY_PORT_BASE + i: p for i, p in enumerate(proxy_ports)}
        published[TOXIPROXY_API_PORT] = api_port
        toxiproxy_name = f"chaos-{stack_id}-toxiproxy"
        command = ["-host=0.0.0.0"]
        stack.containers["toxiproxy"] = _run(
            client, TOXIPROXY_IMAGE, command, toxiproxy_name, network, labels, published
        )
        _wait_ready(
            stack.containers["endpoints"], lambda: all(_healthy(u) for u in stack.endpoint_urls.values())
        )
        _wait_ready(stack.containers["toxiproxy"], stack.toxiproxy.version)
        stack.toxics.populate(
            [
                ProxySpec(m, f"0.0.0.0:{PROXY_PORT_BASE + i}", f"{endpoints_name}:{ENDPOINT_PORT_BASE + i}")
                for i, m in enumerate(names)
            ]
        )
        return stack
    except BaseException:
        stack.stop()
        raise


def _require_image(client: DockerClient, image: str) -> None:
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise EnvironmentProblem(f"docker image {image} not found; {BUILD_HINT}") from None


def _run(
    client: DockerClient,
    image: str,
    command: list[str],
    name: str,
    network: str,
    labels: dict[str, str],
    published: dict[int, int],
) -> Any:
    """Run one detached container on the stack's network; each container port -> 127.0.0.1:host port."""
    ports = {f"{inside}/tcp": (LOOPBACK, host) for inside, host in published.items()}
    with _docker_errors(f"starting {name}"):
        return client.containers.run(
            image,
            command,
            name=name,
            detach=True,
            labels=labels,
            network=network,
            ports=ports,
        )


def _healthy(url: str) -> bool:
    return requests.get(f"{url}/health", timeout=2).status_code == 200


def _wait_ready(container: Any, probe: Callable[[], Any], timeout: float = READY_TIMEOUT) -> None:
    """Poll `probe` until truthy; fail at once, with the log's last lines, if the container exits."""
    deadline = time.monotonic() + timeout
    while True:
        with _docker_errors(f"inspecting {container.name}"):
            container.reload()
        if container.status in ("exited", "dead"):
            raise EnvironmentProblem(f"container {container.name} exited before ready: {_tail(container)}")
        with contextlib.suppress(requests.RequestException):
            if probe():
                return
        if time.monotonic() > deadline:
            raise EnvironmentProblem(
                f"container {container.name} not ready after {timeout:g}s: {_tail(container)}"
            )
        time.sleep(0.1)


def _tail(container: Any, lines: int = 5) -> str:
    try:
        text = container.logs(tail=lines).decode(errors="replace").strip()
    except Exception:
        return "(no log)"
    return " | ".join(text.splitlines()) or "(empty log)"
