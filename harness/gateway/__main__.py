"""`python -m harness.gateway --config gateway.yaml [--ready-file F]`: serve the gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from harness.gateway.app import serve
from harness.gateway.config import GatewayConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenAI-compatible resilient gateway")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(GatewayConfig.load(args.config), args.ready_file))
    return 0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (not on Windows): with the front answering chat
    requests, the event loop is a larger share of what is left, and uvloop cut the gateway's
    CPU per request by ~9 % (docs/benchmarks/gateway.md); else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    raise SystemExit(main())
