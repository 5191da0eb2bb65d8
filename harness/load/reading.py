"""What one response was, read the way a careful client reads it, trusting nothing the system
under test claims about the answer: the content is checked against its marker (integrity.py).

Pure functions over bytes and times, no locust: tested in-process, used by the Locust user.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from harness.load.integrity import CORRUPTED, TRUNCATED, UNMARKED, WHOLE, judge


def read_completion(body: bytes, degraded_claim: bool) -> dict[str, Any]:
    """A JSON chat completion: ok only when its content is a whole answer (or an admitted
    degraded stand-in)."""
    try:
        answer = json.loads(body)
        choice = (answer.get("choices") or [])[0]
        content = str((choice.get("message") or {}).get("content") or "")
        finish = str(choice.get("finish_reason") or "")
        model = str(answer.get("model") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        return {"ok": False, "error_kind": "bad_json", "integrity": ""}
    return {"finish_reason": finish, **classify(content, True, False, degraded_claim or model == "degraded")}


def read_stream(
    lines: Iterable[bytes], started: float, degraded_claim: bool, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """A server-sent-event stream: its content and contract (in-band errors, `[DONE]`, time to
    first token, the longest gap between content events), then `classify`."""
    pieces: list[str] = []
    finish = model = ""
    done = inband_error = False
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
            text = (choice.get("delta") or {}).get("content") or ""
            if text:
                now = clock()
                if first is None:
                    first = now
                else:
                    gap = max(gap, now - last)
                last = now
                pieces.append(str(text))
            finish = str(choice.get("finish_reason") or finish)
    figures: dict[str, Any] = {
        "finish_reason": finish,
        "done": done,
        "inband_error": inband_error,
        "ttft_ms": round((first - started) * 1000, 3) if first is not None else "",
        "max_gap_ms": round(gap * 1000, 3) if first is not None else "",
    }
    if inband_error:
        verdict = judge("".join(pieces))
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
        **classify("".join(pieces), claimed, not claimed, degraded_claim or model == "degraded"),
    }


def classify(content: str, claimed_complete: bool, ended_open: bool, degraded_claim: bool) -> dict[str, Any]:
    """ok, error kind and integrity of an answer the system under test delivered with a 200.

    Whole answers are ok whatever the framing said; a prefix presented as complete is a
    truncated success, anything not produced by an endpoint a corrupted one, unless the system
    admits a degraded stand-in; a stream that just stopped (no finish, no `[DONE]`) is cut."""
    verdict = judge(content)
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
