"""The client's reading of a response trusts the content's marker, never the framing: a cut
answer that ends with `finish_reason: stop` and `[DONE]` is a truncated success."""

import json

from harness.endpoints.answers import Answer
from harness.endpoints.behaviour import tool_fragments
from harness.load.reading import read_completion, read_stream

ANSWER = Answer.new("00000000abcd", 12)


def event(content: str | None = None, finish: str | None = None, model: str = "model-0") -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {"model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode()


def stream(tokens: list[str], *, finish: bool = True, done: bool = True, error: bool = False) -> list[bytes]:
    lines = [event("", None), *(event(t + " ") for t in tokens)]
    if error:
        lines.append(b'data: {"error": {"message": "stream failed", "type": "stream_error"}}')
    if finish:
        lines.append(event(None, "stop"))
    if done:
        lines.append(b"data: [DONE]")
    return lines


def clock(times: list[float]):
    ticks = iter(times)
    return lambda: next(ticks)


def test_a_whole_stream_is_ok_with_or_without_done():
    whole = read_stream(stream(ANSWER.tokens()), 0.0, False, clock([0.1 * i for i in range(1, 20)]))
    assert (whole["ok"], whole["integrity"], whole["words"], whole["done"]) == (True, "whole", 12, True)
    assert whole["ttft_ms"] == 100.0 and whole["max_gap_ms"] == 100.0
    no_done = read_stream(stream(ANSWER.tokens(), done=False), 0.0, False)
    assert (no_done["ok"], no_done["done"]) == (True, False)


def test_a_cut_stream_dressed_as_complete_is_a_truncated_success():
    cut = read_stream(stream(ANSWER.tokens()[:5]), 0.0, False)
    assert (cut["ok"], cut["error_kind"], cut["integrity"], cut["words"], cut["expected_words"]) == (
        False,
        "truncated_success",
        "truncated",
        5,
        12,
    )


def test_an_honest_cut_is_an_error_but_not_a_truncated_success():
    honest = read_stream(stream(ANSWER.tokens()[:5], finish=False, done=False, error=True), 0.0, False)
    assert (honest["ok"], honest["error_kind"], honest["inband_error"]) == (False, "stream_error", True)
    closed = read_stream(stream(ANSWER.tokens()[:5], finish=False, done=False), 0.0, False)
    assert (closed["ok"], closed["error_kind"]) == (False, "stream_truncated")


def test_content_no_endpoint_produced_is_corrupted_unless_admitted_as_degraded():
    made_up = read_stream(stream(["hello", "there"]), 0.0, False)
    assert (made_up["ok"], made_up["error_kind"], made_up["integrity"]) == (
        False,
        "corrupted_success",
        "unmarked",
    )
    admitted = read_stream(stream(["busy,", "try", "later"]), 0.0, True)
    assert (admitted["ok"], admitted.get("degraded")) == (True, True)
    spliced = [*ANSWER.tokens()[:6], *Answer.new("00000000abce", 12).words[5:]]
    assert read_stream(stream(spliced), 0.0, False)["error_kind"] == "corrupted_success"


def test_a_completion_is_judged_by_its_content():
    def completion(content: str) -> bytes:
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        return json.dumps({"model": "m", "choices": [choice]}).encode()

    assert read_completion(completion(ANSWER.text()), False)["ok"] is True
    cut = read_completion(completion(" ".join(ANSWER.tokens()[:3])), False)
    assert (cut["ok"], cut["error_kind"]) == (False, "truncated_success")
    assert read_completion(b'{"choices": [', False)["error_kind"] == "bad_json"


def tool_stream(fragments: list[str], *, finish: bool = True) -> list[bytes]:
    """A streamed tool call as the endpoints send it: the call's opening, then its arguments."""
    opening = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
        ],
    }
    deltas = [opening, *({"tool_calls": [{"index": 0, "function": {"arguments": f}}]} for f in fragments)]
    lines = [
        b"data: "
        + json.dumps(
            {"model": "model-0", "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
        ).encode()
        for d in deltas
    ]
    if finish:
        lines += [event(None, "tool_calls"), b"data: [DONE]"]
    return lines


def test_a_tool_call_is_judged_by_the_answer_its_arguments_carry():
    fragments = tool_fragments(ANSWER.tokens())
    whole = read_stream(tool_stream(fragments), 0.0, False)
    assert (whole["ok"], whole["integrity"], whole["finish_reason"]) == (True, "whole", "tool_calls")
    assert whole["ttft_ms"] != ""  # the first argument fragment is the first token
    # Cut before its closing brace yet dressed as complete: every word, JSON that never closed.
    unclosed = read_stream(tool_stream([*fragments[:-1], fragments[-1].removesuffix('"}')]), 0.0, False)
    assert (unclosed["ok"], unclosed["error_kind"]) == (False, "truncated_success")
    cut = read_stream(tool_stream(fragments[:4], finish=False), 0.0, False)
    assert (cut["ok"], cut["error_kind"], cut["words"]) == (False, "stream_truncated", 4)
    other = Answer.new("00000000beef", 12)
    spliced = read_stream(tool_stream([*fragments[:4], *tool_fragments(other.tokens())]), 0.0, False)
    assert not spliced["ok"] and spliced["error_kind"] in ("corrupted_success", "truncated_success")


def test_a_tool_call_in_a_json_completion_is_judged_the_same_way():
    arguments = "".join(tool_fragments(ANSWER.tokens()))

    def completion(args: str) -> bytes:
        call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": args}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return json.dumps(
            {"model": "model-0", "choices": [{"message": message, "finish_reason": "tool_calls"}]}
        ).encode()

    assert read_completion(completion(arguments), False)["ok"]
    broken = read_completion(completion(arguments[:-2]), False)
    assert (broken["ok"], broken["error_kind"]) == (False, "truncated_success")
    assert not read_completion(completion('{"text": "made up"}'), False)["ok"]
