"""docs/benchmarks.md: the core, gateway and suite benchmarks in one page, each as its run wrote it."""

from __future__ import annotations

import argparse
from pathlib import Path

PARTS = ("core.md", "gateway.md", "speed.md", "suite.md", "simulation.md", "peers.md")
"""peers.md is written by `make bench-peers` (it installs LiteLLM), the others by `make bench`."""
HEADER = """# Benchmarks

Written by `make bench` (each part by its own module under `harness/benchmarks/`; the data behind
each table is the `.json` file beside its `.md` in `docs/benchmarks/`). These machines are shared
and noisy: compare the ratios measured side by side in one run, not absolute figures across runs.
"""


def combine(folder: Path) -> str:
    sections = [HEADER]
    for name in PARTS:
        part = folder / name
        body = part.read_text(encoding="utf-8").strip() if part.exists() else f"## {name}\n\n(not run yet)"
        sections.append(body)
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    args.out.write_text(combine(args.folder), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
