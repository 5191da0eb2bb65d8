"""Quote benchmark figures in the README between markers, so it never shows stale numbers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def quote_in_readme(readme: Path, name: str, text: str) -> bool:
    """Replace what stands between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if not readme.exists():
        return False
    content = readme.read_text(encoding="utf-8")
    if start not in content or end not in content:
        return False
    body = "\n".join(line for line in text.strip().splitlines() if not line.startswith("## "))
    before, rest = content.split(start, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(f"{before}{start}\n{body.strip()}\n{end}{after}", encoding="utf-8")
    return True


def bench_command(module: str, argv: list[str] | None) -> str:
    """How a benchmark was started, as its results page quotes it: `make bench` or the module."""
    if argv is None and len(sys.argv) == 1:
        return "make bench"
    return " ".join([f"python -m {module}", *sys.argv[1:]])


def publish(text: str, data: Any, out: Path, readme: Path, name: str) -> None:
    """Every bench ends the same way: its page (`out`, Markdown), the figures beside it (.json),
    the README's quote refreshed, and the page printed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    quoted = quote_in_readme(readme, name, text)
    print(text)
    print(
        f"written to {out}"
        + (f" and quoted in {readme}" if quoted else f" ({readme} has no bench:{name} markers)")
    )
