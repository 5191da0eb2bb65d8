"""Another gateway's own config file, pointing at a running stack's proxies (`up --emit`), so a
user runs their gateway against our faults in one step. Settings follow each gateway's docs for a
priority-ordered pool; every choice is commented in the file, to be tuned like any config."""

from __future__ import annotations

from collections.abc import Callable
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


EMITTERS: dict[str, Callable[[dict[str, Any], str], str]] = {"litellm": litellm}
"""Each takes a stack.json's content and the model name clients ask for. Bifrost and Portkey
are not written yet, because neither keeps its fallbacks in a server-side file a user could
start from: Bifrost (config.json: one custom provider per model, `base_provider_type: openai`,
`network_config.base_url` without `/v1`) takes fallbacks in each request body
(`"fallbacks": ["local1/model-1"]`), and the open-source Portkey gateway (1.15) takes its whole
config (`strategy: {mode: fallback}`, `targets` with `custom_host` including `/v1`) in each
request's `x-portkey-config` header. Both need the load to send per-target headers or body
fields first."""
