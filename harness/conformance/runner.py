"""Running the conformance suite: the simulated endpoints behind Toxiproxy, the system under test
(our gateway with its default config, or any OpenAI-compatible URL), one request per case (20 for
the flapping one), then each case judged from the caller's view and the endpoints' own log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from harness.conformance.catalogue import Case, Catalogue
from harness.conformance.scoring import Call, Observed, Verdict, verdict
from harness.endpoints.model import EndpointFault, LatencyModel
from harness.gateway.launch import LOOPBACK
from harness.load.reading import read_completion, read_stream
from harness.run.sut import GatewayProcess
from harness.run.target_command import StartedTarget, TargetCommand
from harness.stack import EnvironmentProblem, Stack, start_stack
from harness.stack.peer_configs import litellm_routes, portkey_routes

PROMPT = (
    "Explain in exactly sixty words why a gateway earns trust only when the provider behind it misbehaves."
)
FALLBACK = "fb-ok"
PRIMARY, SECONDARY = "model-0", "model-1"


def gateway_config(stack: Stack) -> dict[str, Any]:
    """Our gateway as a user would set it up: two providers, every policy left at its default."""
    return {
        "mode": "resilient",
        "host": LOOPBACK,
        "port": 0,
        "providers": [
            {"name": "primary", "base_url": f"{stack.proxy_urls[PRIMARY]}/v1", "models": ["fb-s*"]},
            {"name": "fallback", "base_url": f"{stack.proxy_urls[SECONDARY]}/v1", "models": [FALLBACK]},
        ],
    }


async def call(
    session: aiohttp.ClientSession,
    url: str,
    model: str,
    limit: float,
    *,
    stream: bool = True,
    fallback: bool = True,
) -> Call:
    """One request the way the catalogue sends it; a hang when nothing ends it within `limit` + 1 s."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if fallback:
        body["fallbacks"] = [FALLBACK]
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit + 1.0):
            async with session.post(f"{url}/v1/chat/completions", json=body) as response:
                if response.status != 200:
                    await response.read()
                    return Call("error", False, time.monotonic() - started, error=f"HTTP {response.status}")
                if not stream:
                    read = read_completion(await response.read(), False)
                    return _call(read, time.monotonic() - started, "", True)
                lines = [line.rstrip(b"\r\n") async for line in response.content]
    except TimeoutError:
        return Call("hang", False, time.monotonic() - started, error="no result in time")
    except aiohttp.ClientError as exc:
        return Call("error", False, time.monotonic() - started, error=type(exc).__name__)
    elapsed = time.monotonic() - started
    read = read_stream(lines, started, False)
    model_seen, usage = _model_and_usage(lines)
    return _call(read, elapsed, model_seen, usage)


def _call(read: dict[str, Any], elapsed: float, model: str, usage: bool) -> Call:
    claimed = read.get("ok") or read.get("error_kind") in ("truncated_success", "corrupted_success")
    outcome = "success" if claimed else "error"
    return Call(
        outcome, bool(read.get("ok")), elapsed, model, usage, "" if claimed else read.get("error_kind", "")
    )


def _model_and_usage(lines: list[bytes]) -> tuple[str, bool]:
    model, usage = "", False
    for line in lines:
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            continue
        if isinstance(event, dict):
            model = str(event.get("model") or model)
            usage = usage or bool(event.get("usage"))
    return model, usage


