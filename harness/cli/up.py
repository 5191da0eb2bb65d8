"""`chaos-harness up`: the stack (and our gateway, unless --no-gateway) until Ctrl-C or SIGTERM,
for hands-on sessions and for pointing another gateway at the proxies."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli.errors import fail

if TYPE_CHECKING:
    from harness.endpoints.model import LatencyModel


@click.command()
@click.option("--models", type=click.IntRange(1, 1000), default=None, help="[default: 3, or the scenario's]")
@click.option(
    "--scenario",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Take the model count, seed and latency from this scenario file (what a run attached "
    "to this stack would otherwise not get).",
)
@click.option("--seed", type=click.IntRange(0), default=None, help="The endpoints' seed [default: 1].")
@click.option("--first-token", type=click.FloatRange(0), default=None, help="Seconds to the first token.")
@click.option("--tokens-per-second", type=click.FloatRange(0, min_open=True), default=None)
@click.option("--no-gateway", is_flag=True, help="Only the endpoints and proxies: for your own gateway.")
@click.option(
    "--emit",
    type=(click.Choice(["litellm", "portkey"]), click.Path(dir_okay=False, path_type=Path)),
    default=None,
    metavar="GATEWAY FILE",
    help="Also write that gateway's own config, pointing at the proxies (litellm, portkey).",
)
@click.option(
    "--mode", type=click.Choice(["resilient", "passthrough"]), default="resilient", show_default=True
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/up"), show_default=True)
def up(
    models: int | None,
    scenario: Path | None,
    seed: int | None,
    first_token: float | None,
    tokens_per_second: float | None,
    no_gateway: bool,
    emit: tuple[str, Path] | None,
    mode: str,
    out: Path,
) -> None:
    """Start endpoints and Toxiproxy (and our gateway), print the proxies' OpenAI base URLs, write
    stack.json, and stop cleanly on Ctrl-C or SIGTERM."""
    from harness.gateway.admin.auth import resolve_token, shown_token
    from harness.gateway.launch import GROUP, gateway_config
    from harness.run import GatewayProcess
    from harness.stack import EnvironmentProblem, start_stack
    from harness.stack.peer_configs import EMITTERS
    from harness.stack.processes import raise_on_sigterm

    count, chosen_seed, latency = _stack_settings(scenario, models, seed, first_token, tokens_per_second)
    raise_on_sigterm()
    try:
        stack = start_stack(count, out, latency=latency, seed=chosen_seed)
    except EnvironmentProblem as exc:
        fail(str(exc))
    gateway = None
    try:
        if not no_gateway:  # started before stack.json is written: its presence means all is up
            token = str(resolve_token(generate=True))
            gateway = GatewayProcess.start({**gateway_config(stack, mode), "admin_token": token}, out)
        described = {**stack.describe(), "seed": chosen_seed, "latency": asdict(latency)}
        written = out / "stack.json.part"
        written.write_text(json.dumps(described, indent=2), encoding="utf-8")
        written.replace(out / "stack.json")  # whole or absent, for whoever waits for it
        if emit is not None:
            peer, path = emit
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(EMITTERS[peer].render(described, GROUP), encoding="utf-8")
            click.echo(f"{peer} config: {path}")
            if peer == "portkey":  # Portkey reads its config from each request, not from a file
                click.echo(f"  send it with every request: --target-header 'x-portkey-config: @{path}'")
        click.echo(f"{count} simulated model(s), seed {chosen_seed}; OpenAI base URLs through Toxiproxy:")
        for model in stack.models:
            direct = f"{stack.endpoint_urls[model]}/v1"
            click.echo(f"  {model}: {described['base_urls'][model]}  (endpoint, no faults: {direct})")
        click.echo(f"toxiproxy API:  {stack.toxiproxy.url}")
        click.echo(
            f"stack file:     {out / 'stack.json'}  (chaos-harness run ... --stack this-file --target URL)"
        )
        if gateway is not None:
            click.echo(f"our gateway ({mode}): {gateway.url}/v1  (model name: {GROUP})")
            click.echo(f"  dashboard: {gateway.url}/dashboard  (admin token: {shown_token(token)})")
        click.echo("Ctrl-C (or SIGTERM) stops everything.")
        while (gateway is None or gateway.alive()) and all(child.alive() for child in stack.children):
            time.sleep(0.5)
        fail("a process of the stack exited; see the logs in " + str(out))
    except EnvironmentProblem as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        if gateway is not None:
            gateway.stop()
        stack.stop()


def _stack_settings(
    scenario: Path | None,
    models: int | None,
    seed: int | None,
    first_token: float | None,
    tokens_per_second: float | None,
) -> tuple[int, int, LatencyModel]:
    """The scenario's models, seed and latency (when given), each overridden by its option."""
    from harness.scenario import ScenarioError, load_scenario
    from harness.scenario.model import Latency

    base_count, base_seed, base_latency = 3, 1, Latency()
    if scenario is not None:
        try:
            loaded = load_scenario(scenario)
        except ScenarioError as exc:
            fail(str(exc))
        base_count, base_seed, base_latency = loaded.models.count, loaded.seed, loaded.models.latency
    changes = {"first_token": first_token, "tokens_per_second": tokens_per_second}
    latency = base_latency.model_copy(update={k: v for k, v in changes.items() if v is not None})
    return models or base_count, base_seed if seed is None else seed, latency.to_model()
