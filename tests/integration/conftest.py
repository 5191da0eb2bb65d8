"""Integration tests start real processes on 127.0.0.1: endpoints, Toxiproxy, gateway, Locust."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from harness.stack import PROJECT_ROOT
from harness.stack.toxiproxy import find_server_binary


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def toxiproxy_binary() -> Path:
    binary = find_server_binary(PROJECT_ROOT)
    if binary is None:
        pytest.fail("toxiproxy-server is missing: run `make toxiproxy` (make test does it for you)")
    return binary


def read_records(folder: Path) -> list[dict[str, str]]:
    with (folder / "records.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def in_window(rows: list[dict[str, str]], start: float, end: float) -> list[dict[str, str]]:
    return [r for r in rows if start <= float(r["t"]) < end]
