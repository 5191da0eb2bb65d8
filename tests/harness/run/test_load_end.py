"""When Locust's process ends, the run either finishes (timeline over) or is not judged."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.run.variant import load_ended
from harness.stack import EnvironmentProblem
from harness.stack.processes import Child


def _ended_child(tmp_path: Path) -> Child:
    child = Child("locust", [sys.executable, "-c", "print('bye')"], tmp_path / "locust.log")
    child.process.wait(10)
    return child


def test_an_end_once_the_timeline_is_over_is_the_normal_end(tmp_path: Path) -> None:
    child = _ended_child(tmp_path)
    assert load_ended(child, lambda: 5.2, duration=5.0)
    child.stop()


def test_an_end_before_the_timeline_is_over_is_a_death_not_judged(tmp_path: Path) -> None:
    child = _ended_child(tmp_path)
    with pytest.raises(EnvironmentProblem, match=r"not judged: locust died at 3\.0 s: bye"):
        load_ended(child, lambda: 3.0, duration=5.0)
    child.stop()


def test_a_running_load_has_not_ended_and_its_clock_is_not_read(tmp_path: Path) -> None:
    child = Child("locust", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "l.log")
    try:
        assert not load_ended(child, lambda: pytest.fail("clock read while alive"), duration=5.0)
    finally:
        child.stop()
