"""Wrap an official SDK client as a model call, in one line.

`openai_chat(client, "gpt-4o-mini")` is the `call` of a `ModelSpec`: the request is the keyword
arguments of `chat.completions.create` (messages, temperature, ...), and the model is fixed per
spec, so the router picks it. The SDK's own retries are switched off (`max_retries=0`): left on,
each of the core's attempts would hide two more behind it, past the breaker and the deadline.
Its errors need no mapping: statuses and codes are read from them (`status_code`, `code`,
`Retry-After`), and its connection errors and timeouts are recognised by name
(`transport.transport_failure`). Nothing here imports the SDK.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any


def openai_chat(client: Any, model: str, **defaults: Any) -> Callable[[Mapping[str, Any]], Awaitable[Any]]:
    """A call for `ModelSpec` that sends `request` to `client.chat.completions.create` for `model`.

    Works with `openai.AsyncOpenAI` and `AsyncAzureOpenAI`, and any client with the same surface
    (an OpenAI-compatible gateway's SDK). `defaults` are sent with every request; the request's
    own keys win, except `model`. A streamed request (`stream=True`) returns the SDK's stream as
    it is: the call succeeds once the stream opened, and what fails after is the caller's."""
    quiet = client.with_options(max_retries=0) if hasattr(client, "with_options") else client
    create = quiet.chat.completions.create

    async def call(request: Mapping[str, Any]) -> Any:
        return await create(**{**defaults, **request, "model": model})

    call.__qualname__ = f"openai_chat({model!r})"
    return call
