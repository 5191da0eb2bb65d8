"""`python -m harness.gateway --config gateway.yaml [--ready-file F]`: serve the gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from harness.gateway.app import serve
from harness.gateway.config import GatewayConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenAI-compatible resilient gateway")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(GatewayConfig.load(args.config), args.ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
