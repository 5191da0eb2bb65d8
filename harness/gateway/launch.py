"""How the harness starts the gateway as the system under test: its config over a stack's
proxies, and the command line. Pure: starting the process is the runner's (`harness.run.sut`)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

GROUP = "chat"
"""The public model name clients ask the gateway for; it spans every simulated model."""
LOOPBACK = "127.0.0.1"


class Upstreams(Protocol):
    """What the gateway is pointed at: model names, and the proxy each is reached through."""

    @property
    def models(self) -> Sequence[str]: ...

    @property
    def proxy_urls(self) -> Mapping[str, str]: ...


def gateway_config(
    stack: Upstreams,
    mode: str,
    policies: dict[str, Any] | None = None,
    audit_path: Path | None = None,
    plan: str = "sequential",
    hedge_delay: float = 0.5,
) -> dict[str, Any]:
    """A gateway config whose group `chat` spans every model, each reached through its proxy."""
    providers = [{"name": m, "base_url": f"{stack.proxy_urls[m]}/v1", "models": [m]} for m in stack.models]
    deployments = [{"provider": m, "model": m, "priority": i} for i, m in enumerate(stack.models)]
    config: dict[str, Any] = {
        "mode": mode,
        "host": LOOPBACK,
        "port": 0,
        "providers": providers,
        "groups": {GROUP: {"deployments": deployments, "plan": plan, "hedge_delay": hedge_delay}},
        "policies": policies or {},
    }
    if audit_path is not None:
        config["audit_path"] = str(audit_path)
    return config


def command(config_path: Path, ready_file: Path) -> list[str]:
    """argv that serves a gateway with this config, announcing itself in `ready_file`."""
    return [
        sys.executable,
        "-m",
        "harness.gateway",
        "--config",
        str(config_path),
        "--ready-file",
        str(ready_file),
    ]
