"""Another gateway's own config file, pointing at a running stack's proxies (`up --emit`), so a
user runs their gateway against our faults in one step. Settings follow each gateway's docs for a
priority-ordered pool; every choice is commented in the file (or, for a format without comments,
here), to be tuned like any config."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

LITELLM_HEADER = """\
# LiteLLM proxy config for the chaos-harness stack (written by `chaos-harness up --emit litellm`).
# Start it with `litellm --config THIS_FILE --port 4000`, then run scenarios against it:
#   chaos-harness run SCENARIO --stack STACK_JSON --target http://127.0.0.1:4000 --no-control
# One model group, `{group}`, with one deployment per simulated model in priority order (`order`:
# lower first), each through its Toxiproxy proxy. The router retries twice, cools a deployment
# down for 5 s after one failed call in a minute, and gives a call 30 s (a stream 10 s to start).
"""


def litellm(described: dict[str, Any], group: str = "chat") -> str:
    """LiteLLM's proxy `config.yaml` (model_list, router_settings) for the stack in `described`
    (a stack.json): one group `group`, one deployment per simulated model in priority order."""
    routes = [(group, model, described["base_urls"][model]) for model in described["models"]]
    return LITELLM_HEADER.format(group=group) + litellm_routes(routes)


def litellm_routes(routes: list[tuple[str, str, str]]) -> str:
    """LiteLLM's config for `routes` (name clients ask for, model name upstream, base URL), each
    name's deployments in the order given."""
    ranks: dict[str, int] = {}
    deployments = []
    for name, upstream, base_url in routes:
        ranks[name] = ranks.get(name, 0) + 1
        params = {
            "model": f"openai/{upstream}",
            "api_base": base_url,
            "api_key": "unused",
            "order": ranks[name],
            "timeout": 30,
            "stream_timeout": 10,
        }
        deployments.append({"model_name": name, "litellm_params": params})
    config = {
        "model_list": deployments,
        "router_settings": {
            "num_retries": 2,
            "allowed_fails": 1,
            "cooldown_time": 5,
            "timeout": 30,
        },
        "litellm_settings": {"drop_params": True, "request_timeout": 30},
    }
    return yaml.safe_dump(config, sort_keys=False)


PORTKEY_RETRIED = [429, 500, 502, 503, 504]


def portkey(described: dict[str, Any], group: str = "chat") -> str:
    """The open-source Portkey gateway's config for the stack in `described`: a fallback
    strategy over one target per simulated model in priority order, each through its proxy.

    Portkey keeps no server-side config: clients send this whole object, on one line, in each
    request's `x-portkey-config` header, so the file is one line of JSON (a header cannot hold
    a comment or a line break; the choices are documented here instead). They are the baseline
    the public failoverbench catalogue runs Portkey with: fallback on any non-2xx answer
    (Portkey's default; connection failures move on too), the primary retried twice on 429 and
    5xx honouring Retry-After (Portkey's retry, with its own backoff), 30 s per call. The
    open-source gateway has no circuit breaker or cooldown: every request starts at the primary.
    `group` is unused: each target names its upstream model itself."""
    del group
    return portkey_routes([(described["base_urls"][model], model) for model in described["models"]])


def portkey_routes(routes: list[tuple[str, str | None]]) -> str:
    """Portkey's fallback config over `routes` (base URL, upstream model name; None passes the
    request's own model on), the first retried as `portkey` says, on one line."""
    targets: list[dict[str, Any]] = []
    for base_url, model in routes:
        target: dict[str, Any] = {"provider": "openai", "api_key": "unused", "custom_host": base_url}
        if model is not None:
            target["override_params"] = {"model": model}
        targets.append(target)
    targets[0]["retry"] = {"attempts": 2, "on_status_codes": PORTKEY_RETRIED, "use_retry_after_header": True}
    config = {"strategy": {"mode": "fallback"}, "request_timeout": 30_000, "targets": targets}
    return json.dumps(config, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class Emitter:
    """How to write one gateway's config: `render(stack.json content, model name clients ask
    for)`, and the file suffix its gateway expects."""

    render: Callable[[dict[str, Any], str], str]
    suffix: str


EMITTERS: dict[str, Emitter] = {"litellm": Emitter(litellm, "yaml"), "portkey": Emitter(portkey, "json")}
"""Bifrost is not written yet: it takes fallbacks in each request body
(`"fallbacks": ["local1/model-1"]`, its config.json one custom provider per model with
`base_provider_type: openai` and `network_config.base_url` without `/v1`), so the load would
have to send per-target body fields first, and its launcher downloads its binary from a host
this project cannot reach."""
