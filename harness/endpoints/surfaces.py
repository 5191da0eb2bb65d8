"""The wire formats a simulated model speaks: OpenAI's Chat Completions and Anthropic's Messages.

`respond` decides what happens to a request (the fault, the answer, its timing); a `Surface`
says how that looks on the wire: the request's messages and options, the JSON answer, the
events of a stream, the error bodies. Every endpoint serves both, on their own paths, with the
same answers, counts and faults, so a gateway that calls providers in Anthropic's format meets
the same incidents as one that calls OpenAI's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OPENAI_ERROR_CODES = {
    429: "rate_limit_exceeded",
    503: "overloaded",
    500: "server_error",
    400: "context_length_exceeded",
}

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
"""Anthropic's error `type` per status (its API docs' "HTTP errors"); other 5xx read `api_error`."""


def openai_error(message: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "simulated_error", "param": param, "code": code}}


def text_of(content: Any) -> str:
    """A message's text: a string, or (Anthropic, and OpenAI's content parts) its text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", "")) for block in content if isinstance(block, dict) and "text" in block
        )
    return ""


@dataclass(frozen=True, slots=True)
class StreamParts:
    """The events of one streamed answer, in order: `opening` once, a `piece` per token (or tool
    argument fragment), then `closing` with the count sent; `inband_error` ends it early."""

    opening: Callable[[], bytes]
    piece: Callable[[str], bytes]
    closing: Callable[[int, bool], bytes]
    """(tokens sent, with the `[DONE]`-style end marker) -> the rest of a complete stream."""
    inband_error: Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class Reply:
    """What every wire format says about one answer, whatever its shape."""

    answer_id: str
    tool: str | None
    """Answered as a call of this function (its arguments the answer), or as text."""
    model: str
    prompt_tokens: int
    response_id: str
    """`chatcmpl-<hex>`; Anthropic's message id is `msg_<hex>`."""

    @property
    def message_id(self) -> str:
        return f"msg_{self.response_id.removeprefix('chatcmpl-')}"


