"""Compile the core's hot path (`resilience_core._compiled.HOT_MODULES`) with mypyc, in place.

`make compile` runs it (and `make setup` asks for it); `--remove` deletes what it built, so the
sources run. Why compiled, and how a stale build is never run: `resilience_core/_compiled.py`.
Needs mypy (the `dev` extra) and a C compiler; without them the core runs from source, slower.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "resilience_core"
BUILD_TEMP = ROOT / "build" / "mypyc"


def _selection() -> ModuleType:
    """`resilience_core/_compiled.py` alone (the package would import the modules it builds)."""
    spec = importlib.util.spec_from_file_location("_core_build_selection", PACKAGE_DIR / "_compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # "stale": of course, it is about to be rebuilt
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    return module


def built_files(selection: ModuleType) -> list[Path]:
    """Every extension module a previous build left: the group's modules and its library."""
    found = [path for module in selection.HOT_MODULES for path in _extensions(PACKAGE_DIR, module)]
    return found + _extensions(PACKAGE_DIR, selection.GROUP_LIBRARY)


def _extensions(root: Path, module: str) -> list[Path]:
    base = root.joinpath(*module.split("."))
    return sorted(base.parent.glob(base.name + ".*.so")) + sorted(base.parent.glob(base.name + ".*.pyd"))


def compile_hot_path(selection: ModuleType) -> None:
    # Imported here: only building needs them (mypy is a dev dependency, setuptools a build one).
    from mypyc.build import mypycify
    from setuptools import Distribution

    sources = [f"resilience_core/{module.replace('.', '/')}.py" for module in selection.HOT_MODULES]
    os.chdir(ROOT)  # mypyc names modules by their paths from here
    extensions = mypycify(sources, opt_level="3", group_name=selection.GROUP)
    # A bare Distribution: `setup()` would also read pyproject.toml, which is not about this.
    dist = Distribution({"name": "resilience-core-hot-path", "ext_modules": extensions})
    build = dist.get_command_obj("build_ext")
    build.inplace = True  # type: ignore[attr-defined]
    build.build_temp = str(BUILD_TEMP)  # type: ignore[attr-defined]
    dist.run_command("build_ext")
    for path in built_files(selection):
        path.touch()  # newer than every source it was built from, whatever the build's order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remove", action="store_true", help="delete the compiled modules: run the sources")
    args = parser.parse_args(argv)
    selection = _selection()
    for path in built_files(selection):
        path.unlink()
    if args.remove:
        print("resilience_core: compiled modules removed; the hot path runs from source")
        return 0
    try:
        compile_hot_path(selection)
    except Exception as exc:  # a missing compiler or mypy: say so, and leave the sources to run
        for path in built_files(selection):
            path.unlink()
        print(f"resilience_core: compiling the hot path failed ({exc}); it runs from source", file=sys.stderr)
        return 1
    names = ", ".join(selection.HOT_MODULES)
    print(f"resilience_core: compiled {len(selection.HOT_MODULES)} modules with mypyc ({names})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
