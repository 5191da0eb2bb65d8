"""The gateway runs on uvloop where the harness extra installs it, and on asyncio's loop without."""

from __future__ import annotations

import sys

import pytest

from harness.gateway.__main__ import event_loop_factory


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is not installed on Windows")
def test_the_gateway_takes_uvloops_loop_where_it_is_installed():
    import uvloop

    assert event_loop_factory() is uvloop.new_event_loop


def test_without_uvloop_the_gateway_takes_asyncios_loop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails as if it were absent
    assert event_loop_factory() is None
