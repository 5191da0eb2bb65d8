"""The README's `openai` example runs as written, with the real SDK, against a simulated endpoint
behind the real Toxiproxy, and prints what the README says it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness.stack import start_stack

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_openai_example_fails_over_a_dead_model_and_opens_its_breaker(tmp_path: Path):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**With the official `openai` client**") :]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    documented = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    stack = start_stack(1, tmp_path / "stack")
    try:
        url = f"{stack.proxy_urls['model-0']}/v1"
        env = {**os.environ, "OPENAI_BASE_URL": url, "OPENAI_API_KEY": "unused"}
        command = [sys.executable, str(script)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    finally:
        stack.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == documented
