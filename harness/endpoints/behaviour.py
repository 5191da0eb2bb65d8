"""What a simulated model does with one chat request, whatever carries the bytes.

`respond` plays the endpoint's latency model and its fault on one request and writes the answer
through a `Wire`: the HTTP server's (`app.py`, over aiohttp) or the simulation's (in virtual
time, no socket). Both run this one definition, so a fault means the same thing in both.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.endpoints.answers import Answer, continued
from harness.endpoints.model import MAX_SECONDS, EndpointFault, LatencyModel
from harness.endpoints.surfaces import OPENAI, Reply, Surface, text_of

HEALTHY = EndpointFault()


class Wire(Protocol):
    """How a response goes out. Writes raise `ConnectionResetError` once the client is gone."""

    def reset(self) -> None:
        """Reset the connection (RST) before any byte of the response."""

    def hang_up(self) -> None:
        """Close the connection, whatever was or was not sent."""

    async def json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """A whole JSON response."""

    async def text(self, status: int, text: str, content_type: str) -> None:
        """A whole response with any body (malformed JSON, say)."""

    async def start_stream(self) -> None:
        """Send the headers of a server-sent-event stream (again: no effect)."""

    async def write(self, data: bytes) -> None:
        """Send bytes of the stream."""

    async def end(self) -> None:
        """End the response cleanly."""


@dataclass
class EndpointState:
    """One simulated model: identity, latency model, active fault, and what it has received."""

    model: str
    latency: LatencyModel
    seed: int
    fault: EndpointFault = field(default_factory=EndpointFault)
    clock: Callable[[], float] = time.monotonic
    """Where its time comes from: the monotonic clock, or the simulation's virtual one."""
    started: float = 0.0
    per_second: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    answers: list[dict[str, Any]] = field(default_factory=list)
    """Every answer produced since the counts were reset: the ground truth of what was sent."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every request received since the counts were reset: when, what, and how it ended."""
    fault_uses: int = 0
    """Requests the current fault has played on (for `first_n`)."""
    token_minute: tuple[float, int] = (0.0, 0)
    """When the current token-budget minute began (clock time) and the tokens spent in it."""
    token_tick: float = 0.001
    """Token pauses shorter than this are added up and slept in one go: the same timing at
    this resolution, far fewer wake-ups (which a simulation pays for in wall time)."""
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.started = self.clock()

    def now(self) -> float:
        return self.clock() - self.started

    def reset_counts(self, in_seconds: float = 0.0) -> None:
        """Start counting afresh, with second 0 = `in_seconds` from now (a run's start). A run
        resets before its t0, not at it: at t0 its load is already sending, and a reset then
        wiped the answers of the first requests (ten of them, with fifty models to reset, which
        then read as forged: ids no endpoint produced). What comes before second 0 (health
        probes) counts in negative seconds."""
        self.per_second.clear()
        self.answers.clear()
        self.requests.clear()
        self.started = self.clock() + in_seconds

    def set_fault(self, fault: EndpointFault) -> None:
        self.fault = fault
        self.fault_uses = 0
        self.token_minute = (self.clock(), 0)

    def spend_tokens(self, tokens: int, per_minute: int) -> tuple[float, int] | None:
        """Spend `tokens` of this minute's budget; when they do not fit, (seconds until the
        minute is over, tokens left) and nothing is spent."""
        now = self.clock()
        began, spent = self.token_minute
        if now - began >= 60.0:
            began, spent = now, 0
        if spent + tokens > per_minute:
            self.token_minute = (began, spent)
            return began + 60.0 - now, per_minute - spent
        self.token_minute = (began, spent + tokens)
        return None

    def count(self, outcome: str) -> None:
        self.per_second[math.floor(self.now())][outcome] += 1

    def counts(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "per_second": {str(s): dict(c) for s, c in sorted(self.per_second.items())},
        }

    def answer(self, count: int) -> Answer:
        return Answer.new(f"{self.rng.getrandbits(48):012x}", count)

    def log(
        self, answer: Answer, started: float, sent: int, outcome: str, stream: bool, held: int = 0
    ) -> None:
        """Record what went out of `answer`: `sent` of its words after the `held` a prefill
        already had (the first word carries the marker)."""
        self.answers.append(
            {
                "t": round(started, 4),
                "id": answer.id,
                "words": len(answer.words),
                "held": held,
                "sent": sent,
                "complete": held + sent == len(answer.words) and outcome in ("ok", "no_done"),
                "outcome": outcome,
                "stream": stream,
            }
        )

    def current_fault(self) -> EndpointFault:
        """The fault for this request: `first_n` ones play on that many requests, then end."""
        fault = self.fault
        if fault.first_n is not None:
            if self.fault_uses >= fault.first_n:
                return HEALTHY
            self.fault_uses += 1
        return fault

    def request(self, body: dict[str, Any], prefilled: bool, started: float) -> dict[str, Any]:
        """Log one request as it arrives (its outcome is filled in as it ends)."""
        messages = body.get("messages") or []
        entry = {
            "t": round(started, 4),
            "model": str(body.get("model", "")),
            "stream": bool(body.get("stream")),
            "prefill": prefilled,
            "prompt_tokens": sum(
                len(text_of(m.get("content", "")).split()) + 4 for m in messages if isinstance(m, dict)
            ),
            "outcome": "",
        }
        self.requests.append(entry)
        return entry


