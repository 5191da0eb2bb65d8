"""Each package's public surface is explicit, sorted, importable and side-effect free."""

import difflib
import importlib
import subprocess
import sys

import pytest

from tests import api_snapshot

PACKAGES = [
    "resilience_core",
    "resilience_core.circuit",
    "harness",
    "harness.cli",
    "harness.endpoints",
    "harness.faults",
    "harness.run",
    "harness.scenario",
    "harness.stack",
    "reports",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_unique_and_importable(name):
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n.startswith("_"), n.lower()))
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol} is listed but missing"


def test_spec_names_are_importable_from_resilience_core():
    import resilience_core as rc

    for name in [
        "HealthChecker",
        "MetricsCollector",
        "CircuitBreaker",
        "RetryManager",
        "SequentialFallback",
        "ParallelFallback",
        "WeightedFallback",
        "AutoRecovery",
        "RecoveryService",
    ]:
        assert name in rc.__all__
    assert rc.RetryManager is rc.Retry
    assert issubclass(rc.ParallelFallback, rc.Fallback)


def test_every_public_name_has_a_docstring():
    import resilience_core as rc

    missing = [
        n
        for n in rc.__all__
        if callable(getattr(rc, n))
        and isinstance(getattr(rc, n), type)
        and not (getattr(rc, n).__doc__ or "").strip()
    ]
    assert missing == []


def test_core_imports_nothing_of_ours_nor_locust():
    code = (
        "import sys, resilience_core, resilience_core.testing;"
        "ours = ('harness', 'reports', 'locust', 'gevent');"
        "bad = [m for m in sys.modules if m.split('.')[0] in ours];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_reports_read_run_files_only_never_the_harness_nor_locust():
    code = (
        "import sys, reports;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('harness', 'locust', 'gevent')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("package", api_snapshot.PACKAGES)
def test_public_api_matches_its_checked_in_snapshot(package):
    """Names, signatures and public members, compared with tests/api/<package>.txt: a change to
    the public surface is made on purpose (`python -m tests.api_snapshot`) and seen in review."""
    expected = (api_snapshot.SNAPSHOTS / f"{package}.txt").read_text(encoding="utf-8")
    actual = api_snapshot.describe(package)
    diff = "\n".join(
        difflib.unified_diff(expected.splitlines(), actual.splitlines(), "snapshot", "now", lineterm="")
    )
    assert actual == expected, f"the public API of {package} changed:\n{diff}"
