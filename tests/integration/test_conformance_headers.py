"""The conformance suite judges gateways that take their routing from each request (Portkey's
`x-portkey-config`): every request of a case carries the header, and the config written for
the suite routes the case's model to the primary and the fallback to the secondary."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.conformance import load, run_conformance
from harness.conformance.runner import FALLBACK, peer_config


class HeaderRecorder:
    """A stand-in gateway on 127.0.0.1 that writes down each request's header and answers 503."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self.ready = threading.Event()
        self.url = ""
        self.loop = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        import asyncio

        async def chat(request: web.Request) -> web.Response:
            self.seen.append(request.headers.get("x-portkey-config"))
            return web.json_response({"error": {"message": "no"}}, status=503)

        async def main() -> None:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", chat)
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            self.url = str(server.make_url("")).rstrip("/")
            self.stopped = asyncio.Event()
            self.loop = asyncio.get_running_loop()
            self.ready.set()
            await self.stopped.wait()
            await server.close()

        asyncio.run(main())

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(timeout=10)


@pytest.fixture
def recorder() -> Iterator[HeaderRecorder]:
    found = HeaderRecorder()
    found.thread.start()
    assert found.ready.wait(10)
    yield found
    found.stop()


def test_every_request_of_a_case_carries_the_header(tmp_path, recorder):
    config = '{"strategy": {"mode": "fallback"}}'
    catalogue = load("fast", only=("S11",))
    results = run_conformance(
        catalogue,
        tmp_path,
        target=recorder.url,
        headers=(("x-portkey-config", config),),
        progress=lambda line: None,
    )
    assert len(recorder.seen) >= 2  # the case's request and the fallback's liveness check
    assert set(recorder.seen) == {config}
    assert results["cases"][0]["verdict"] in ("safe", "fail")  # a 503 is never a pass


def test_the_portkey_config_for_the_suite_passes_the_cases_model_to_the_primary():
    described = {"base_urls": {"model-0": "http://127.0.0.1:1/v1", "model-1": "http://127.0.0.1:2/v1"}}
    config = json.loads(peer_config(load("fast"), described)("portkey"))
    primary, secondary = config["targets"]
    assert config["strategy"] == {"mode": "fallback"}
    assert primary["custom_host"] == "http://127.0.0.1:1/v1" and "override_params" not in primary
    assert primary["retry"]["attempts"] == 2
    assert secondary == {
        "provider": "openai",
        "api_key": "unused",
        "custom_host": "http://127.0.0.1:2/v1",
        "override_params": {"model": FALLBACK},
    }