async def respond(state: EndpointState, body: dict[str, Any], wire: Wire, surface: Surface = OPENAI) -> None:
    """Answer one chat request: the active fault first, then the answer (JSON, or a stream),
    in `surface`'s wire format."""
    prefill = surface.prefill(body)
    fault = state.current_fault()
    started = state.now()
    record = state.request(body, prefill is not None, started)
    if fault.reset_before_headers:
        record["outcome"] = "reset"
        state.count("reset")
        wire.reset()
        return
    if fault.silent:
        record["outcome"] = "silent"
        state.count("silent")
        await asyncio.sleep(fault.stall_seconds or MAX_SECONDS)
        wire.hang_up()
        return
    if prefill is not None and fault.rejects_prefill:
        record["outcome"] = "prefill_rejected"
        state.count("prefill_rejected")
        message = "This model does not support assistant message prefill."
        await wire.json(400, surface.error(400, message, "invalid_prefill", param="messages"))
        return
    rng = state.rng
    if fault.status and rng.random() < fault.error_rate:
        record["outcome"] = f"status_{fault.status}"
        state.count(record["outcome"])
        retry_after = fault.retry_after if fault.status == 429 else None
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        await wire.json(
            fault.status, surface.error(fault.status, f"simulated {fault.status}", fault.code), headers
        )
        return
    answer, held = _answer_for(state, prefill)
    if fault.tokens_per_minute is not None:
        refused = state.spend_tokens(
            record["prompt_tokens"] + len(answer.words) - held, fault.tokens_per_minute
        )
        if refused is not None:
            wait, left = refused
            record["outcome"] = "status_429"
            state.count(record["outcome"])
            headers = {
                "Retry-After": str(max(1, math.ceil(wait))),
                "x-ratelimit-limit-tokens": str(fault.tokens_per_minute),
                "x-ratelimit-remaining-tokens": str(left),
                "x-ratelimit-reset-tokens": f"{wait:.3f}s",
            }
            message = f"simulated: {fault.tokens_per_minute} tokens per minute reached"
            await wire.json(429, surface.error(429, message, "rate_limit_exceeded"), headers)
            return
    first_token = state.latency.first_token_delay(rng) + fault.extra_first_token
    per_token = state.latency.per_token(rng, fault.token_rate)
    model = str(body.get("model") or state.model)
    tool = surface.tool(body) if prefill is None else None
    if body.get("stream"):
        plan = _StreamPlan(answer, held, first_token, per_token, started, model, body, surface, record, tool)
        await _stream(state, fault, plan, wire)
        return
    await asyncio.sleep(first_token + per_token * (len(answer.words) - held))
    if fault.malformed_json:
        record["outcome"] = "malformed_json"
        state.count("malformed_json")
        state.log(answer, started, 0, "malformed_json", stream=False)
        await wire.text(200, '{"id": "chatcmpl-broken", "choices": [', "application/json")
        return
    record["outcome"] = "ok"
    state.count("ok")
    state.log(answer, started, len(answer.words) - held, "ok", stream=False, held=held)
    tokens = answer.tokens()[held:]
    arguments = "".join(tool_fragments(tokens)) if tool is not None else None
    chunk_id = f"chatcmpl-{state.rng.getrandbits(48):012x}"
    facts = Reply(answer.id, tool, model, record["prompt_tokens"], chunk_id)
    await wire.json(200, surface.completion(facts, tokens, arguments))