class Conformance:
    """One run of the catalogue against one system under test."""

    def __init__(
        self,
        catalogue: Catalogue,
        stack: Stack,
        url: str,
        progress: Callable[[str], None] = print,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.catalogue = catalogue
        self.stack = stack
        self.url = url
        self.progress = progress
        self.headers = headers
        """Sent with every request: a gateway that takes its routing from each request
        (Portkey's `x-portkey-config`) gets it as `--target-header` gives it."""

    def _prepare(self, case: Case) -> None:
        for model in (PRIMARY, SECONDARY):
            self.stack.clear_endpoint_fault(model)
        self.stack.reset_endpoint_counts()
        if case.primary:
            self.stack.set_endpoint_fault(PRIMARY, EndpointFault(**case.primary))
        if case.fallback:
            self.stack.set_endpoint_fault(SECONDARY, EndpointFault(**case.fallback))

    def _logs(self, case: Case) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        primary = [e for e in self.stack.endpoint(PRIMARY).requests_log() if e["model"] == case.model]
        fallback = [e for e in self.stack.endpoint(SECONDARY).requests_log() if e["model"] == FALLBACK]
        return primary, fallback

    async def run_case(self, session: aiohttp.ClientSession, case: Case) -> Verdict:
        self._prepare(case)
        sequence: list[Call] = []
        down_for = 0.0
        if case.sequence is None:
            result = await call(session, self.url, case.model, case.max_wall)
        else:
            plan = case.sequence
            down_for = plan.down_for
            reset = time.monotonic()
            healed = asyncio.get_running_loop().call_later(down_for, self.stack.clear_endpoint_fault, PRIMARY)
            try:
                for index in range(plan.count):
                    await asyncio.sleep(max(0.0, reset + index * plan.interval - time.monotonic()))
                    sent = time.monotonic() - reset
                    one = await call(session, self.url, case.model, plan.per_request_max_wall)
                    sequence.append(
                        Call(one.outcome, one.complete, one.elapsed, one.model, one.usage, one.error, sent)
                    )
            finally:
                healed.cancel()
            outcome = (
                "hang"
                if any(c.outcome == "hang" for c in sequence)
                else ("success" if all(c.outcome == "success" for c in sequence) else "error")
            )
            result = Call(outcome, all(c.complete for c in sequence), time.monotonic() - reset)
        primary, fallback = self._logs(case)
        alive = await call(
            session, self.url, FALLBACK, self.catalogue.alive_limit, stream=False, fallback=False
        )
        seen = Observed(
            result,
            primary,
            fallback,
            alive.outcome == "success" and alive.complete,
            FALLBACK,
            sequence,
            down_for,
        )
        return verdict(case, seen)

    async def run(self) -> list[Verdict]:
        verdicts = []
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(timeout=timeout, headers=dict(self.headers)) as session:
            for case in self.catalogue.cases:
                found = await self.run_case(session, case)
                line = f"  {found.case}  {found.verdict.upper():<8} {found.elapsed:6.1f} s  {found.name}"
                self.progress(f"{line}: {found.reason}")
                verdicts.append(found)
        return verdicts


def peer_config(catalogue: Catalogue, described: dict[str, Any]) -> Callable[[str], str]:
    """Another gateway's config for the catalogue (`--target-cmd ... {litellm}` or `{portkey}`):
    each case's model on the primary, the fallback model on the secondary; LiteLLM is told the
    fallback per request (`fallbacks`), as the catalogue sends it, Portkey by its config's order."""

    def config(name: str) -> str:
        primary, secondary = (described["base_urls"][m] for m in (PRIMARY, SECONDARY))
        if name == "portkey":  # the case's model goes on to the primary; the secondary answers as fb-ok
            return portkey_routes([(primary, None), (secondary, FALLBACK)])
        if name != "litellm":
            raise EnvironmentProblem(f"no {name} config for the conformance suite (litellm or portkey)")
        routes = [(model, model, primary) for model in sorted({c.model for c in catalogue.cases})]
        return litellm_routes([*routes, (FALLBACK, FALLBACK, secondary)])

    return config


def run_conformance(
    catalogue: Catalogue,
    folder: Path,
    *,
    target: str | None = None,
    target_command: TargetCommand | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Start the endpoints (and our gateway unless `target` names another system, or
    `target_command` starts one on these endpoints), run every case, and write
    `conformance.json` and `conformance.md` into `folder`. `headers` go with every request to
    a `target` (a started command sends its own, placeholders filled in)."""
    folder.mkdir(parents=True, exist_ok=True)
    interval = catalogue.timing["token_interval"]
    latency = LatencyModel(
        first_token=0.01,
        first_token_jitter=0.0,
        tokens_per_second=1.0 / interval,
        tokens_min=catalogue.words,
        tokens_max=catalogue.words,
        token_rate_jitter=0.0,
    )
    stack = start_stack(2, folder / "stack", latency=latency)
    gateway: GatewayProcess | StartedTarget | None = None
    try:
        described = stack.describe()
        (folder / "stack.json").write_text(json.dumps(described, indent=2), encoding="utf-8")
        if target_command is not None:
            progress(f"starting: {target_command.line}")
            gateway = target_command.start(described, folder / "target", peer_config(catalogue, described))
            target, headers = gateway.url, gateway.headers
        elif target is None:
            gateway = GatewayProcess.start(
                {**gateway_config(stack), "audit_path": str(folder / "audit.jsonl")}, folder
            )
        url = gateway.url if gateway is not None else str(target)
        started = time.monotonic()
        verdicts = asyncio.run(Conformance(catalogue, stack, url, progress, headers).run())
        total = time.monotonic() - started
    finally:
        if gateway is not None:
            gateway.stop()
        stack.stop()
    system = target_command.line if target_command is not None else target
    results = summarize(verdicts, total, catalogue.profile, system or "our gateway (default config)")
    (folder / "conformance.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (folder / "conformance.md").write_text(render(results), encoding="utf-8")
    return results


def summarize(verdicts: list[Verdict], total: float, profile: str, system: str) -> dict[str, Any]:
    counts = {
        name: sum(1 for v in verdicts if v.verdict == name) for name in ("pass", "partial", "safe", "fail")
    }
    return {
        "system": system,
        "profile": profile,
        "counts": counts,
        "run_seconds": round(total, 1),
        "cases": [asdict(v) for v in verdicts],
    }


def render(results: dict[str, Any]) -> str:
    counts = results["counts"]
    lines = [
        f"## Conformance: {results['system']}",
        "",
        f"Profile `{results['profile']}`: **{counts['pass']} pass, {counts['partial']} partial, "
        f"{counts['safe']} safe, {counts['fail']} fail** in {results['run_seconds']} s.",
        "",
        "| case | name | verdict | time | primary / fallback attempts | why |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for case in results["cases"]:
        lines.append(
            f"| {case['case']} | {case['name']} | {case['verdict']} | {case['elapsed']:.1f} s | "
            f"{case['attempts_primary']} / {case['attempts_fallback']} | {case['reason']} |"
        )
    return "\n".join(lines) + "\n"
