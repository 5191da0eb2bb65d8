"""`pip install model-chaos-harness` is the core alone: it depends on nothing, `import
resilience_core` imports no third-party module, and the harness says which extra it needs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORTED_BY_THE_CORE = """
import sys
before = set(sys.modules)
import resilience_core
from resilience_core import MetricsCollector, openai_chat, transport  # every public name resolves
new = {name.partition(".")[0] for name in set(sys.modules) - before}
print(sorted(new - set(sys.stdlib_module_names) - {"resilience_core"}))
"""


def test_the_core_has_no_dependencies_and_the_harness_is_an_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["dependencies"] == []
    extras = project["optional-dependencies"]
    heavy = {"locust", "gevent", "pandas", "matplotlib", "docker"}
    # gevent comes with locust
    assert {spec.split(">")[0] for spec in extras["harness"]} >= heavy - {"gevent"}
    assert "model-chaos-harness[harness]" in extras["dev"]


def test_importing_the_core_imports_no_third_party_module():
    command = [sys.executable, "-c", IMPORTED_BY_THE_CORE]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_the_cli_without_the_harness_extra_says_what_to_install():
    blocked = "import sys; sys.modules['click'] = None; from harness.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "pip install 'model-chaos-harness[harness]'" in done.stderr and "click" in done.stderr
