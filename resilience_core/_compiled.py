"""Which build of the hot path runs: the mypyc-compiled modules or their Python sources.

Why compiled: a gateway request crosses the engine, the router, the fallback, the breaker and
the metrics once each; as Python bytecode that was ~26 k instructions a request over the
passthrough path, compiled ~9 k (callgrind, in process), and the policies' share of the
gateway's CPU is one of our targets (docs/benchmarks/gateway.md). `make compile`
(`tools/compile_core.py`) builds them in place; nothing else is needed at run time.

Why the choice is made here, before any of them is imported: mypyc compiles the modules of
`HOT_MODULES` as one group whose modules call each other natively, so a compiled module older
than its source cannot be mixed with that source's new code. Then the whole group runs from
source (with a warning), as it does when `RESILIENCE_CORE_PURE=1` asks for it or when nothing
was compiled: an edit never runs stale code, whichever build is on disk.

Not compiled itself (it decides), and imports nothing outside the standard library.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

PACKAGE = "resilience_core"
HOT_MODULES = (
    "_engine",
    "_expiry",
    "availability",
    "backoff",
    "circuit.breaker",
    "circuit.policy",
    "circuit.window",
    "context",
    "deadline",
    "fallback",
    "metrics",
    "outcome",
    "policy",
    "recovery",
    "retry",
    "router",
)
"""The modules a routed request runs through, relative to the package: `make compile` builds
exactly these."""

GROUP = f"{PACKAGE}.hot_path"
GROUP_LIBRARY = "hot_path__mypyc"
"""The group's shared library in the package (mypyc names it after the group): without it the
compiled modules cannot load."""

PURE_ENV = "RESILIENCE_CORE_PURE"
"""Set to 1 to run the Python sources even where compiled modules are up to date."""

_T = TypeVar("_T")


if TYPE_CHECKING:  # what the compiler reads: it acts on the real one
    from mypy_extensions import mypyc_attr as mypyc_attr
else:

    def mypyc_attr(*_flags: str, **_attrs: Any) -> Callable[[_T], _T]:
        """`mypy_extensions.mypyc_attr` at run time: nothing to do, and no third-party
        package for the core to import."""
        return lambda cls: cls


def _source_of(root: Path, module: str) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def _compiled_of(root: Path, module: str) -> Path | None:
    source = _source_of(root, module)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        built = source.with_name(source.stem + suffix)
        if built.exists():
            return built
    return None


def stale(root: Path, modules: Sequence[str] = HOT_MODULES) -> list[str]:
    """The modules whose compiled form is older than their source (or missing while others of
    the group are compiled): any of them makes the whole group run from source."""
    built = {module: _compiled_of(root, module) for module in modules}
    if not any(built.values()):
        return []
    if _compiled_of(root, GROUP_LIBRARY) is None:
        return list(modules)
    return [
        module
        for module, path in built.items()
        if path is None or path.stat().st_mtime < _source_of(root, module).stat().st_mtime
    ]


def is_compiled(module: ModuleType) -> bool:
    """Whether `module` was loaded from a compiled extension."""
    return not str(getattr(module, "__file__", "")).endswith(".py")


def running_compiled() -> bool:
    """Whether the group runs compiled in this process (all of it or none, see above)."""
    return is_compiled(sys.modules[f"{PACKAGE}._engine"])


class _SourceFirst:
    """A meta path finder that loads the group's modules from their `.py` files, ahead of the
    extension modules beside them (which the path finder would otherwise prefer)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names = {f"{PACKAGE}.{module}": module for module in HOT_MODULES}

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> Any:
        module = self.names.get(fullname)
        if module is None:
            return None
        source = _source_of(self.root, module)
        loader = importlib.machinery.SourceFileLoader(fullname, str(source))
        return importlib.util.spec_from_file_location(fullname, source, loader=loader)


def choose(root: Path) -> None:
    """Run the group from source when asked to, or when its compiled form is stale. Runs as
    this module is imported, which the package's `__init__` does before any of the group."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        sys.meta_path.insert(0, _SourceFirst(root))
        return
    behind = stale(root)
    if behind:
        warnings.warn(
            f"{PACKAGE}: the compiled {', '.join(behind)} is older than its source: running the "
            "Python sources of the whole hot path (`make compile` rebuilds it)",
            RuntimeWarning,
            stacklevel=3,
        )
        sys.meta_path.insert(0, _SourceFirst(root))


choose(Path(__file__).parent)