class OpenAISurface:
    """`POST /v1/chat/completions`: `choices[0].message` or `chat.completion.chunk` events
    ending in `data: [DONE]`."""

    def error(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ) -> dict[str, Any]:
        return openai_error(message, code or OPENAI_ERROR_CODES.get(status, "server_error"), param)

    def prefill(self, body: dict[str, Any]) -> str | None:
        messages = body.get("messages") or []
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        return text_of(last.get("content", "")) if last.get("role") == "assistant" else None

    def tool(self, body: dict[str, Any]) -> str | None:
        tools = body.get("tools")
        if not isinstance(tools, list) or not tools or body.get("tool_choice") == "none":
            return None
        first = tools[0] if isinstance(tools[0], dict) else {}
        function = first.get("function")
        return str((function.get("name") if isinstance(function, dict) else None) or "tool")

    def completion(self, reply: Reply, tokens: list[str], arguments: str | None) -> dict[str, Any]:
        answer_id, tool, model, prompt_tokens = reply.answer_id, reply.tool, reply.model, reply.prompt_tokens
        message: dict[str, Any] = {"role": "assistant", "content": " ".join(tokens)}
        if tool is not None:
            call = _openai_call({"id": f"call_{answer_id}", "type": "function"}, tool, arguments or "")
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return {
            "id": reply.response_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "stop" if tool is None else "tool_calls"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_tokens + len(tokens),
            },
        }

    def stream(self, reply: Reply, body: dict[str, Any]) -> StreamParts:
        answer_id, tool, model, prompt_tokens = reply.answer_id, reply.tool, reply.model, reply.prompt_tokens
        usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            event = {
                "id": reply.response_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(event)}\n\n".encode()

        def opening() -> bytes:
            if tool is None:
                return chunk({"role": "assistant", "content": ""}, None)
            call = {"id": f"call_{answer_id}", "type": "function"}
            return chunk(
                {"role": "assistant", "content": None, "tool_calls": [_openai_call(call, tool, "")]}, None
            )

        def piece(text: str) -> bytes:
            if tool is None:
                return chunk({"content": text + " "}, None)
            return chunk({"tool_calls": [_openai_call({}, None, text)]}, None)

        def closing(sent: int, done: bool) -> bytes:
            out = chunk({}, "stop" if tool is None else "tool_calls")
            if usage:
                counts = {"prompt_tokens": prompt_tokens, "completion_tokens": sent}
                counts["total_tokens"] = prompt_tokens + sent
                event = {
                    "id": reply.response_id,
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [],
                }
                out += f"data: {json.dumps({**event, 'usage': counts})}\n\n".encode()
            return out + (b"data: [DONE]\n\n" if done else b"")

        def inband_error() -> bytes:
            error = {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
            return f"data: {json.dumps({'error': error})}\n\n".encode()

        return StreamParts(opening, piece, closing, inband_error)


def _openai_call(call: dict[str, Any], name: str | None, arguments: str) -> dict[str, Any]:
    """One tool call (whole), or one delta of it (`index`, and the name only in the first)."""
    function = {"arguments": arguments} if name is None else {"name": name, "arguments": arguments}
    return {"index": 0, **call, "function": function}


class AnthropicSurface:
    """`POST /v1/messages`: a `message` with content blocks, or its named server-sent events
    (`message_start`, `content_block_start`, `ping`, `content_block_delta`...,
    `content_block_stop`, `message_delta`, `message_stop`); errors as `{"type": "error"}`,
    in a stream as an `error` event. Prefill is the API's own: a last assistant message."""

    def error(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ) -> dict[str, Any]:
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def prefill(self, body: dict[str, Any]) -> str | None:
        return OPENAI.prefill(body)

    def tool(self, body: dict[str, Any]) -> str | None:
        tools = body.get("tools")
        choice = body.get("tool_choice")
        if (
            not isinstance(tools, list)
            or not tools
            or (isinstance(choice, dict) and choice.get("type") == "none")
        ):
            return None
        first = tools[0] if isinstance(tools[0], dict) else {}
        return str(first.get("name") or "tool")

    def completion(self, reply: Reply, tokens: list[str], arguments: str | None) -> dict[str, Any]:
        answer_id, tool, model, prompt_tokens = reply.answer_id, reply.tool, reply.model, reply.prompt_tokens
        if tool is None:
            content = [{"type": "text", "text": " ".join(tokens)}]
        else:
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{answer_id}",
                    "name": tool,
                    "input": json.loads(arguments or "{}"),
                }
            ]
        return {
            "id": reply.message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "end_turn" if tool is None else "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": len(tokens)},
        }

    def stream(self, reply: Reply, body: dict[str, Any]) -> StreamParts:
        answer_id, tool, model, prompt_tokens = reply.answer_id, reply.tool, reply.model, reply.prompt_tokens

        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        def opening() -> bytes:
            message: dict[str, Any] = {
                "id": reply.message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": 1},
            }
            block: dict[str, Any] = {"type": "text", "text": ""}
            if tool is not None:
                block = {"type": "tool_use", "id": f"toolu_{answer_id}", "name": tool, "input": {}}
            return (
                event("message_start", {"message": message})
                + event("content_block_start", {"index": 0, "content_block": block})
                + event("ping", {})
            )

        def piece(text: str) -> bytes:
            delta = (
                {"type": "text_delta", "text": text + " "}
                if tool is None
                else {"type": "input_json_delta", "partial_json": text}
            )
            return event("content_block_delta", {"index": 0, "delta": delta})

        def closing(sent: int, done: bool) -> bytes:
            out = event("content_block_stop", {"index": 0}) + event(
                "message_delta",
                {
                    "delta": {
                        "stop_reason": "end_turn" if tool is None else "tool_use",
                        "stop_sequence": None,
                    },
                    "usage": {"output_tokens": sent},
                },
            )
            return out + (event("message_stop", {}) if done else b"")

        def inband_error() -> bytes:
            return event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})

        return StreamParts(opening, piece, closing, inband_error)


OPENAI = OpenAISurface()
ANTHROPIC = AnthropicSurface()
Surface = OpenAISurface | AnthropicSurface
