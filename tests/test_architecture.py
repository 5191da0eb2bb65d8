"""The dependency arrows of shared/DESIGN.md, checked on every import statement (function-level
ones too): each harness package imports only what its row allows, there is no cycle between
packages, and nothing outside the core reaches past `resilience_core`'s public surface."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "harness"

ALLOWED: dict[str, set[str]] = {
    "endpoints": set(),
    "load": set(),
    "gateway": {"resilience_core"},
    "scenario": {"endpoints", "gateway.config", "reports"},
    "faults": {"scenario", "endpoints"},
    "stack": {"endpoints"},
    "run": {
        "scenario",
        "stack",
        "faults",
        "gateway.launch",
        "gateway.admin.auth",
        "gateway.admin.client",
        "reports",
    },
    "sim": {
        "resilience_core",
        "endpoints",
        "gateway",
        "load.reading",
        "load.records",
        "load.integrity",
        "load.tools",
        "scenario",
        "run",
        "reports",
    },
    "conformance": {
        "endpoints",
        "gateway.launch",
        "load.integrity",
        "load.reading",
        "run.sut",
        "run.target_command",
        "stack",
    },
    "cli": {
        "conformance",
        "run",
        "scenario",
        "stack",
        "gateway.launch",
        "gateway.admin.auth",
        "gateway.admin.client",
        "sim",
        "reports",
        "resilience_core",
    },
}
"""What each package of harness/ may import besides itself. `benchmarks` and the pytest plugin
sit on top and may use anything; nothing imports them (nor `cli`)."""
TOP = {"benchmarks", "pytest_plugin", "cli"}
CORE_PUBLIC = {"resilience_core", "resilience_core.testing"}
"""Where harness and reports may import the core from: its `__all__`, and the fake clock."""


def imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def package_of(path: Path) -> str:
    relative = path.relative_to(HARNESS).with_suffix("")
    return relative.parts[0] if len(relative.parts) > 1 else relative.name


def ours(module: str) -> str | None:
    """`harness.gateway.admin.client` -> `gateway.admin.client`; other roots of ours as they are."""
    root = module.split(".")[0]
    if root == "harness":
        return module.removeprefix("harness.") if "." in module else None
    if root in ("resilience_core", "reports"):
        return root
    return None


def allowed(importer: str, target: str) -> bool:
    if target.split(".")[0] == importer:
        return True
    return any(target == rule or target.startswith(rule + ".") for rule in ALLOWED[importer])


def test_each_package_imports_only_what_its_row_allows():
    wrong = []
    for path in sorted(HARNESS.rglob("*.py")):
        importer = package_of(path)
        if importer in TOP or importer in ("__init__", "__main__"):
            continue
        for module in imports(path):
            target = ours(module)
            if target is not None and not allowed(importer, target):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_nothing_imports_the_packages_on_top():
    wrong = []
    for path in sorted(HARNESS.rglob("*.py")):
        if package_of(path) in TOP or path.name == "__main__.py":
            continue
        for module in imports(path):
            target = ours(module) or ""
            if target.split(".")[0] in TOP:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_no_cycle_between_packages():
    edges: dict[str, set[str]] = {}
    for path in HARNESS.rglob("*.py"):
        importer = package_of(path)
        for module in imports(path):
            target = ours(module)
            if target and module.startswith("harness.") and target.split(".")[0] != importer:
                edges.setdefault(importer, set()).add(target.split(".")[0])
    seen: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        seen[node] = 1
        for nxt in edges.get(node, ()):
            assert seen.get(nxt) != 1, f"import cycle: {' -> '.join([*trail, node, nxt])}"
            if nxt not in seen:
                visit(nxt, [*trail, node])
        seen[node] = 2

    for node in list(edges):
        if node not in seen:
            visit(node, [])


def test_harness_and_reports_use_only_the_cores_public_surface():
    wrong = []
    for path in sorted([*HARNESS.rglob("*.py"), *(ROOT / "reports").rglob("*.py")]):
        for module in imports(path):
            if module.startswith("resilience_core") and module not in CORE_PUBLIC:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_the_load_package_does_not_import_locust_on_import():
    import subprocess
    import sys

    code = "import sys, harness.load, harness.load.records; sys.exit(1 if 'locust' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
