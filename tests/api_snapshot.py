"""The public API of each package as text: exported names, signatures and public members.

`tests/test_public_api.py` compares it with `tests/api/<package>.txt`; after a deliberate change,
`python -m tests.api_snapshot` rewrites those files, so the change shows in review (as Polly's
API files do).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "api"
PACKAGES = ("resilience_core", "reports")


def _signature(obj: object) -> str:
    try:
        text = str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"
    return re.sub(r" at 0x[0-9a-f]+", "", text)  # a default's address changes every run


def _members(cls: type) -> list[str]:
    lines = []
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_") and name != "__call__":
            continue
        if isinstance(member, property):
            lines.append(f"    {name}: property")
        elif isinstance(member, staticmethod | classmethod):
            lines.append(f"    {name}{_signature(member.__func__)}")
        elif inspect.isfunction(member):
            lines.append(f"    {name}{_signature(member)}")
    return lines


def describe(package: str) -> str:
    module = importlib.import_module(package)
    lines = [f"# {package}: {len(module.__all__)} names"]
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            bases = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
            lines.append(f"class {name}({bases}){_signature(obj)}")
            lines.extend(_members(obj))
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            lines.append(f"def {name}{_signature(obj)}")
        else:
            lines.append(f"{name}: {type(obj).__name__}")
    return "\n".join(lines) + "\n"


def main() -> int:
    for package in PACKAGES:
        path = SNAPSHOTS / f"{package}.txt"
        path.write_text(describe(package), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
