"""The infrastructure of one run on 127.0.0.1: simulated endpoints and Toxiproxy with one proxy
per model. Started in that order, stopped in reverse, always. The system under test is not
part of it: the runner starts that (`harness.run.sut`), against the proxies this describes."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.endpoints.control import EndpointControl
from harness.endpoints.model import EndpointFault, LatencyModel
from harness.stack.processes import (
    LOOPBACK,
    Child,
    EnvironmentProblem,
    free_ports,
    python_module,
    read_ready_file,
    wait_until,
)
from harness.stack.toxiproxy import PROJECT_ROOT, ProxySpec, Toxics, ToxiproxyServer


@dataclass
class Stack:
    """Addresses and handles of a running stack."""

    models: list[str]
    endpoint_urls: dict[str, str]
    proxy_urls: dict[str, str]
    toxiproxy: ToxiproxyServer
    toxics: Toxics
    children: list[Child] = field(default_factory=list)
    owned: bool = True
    """False when attached to a stack another process runs: its proxies and processes stay."""

    def endpoint(self, model: str) -> EndpointControl:
        """The control API of `model`'s simulated endpoint."""
        return EndpointControl(self.endpoint_urls[model])

    def set_endpoint_fault(self, model: str, fault: EndpointFault) -> None:
        self.endpoint(model).set_fault(fault)

    def clear_endpoint_fault(self, model: str) -> None:
        self.endpoint(model).clear_fault()

    def reset_endpoint_counts(self, t0: float | None = None) -> None:
        """Every endpoint counting afresh from now, or from the epoch time `t0`."""
        for model in self.models:
            self.endpoint(model).reset_counts(t0)

    def endpoint_counts(self) -> dict[str, Any]:
        return {model: self.endpoint(model).counts() for model in self.models}

    def endpoint_answers(self) -> list[dict[str, Any]]:
        """Every answer each endpoint produced since the counts were reset, with its model."""
        return [
            {"model": model, **answer} for model in self.models for answer in self.endpoint(model).answers()
        ]

    def clean(self) -> None:
        """No toxic on any proxy, every proxy up, no endpoint fault: a stack as a run expects it."""
        self.toxics.reset()
        for model in self.models:
            self.clear_endpoint_fault(model)

    def describe(self) -> dict[str, Any]:
        """What another run needs to attach to this stack (`chaos-harness run --stack`)."""
        return {
            "models": self.models,
            "endpoint_urls": self.endpoint_urls,
            "proxy_urls": self.proxy_urls,
            "base_urls": {model: f"{url}/v1" for model, url in self.proxy_urls.items()},
            "toxiproxy_url": self.toxiproxy.url,
        }

    @classmethod
    def attach(cls, path: Path) -> Stack:
        """A stack someone else started (`chaos-harness up`): we add faults, never stop its processes."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        toxiproxy = ToxiproxyServer(data["toxiproxy_url"], None)
        wait_until(toxiproxy.version, timeout=5, what=f"reachable at {toxiproxy.url}")
        return cls(
            models=list(data["models"]),
            endpoint_urls=dict(data["endpoint_urls"]),
            proxy_urls=dict(data["proxy_urls"]),
            toxiproxy=toxiproxy,
            toxics=Toxics(toxiproxy.url),
            owned=False,
        )

    def stop(self) -> None:
        """Remove every toxic, then stop every process we started, newest first."""
        if not self.owned:
            with contextlib.suppress(Exception):
                self.toxics.reset()
            return
        try:
            self.toxics.reset()
            if self.toxiproxy.child is None:  # a shared server: leave no proxy of ours behind
                self.toxics.delete_proxies(list(self.models))
        except Exception:
            pass
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        self.toxiproxy.stop()


def _populate(toxics: Toxics, ports: dict[str, int], tries: int = 3) -> list[ProxySpec]:
    """One proxy per model on fresh ports; another process may grab a chosen port, so retry."""
    for attempt in range(tries):
        listen = free_ports(len(ports))
        pairs = zip(ports.items(), listen, strict=True)
        proxies = [ProxySpec(m, f"{LOOPBACK}:{lp}", f"{LOOPBACK}:{p}") for (m, p), lp in pairs]
        try:
            toxics.populate(proxies)
            return proxies
        except EnvironmentProblem as exc:
            if "address already in use" not in str(exc) or attempt == tries - 1:
                raise
            toxics.delete_proxies([p.name for p in proxies])
    raise AssertionError("unreachable")


def start_stack(models: int, folder: Path, *, latency: LatencyModel | None = None, seed: int = 1) -> Stack:
    """Start endpoints and Toxiproxy with one proxy per model; the caller must `stop()` it."""
    folder.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    toxiproxy = None
    try:
        ready = folder / "endpoints.ready.json"
        ready.unlink(missing_ok=True)
        latency_json = json.dumps(asdict(latency or LatencyModel()))
        endpoints = Child(
            "endpoints",
            python_module(
                "harness.endpoints",
                "--models",
                str(models),
                "--seed",
                str(seed),
                "--latency",
                latency_json,
                "--ready-file",
                str(ready),
            ),
            folder / "endpoints.log",
        )
        children.append(endpoints)
        announced = wait_until(lambda: read_ready_file(ready), timeout=30, child=endpoints, what="listening")
        ports: dict[str, int] = announced["ports"]
        toxiproxy = ToxiproxyServer.start(PROJECT_ROOT, folder)
        toxics = Toxics(toxiproxy.url)
        proxies = _populate(toxics, ports)
        return Stack(
            models=list(ports),
            endpoint_urls={m: f"http://{LOOPBACK}:{p}" for m, p in ports.items()},
            proxy_urls={p.name: f"http://{p.listen}" for p in proxies},
            toxiproxy=toxiproxy,
            toxics=toxics,
            children=children,
        )
    except BaseException:
        for child in reversed(children):
            child.stop()
        if toxiproxy is not None:
            toxiproxy.stop()
        raise
