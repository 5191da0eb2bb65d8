"""What one response was, read the way a careful client reads it, trusting nothing the system
under test claims about the answer: the content is checked against its marker (integrity.py).

Pure functions over bytes and times, no locust: tested in-process, used by the Locust user.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from harness.load.integrity import CORRUPTED, TRUNCATED, UNMARKED, WHOLE, Verdict, judge


def read_completion(body: bytes, degraded_claim: bool) -> dict[str, Any]:
    """A JSON chat completion: ok only when its content is a whole answer (or an admitted
    degraded stand-in)."""
    try:
        answer = json.loads(body)
        choice = (answer.get("choices") or [])[0]
        message = choice.get("message") or {}
        content = str(message.get("content") or "")
        parsed = True
        calls = message.get("tool_calls") or []
        if calls:
            content, parsed = tool_content(str((calls[0].get("function") or {}).get("arguments") or ""))
        finish = str(choice.get("finish_reason") or "")
        model = str(answer.get("model") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        return {"ok": False, "error_kind": "bad_json", "integrity": ""}
    degraded = degraded_claim or model == "degraded"
    return {"finish_reason": finish, **classify(content, True, False, degraded, parsed)}


TOOL_OPEN = '{"text": "'
"""How the simulated endpoints open a tool call's arguments (`{"text": "<the answer>"}`)."""


def tool_content(arguments: str) -> tuple[str, bool]:
    """The answer a tool call carries, and whether its arguments parse. Arguments that do not
    are read as far as they go (a cut call is a prefix of its answer, a spliced one is not) and
    can never be whole."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments.removeprefix(TOOL_OPEN), False
    if isinstance(parsed, dict) and isinstance(parsed.get("text"), str):
        return parsed["text"], True
    return arguments, True


def _first_call_arguments(call: Any) -> str:
    """The arguments fragment of a tool-call delta, for the first call only (ours make one)."""
    if not isinstance(call, dict) or call.get("index", 0) != 0:
        return ""
    return str((call.get("function") or {}).get("arguments") or "")


def read_stream(
    lines: Iterable[bytes], started: float, degraded_claim: bool, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """A server-sent-event stream: its content and contract (in-band errors, `[DONE]`, time to
    first token, the longest gap between content events), then `classify`."""
    pieces: list[str] = []
    arguments: list[str] = []
    finish = model = ""
    done = inband_error = calling = False
    first: float | None = None
    last = gap = 0.0
    for line in lines:
        if not line or not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            done = True
            break
        try:
            event = json.loads(payload)
        except ValueError:
            continue  # a malformed event: what counts is the content that did arrive
        if not isinstance(event, dict):
            continue
        if event.get("error"):
            inband_error = True
            break
        model = model or str(event.get("model") or "")
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            text = str(delta.get("content") or "")
            calls = delta.get("tool_calls") or []
            called = "".join(_first_call_arguments(call) for call in calls)
            calling = calling or bool(calls)
            if text or called:  # a call's arguments are its answer: timed like content
                now = clock()
                if first is None:
                    first = now
                else:
                    gap = max(gap, now - last)
                last = now
                pieces.append(text)
                arguments.append(called)
            finish = str(choice.get("finish_reason") or finish)
    figures: dict[str, Any] = {
        "finish_reason": finish,
        "done": done,
        "inband_error": inband_error,
        "ttft_ms": round((first - started) * 1000, 3) if first is not None else "",
        "max_gap_ms": round(gap * 1000, 3) if first is not None else "",
    }
    content, parsed = "".join(pieces), True
    if calling:
        content, parsed = tool_content("".join(arguments))
    if inband_error:
        verdict = judge(content)
        return {
            **figures,
            "ok": False,
            "error_kind": "stream_error",
            "integrity": verdict.integrity,
            "answer_id": verdict.answer_id,
            "words": verdict.words,
            "expected_words": verdict.expected,
        }
    claimed = done or bool(finish)
    return {
        **figures,
        **classify(content, claimed, not claimed, degraded_claim or model == "degraded", parsed),
    }


def classify(
    content: str, claimed_complete: bool, ended_open: bool, degraded_claim: bool, parsed: bool = True
) -> dict[str, Any]:
    """ok, error kind and integrity of an answer the system under test delivered with a 200.

    Whole answers are ok whatever the framing said; a prefix presented as complete is a
    truncated success, anything not produced by an endpoint a corrupted one, unless the system
    admits a degraded stand-in; a stream that just stopped (no finish, no `[DONE]`) is cut. A
    tool call whose arguments do not parse (`parsed` False) is at best truncated."""
    verdict = judge(content)
    if not parsed and verdict.integrity == WHOLE:  # every word, but the call's JSON never closed
        verdict = Verdict(TRUNCATED, verdict.answer_id, verdict.words, verdict.expected)
    found = {
        "integrity": verdict.integrity,
        "answer_id": verdict.answer_id,
        "words": verdict.words,
        "expected_words": verdict.expected,
    }
    if verdict.integrity == WHOLE:
        return {**found, "ok": True, "error_kind": ""}
    if verdict.integrity == UNMARKED and degraded_claim:
        return {**found, "ok": True, "error_kind": "", "degraded": True}
    if ended_open and verdict.integrity in (TRUNCATED, UNMARKED):
        return {**found, "ok": False, "error_kind": "stream_truncated"}
    if verdict.integrity == TRUNCATED:
        return {**found, "ok": False, "error_kind": "truncated_success"}
    assert verdict.integrity in (CORRUPTED, UNMARKED)
    return {**found, "ok": False, "error_kind": "corrupted_success"}
