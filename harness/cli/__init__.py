"""Click commands only: each parses, calls one function of the harness, prints, and maps errors to
exit codes (0 ok, 1 an SLO breached, 2 bad input or environment, 130 interrupted)."""

from __future__ import annotations

import sys

HARNESS_EXTRA = frozenset(
    {"aiohttp", "click", "prometheus_client", "pydantic", "yaml", "toxiproxy", "locust", "faker"}
    | {"pandas", "matplotlib", "hypothesis"}
)
"""Top-level modules of the `harness` extra: `pip install model-chaos-harness` is the core alone."""

try:
    from harness.cli.main import cli, main
except ModuleNotFoundError as missing:
    if (missing.name or "").partition(".")[0] not in HARNESS_EXTRA:
        raise
    _absent = missing.name

    def main() -> int:  # type: ignore[misc]  # stands in for the click group when the extra is absent
        print(
            f"chaos-harness needs the harness extra ({_absent} is not installed): "
            "pip install 'model-chaos-harness[harness]'",
            file=sys.stderr,
        )
        return 2

    cli = None  # type: ignore[assignment]

__all__ = ["cli", "main"]