def _answer_for(state: EndpointState, prefill: str | None) -> tuple[Answer, int]:
    """A new answer, or the one a prefill is the start of and how many of its words it holds."""
    if prefill is not None:
        found = continued(prefill)
        if found is not None:
            return found
    return state.answer(state.latency.tokens(state.rng)), 0


@dataclass(frozen=True, slots=True)
class _StreamPlan:
    answer: Answer
    held: int
    first_token: float
    per_token: float
    started: float
    model: str
    body: dict[str, Any]
    surface: Surface
    record: dict[str, Any]
    tool: str | None = None
    """Answer as a call of this function, its arguments streamed a fragment per token."""


async def _stream(state: EndpointState, fault: EndpointFault, plan: _StreamPlan, wire: Wire) -> None:
    """The answer (or its rest, after a prefill) as server-sent events; counted and logged once,
    however it ends. Faults count the tokens of this response."""
    tokens = plan.answer.tokens()[plan.held :]
    sent = 0
    owed = 0.0
    outcome = "client_gone"
    try:
        if fault.first_token_after_headers:
            await wire.start_stream()
            await asyncio.sleep(fault.first_token_after_headers)
        await asyncio.sleep(plan.first_token)
        await wire.start_stream()
        chunk_id = f"chatcmpl-{state.rng.getrandbits(48):012x}"
        parts = plan.surface.stream(
            Reply(plan.answer.id, plan.tool, plan.model, plan.record["prompt_tokens"], chunk_id), plan.body
        )
        pieces = tokens if plan.tool is None else tool_fragments(tokens)
        await wire.write(parts.opening())
        for i, piece in enumerate(pieces):
            if fault.cut_after_tokens is not None and i >= fault.cut_after_tokens:
                outcome = "stream_cut"
                wire.hang_up()
                return
            if fault.error_after_tokens is not None and i >= fault.error_after_tokens:
                outcome = "inband_error"
                await wire.write(parts.inband_error())
                await wire.end()
                return
            if fault.stall_after_tokens is not None and i == fault.stall_after_tokens:
                await asyncio.sleep(owed + fault.stall_seconds)
                owed = 0.0
                if fault.close_after_stall:
                    outcome = "stalled_then_closed"
                    wire.hang_up()
                    return
            if fault.malformed_sse and i == fault.malformed_at:
                await wire.write(b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "\n\n')
            await wire.write(parts.piece(piece))
            sent += 1
            owed += plan.per_token
            if owed >= state.token_tick:
                await asyncio.sleep(owed)
                owed = 0.0
        await asyncio.sleep(owed)
        if fault.cut_before_finish:
            outcome = "stream_cut"
            wire.hang_up()
            return
        await wire.write(parts.closing(sent, not fault.no_done))
        outcome = "no_done" if fault.no_done else "ok"  # no_done: a clean HTTP end, no end marker
        await wire.end()
    finally:  # a client that went away mid-stream leaves outcome at "client_gone"
        plan.record["outcome"] = outcome
        state.count(outcome)
        state.log(plan.answer, plan.started, sent, outcome, stream=True, held=plan.held)


def tool_fragments(tokens: list[str]) -> list[str]:
    """A tool call's arguments, `{"text": "<the answer>"}`, cut into one JSON fragment per token:
    the answer (marker first) travels inside the arguments, so a client checks a call it got
    against what the endpoint produced, and a call cut or spliced anywhere no longer parses."""
    parts = [json.dumps(token + " ")[1:-1] for token in tokens]  # escaped, without the quotes
    parts[0] = TOOL_OPEN + parts[0]
    parts[-1] += TOOL_CLOSE
    return parts


TOOL_OPEN, TOOL_CLOSE = '{"text": "', '"}'
