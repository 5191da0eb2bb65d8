"""`chaos-harness admin`: the gateway's manual controls from a terminal, through its admin API.

Exit codes: 0 done, 2 with one clear line when the gateway is unreachable or refuses (401, 4xx).
"""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn
from urllib.parse import quote

import click

from harness.cli.errors import EXIT_BAD_INPUT
from harness.gateway.admin.client import AdminClient, AdminError


def fail(message: str) -> NoReturn:
    """One clear line on stderr, exit code 2."""
    click.echo(f"chaos-harness admin: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


class Gateway:
    """The admin API of one gateway, with its token; refusals become one line and exit 2."""

    def __init__(self, url: str | None, token: str | None) -> None:
        if not url:
            fail("no gateway URL: pass --url or set CHAOS_GATEWAY_URL")
        if not token:
            fail("no admin token: pass --token or set CHAOS_ADMIN_TOKEN")
        self.client = AdminClient(url, token)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return self.client.call(method, path, body)
        except AdminError as exc:
            fail(str(exc))


def _who() -> str:
    return os.environ.get("USER") or "admin"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}ms"


def format_state(state: dict[str, Any]) -> str:
    """A table of every group's models, then degraded mode and the run, for a terminal."""
    header = (
        f"{'group':<12} {'model':<28} {'health':<10} {'circuit':<9} {'share':>6} {'weight':>6} "
        f"{'p50':>9} {'p99':>9} {'errors':>6} {'restore':>7} drained"
    )
    lines = [f"mode {state['mode']}", header]
    for group, models in state["groups"].items():
        for m in models:
            weight = "-" if m.get("weight") is None else f"{m['weight']:g}"
            lines.append(
                f"{group:<12} {m['model']:<28} {m['health']:<10} {m['circuit'] or '-':<9} "
                f"{_percent(m['share']):>6} {weight:>6} {_ms(m['p50']):>9} {_ms(m['p99']):>9} "
                f"{_percent(m['error_rate']):>6} {_percent(m['restoration_share']):>7} "
                f"{'yes' if m['drained'] else 'no'}"
            )
    degraded = state["degraded"]
    lines.append(
        f"degraded mode: on since {degraded['since']:.0f} by {degraded['who']}: {degraded['reason']}"
        if degraded["enabled"]
        else "degraded mode: off"
    )
    run = state.get("run")
    if run:
        faults = ", ".join(f"{f['model']} {f['kind']}" for f in run["faults"]) or "none"
        lines.append(
            f"run {run['scenario']} ({run['variant']}): {run['phase']} "
            f"{run['elapsed']:.0f}/{run['duration']:.0f}s, faults: {faults}"
        )
    return "\n".join(lines)


def _applied(answer: dict[str, Any]) -> str:
    return ", ".join(a["group"] for a in answer.get("applied", [])) or "-"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="CHAOS_GATEWAY_URL", help="Gateway base URL [env CHAOS_GATEWAY_URL].")
@click.option("--token", envvar="CHAOS_ADMIN_TOKEN", help="Admin bearer token [env CHAOS_ADMIN_TOKEN].")
@click.pass_context
def admin(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Operate a running gateway: isolate, drain, restore, reweight models; degraded mode."""
    ctx.obj = (url, token)


def _gateway(ctx: click.Context) -> Gateway:
    url, token = ctx.obj
    return Gateway(url, token)


_reason = click.option("--reason", required=True, help="Why; written to the audit trail.")
_who_option = click.option("--who", default=_who, show_default="$USER", help="Who acts, for the audit.")


@admin.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON state.")
@click.pass_context
def state(ctx: click.Context, as_json: bool) -> None:
    """Show every model's health, circuit, traffic share, weight and latency."""
    answer = _gateway(ctx).call("GET", "/admin/state")
    click.echo(json.dumps(answer, indent=2) if as_json else format_state(answer))


def _model_command(action: str, help_text: str) -> click.Command:
    @click.argument("model")
    @_reason
    @_who_option
    @click.pass_context
    def command(ctx: click.Context, model: str, reason: str, who: str) -> None:
        answer = _gateway(ctx).call(
            "POST", f"/admin/models/{quote(model, safe='')}/{action}", {"reason": reason, "who": who}
        )
        click.echo(f"{action} {model}: done in {_applied(answer)}")

    command.__doc__ = help_text
    return admin.command(action)(command)


_model_command("isolate", "Force MODEL's circuit open (label like provider/model, or bare name).")
_model_command("drain", "Send MODEL no new requests; requests in flight finish.")
_model_command("restore", "Undo isolate and drain on MODEL; traffic returns in steps.")


@admin.command()
@click.argument("model")
@click.argument("weight", type=click.FloatRange(min=0))
@_reason
@_who_option
@click.pass_context
def weight(ctx: click.Context, model: str, weight: float, reason: str, who: str) -> None:
    """Set MODEL's base routing weight to W (0 takes it out of rotation)."""
    body = {"weight": weight, "reason": reason, "who": who}
    answer = _gateway(ctx).call("POST", f"/admin/models/{quote(model, safe='')}/weight", body)
    click.echo(f"weight {model} = {weight:g}: done in {_applied(answer)}")


@admin.command()
@click.argument("switch", type=click.Choice(["on", "off"]))
@_reason
@_who_option
@click.pass_context
def degraded(ctx: click.Context, switch: str, reason: str, who: str) -> None:
    """Turn global degraded mode on (every chat request gets the degraded answer) or off."""
    body = {"enabled": switch == "on", "reason": reason, "who": who}
    _gateway(ctx).call("POST", "/admin/degraded", body)
    click.echo(f"degraded mode {switch}")


if __name__ == "__main__":
    admin(prog_name="chaos-harness admin")
