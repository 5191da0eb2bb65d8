"""The compiled hot path is used only when it is current, and the sources pass the same tests.

`make test` runs with the hot path compiled (`make compile`); these check that the choice
between the two builds is right and that the build not chosen still works.
"""

import importlib.machinery
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import resilience_core
from resilience_core import _compiled

ROOT = Path(resilience_core.__file__).parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _package(tmp_path: Path, modules: tuple[str, ...], *, built: tuple[str, ...], library: bool) -> Path:
    """A fake package: each module's source, an extension beside the `built` ones (newer),
    and the group's library in it when `library`."""
    root = tmp_path / "resilience_core"
    then = time.time() - 100
    for module in modules:
        source = root.joinpath(*module.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
        os.utime(source, (then, then))
        if module in built:
            source.with_name(source.stem + SUFFIX).write_text("")
    if library:
        (root / (_compiled.GROUP_LIBRARY + SUFFIX)).write_text("")
    return root


MODULES = ("_engine", "circuit.breaker", "router")


def test_a_build_is_stale_when_a_source_is_newer_or_a_part_is_missing(tmp_path):
    assert _compiled.stale(_package(tmp_path / "a", MODULES, built=(), library=False), MODULES) == []
    fresh = _package(tmp_path / "b", MODULES, built=MODULES, library=True)
    assert _compiled.stale(fresh, MODULES) == []
    (fresh / "circuit" / "breaker.py").write_text("# edited after the build\n")
    assert _compiled.stale(fresh, MODULES) == ["circuit.breaker"]
    partial = _package(tmp_path / "c", MODULES, built=("_engine", "router"), library=True)
    assert _compiled.stale(partial, MODULES) == ["circuit.breaker"]
    no_library = _package(tmp_path / "d", MODULES, built=MODULES, library=False)
    assert _compiled.stale(no_library, MODULES) == list(MODULES)


def _builds(env: dict[str, str], cwd: Path = ROOT.parent) -> tuple[set[bool], str]:
    """Which build each hot module was loaded from, in a fresh interpreter started in `cwd`
    (first on its path), and its stderr."""
    code = (
        "import sys, resilience_core\n"
        "from resilience_core import _compiled\n"
        "print(sorted({_compiled.is_compiled(sys.modules['resilience_core.' + m]) "
        "for m in _compiled.HOT_MODULES}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(eval(done.stdout)), done.stderr


def test_the_whole_group_comes_from_one_build_and_the_sources_when_asked():
    expected = not _compiled.stale(ROOT) and _compiled._compiled_of(ROOT, "_engine") is not None
    assert _builds({_compiled.PURE_ENV: "0"})[0] == {expected} == {resilience_core.compiled()}
    assert _builds({_compiled.PURE_ENV: "1"})[0] == {False}


def test_a_stale_build_is_not_run_and_says_so(tmp_path):
    """A copy of the package with one source edited after its build: every module runs from
    source, with a warning naming it (a fresh interpreter on the copy)."""
    if not resilience_core.compiled():
        pytest.skip("the hot path is not compiled here (make compile)")
    shutil.copytree(ROOT, tmp_path / "resilience_core", ignore=shutil.ignore_patterns("__pycache__"))
    assert _builds({_compiled.PURE_ENV: "0"}, cwd=tmp_path)[0] == {True}  # the copy as built
    router = tmp_path / "resilience_core" / "router.py"
    router.write_text(router.read_text() + "\n")
    builds, stderr = _builds({_compiled.PURE_ENV: "0"}, cwd=tmp_path)
    assert builds == {False}
    assert "router" in stderr and "older than its source" in stderr


def test_the_core_tests_pass_from_source_too():
    """The build `make test` does not use passes the same tests (most of the suite runs on the
    compiled one)."""
    if not resilience_core.compiled():
        pytest.skip("the hot path is not compiled here (make compile): the whole suite ran from source")
    core_tests = ["tests/resilience_core", "--deselect", "tests/resilience_core/test_compiled.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *core_tests],
        cwd=ROOT.parent,
        env={**os.environ, _compiled.PURE_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
