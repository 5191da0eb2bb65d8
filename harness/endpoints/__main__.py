"""`python -m harness.endpoints --models 3 --ready-file ready.json`: the simulated models.

Ports are chosen by the OS and written to the ready file, which is how the runner learns them;
in a container, `--host 0.0.0.0 --port-base 18000` fixes them instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import replace
from pathlib import Path

from harness.endpoints.app import serve
from harness.endpoints.model import LatencyModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulated OpenAI-compatible model endpoints")
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--prefix", default="model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", default="{}", help="JSON of LatencyModel fields")
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument(
        "--port-base", type=int, default=0, help="model i listens on this + i (containers); 0: OS-chosen"
    )
    args = parser.parse_args(argv)
    latency = replace(LatencyModel(), **json.loads(args.latency))
    names = [f"{args.prefix}-{i}" for i in range(args.models)]
    asyncio.run(serve(names, latency, args.seed, args.host, args.ready_file, args.port_base))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
