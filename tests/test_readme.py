"""The README's example runs and prints exactly what the README says it prints."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_prints_the_documented_output(tmp_path):
    text = README.read_text(encoding="utf-8")
    example = re.search(r"## The core in one example\s+```python\n(.*?)```", text, re.S).group(1)
    documented = re.search(r"Output \(kept true.*?```text\n(.*?)```", text, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == documented


def test_readme_opens_with_the_two_commands():
    head = README.read_text(encoding="utf-8")[:400]
    assert "make demo" in head and "make test" in head


def test_readme_composition_snippet_builds():
    text = README.read_text(encoding="utf-8")
    snippet = re.search(r"### Composing policies yourself.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "README", "exec"), namespace)
    assert [d.split("(")[0] for d in namespace["pipeline"].describe()] == [
        "Deadline",
        "Retry",
        "CircuitBreaker",
        "Timeout",
        "Metrics",
    ]
