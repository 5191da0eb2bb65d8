"""The report's plots read at a glance: states per model over time, fault windows that do not
change the colours that carry the data, and no caption drawn twice."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from reports.plots import BANDED, FAULT_BAND, HEALTH_COLOURS, STATE_COLOURS, _shade, all_figures, states
from reports.rundata import load_run
from tests.reports.synthetic import Variant, write_run

AUDIT = [
    {"t": 10.4, "kind": "CircuitStateChanged", "model": "model-0/model-0", "from": "closed", "to": "open"},
    {"t": 11.0, "kind": "HealthChanged", "model": "model-0/model-0", "from": "healthy", "to": "unhealthy"},
    {"t": 21.0, "kind": "HealthChanged", "model": "model-0/model-0", "from": "unhealthy", "to": "healthy"},
    {"t": 22.0, "kind": "CircuitStateChanged", "model": "model-0/model-0", "from": "open", "to": "half_open"},
    {
        "t": 22.1,
        "kind": "CircuitStateChanged",
        "model": "model-0/model-0",
        "from": "half_open",
        "to": "closed",
    },
]


def _run(tmp_path: Path) -> Path:
    phases = {"warmup": 2.0, "baseline": 8.0, "faults": 10.0, "recovery": 20.0}
    window = {"fault": 0, "start": 10.0, "end": 20.0, "models": ["model-0"], "kind": "down", "detail": None}
    resilient = Variant(duration=40.0, down=[(10.0, 22.0)], audit=AUDIT)
    control = Variant(name="control", mode="passthrough", duration=40.0, errors=[(10.0, 20.0)])
    return write_run(tmp_path / "run", [resilient, control], phases=phases, windows=[window])


def _bars(ax: plt.Axes) -> list[tuple[float, float, str]]:
    """(start, end, colour) of each horizontal bar drawn."""
    return [
        (bar.get_x(), bar.get_x() + bar.get_width(), to_hex(bar.get_facecolor()))
        for bar in ax.patches
        if bar.get_height() < 1
    ]


def test_the_state_timeline_shows_each_models_breaker_and_health_where_they_changed(tmp_path):
    variant = load_run(_run(tmp_path)).variants["resilient"]
    fig, ax = plt.subplots()
    try:
        states(ax, variant)
        bars = _bars(ax)
    finally:
        plt.close(fig)
    open_bar = [b for b in bars if b[2] == STATE_COLOURS["open"]]
    unhealthy = [b for b in bars if b[2] == HEALTH_COLOURS["unhealthy"]]
    assert [(round(a, 1), round(b, 1)) for a, b, _ in open_bar] == [(10.4, 22.0)]
    assert [(round(a, 1), round(b, 1)) for a, b, _ in unhealthy] == [(11.0, 21.0)]
    assert any(b[2] == STATE_COLOURS["half_open"] for b in bars)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["model-0"]


def test_fault_windows_sit_above_the_plots_whose_colours_are_the_data(tmp_path):
    variant = load_run(_run(tmp_path)).variants["resilient"]
    fig, ax = plt.subplots()
    try:
        _shade(ax, variant, band=True)
        marks = [p for p in ax.patches if to_hex(p.get_facecolor()) == to_hex(FAULT_BAND["color"])]
        assert len(marks) == 1
        # In axes coordinates the band starts above the top of the data area.
        fig.canvas.draw()
        box = marks[0].get_window_extent().transformed(ax.transAxes.inverted())
        y0, y1 = box.y0, box.y1
        assert min(y0, y1) >= 1.0
    finally:
        plt.close(fig)
    assert {painter.__name__ for painter in BANDED} == {"traffic", "states"}


def test_each_plot_is_a_picture_without_its_caption_drawn_into_it(tmp_path, monkeypatch):
    titles: list[str] = []
    original = plt.Figure.suptitle
    monkeypatch.setattr(
        plt.Figure, "suptitle", lambda self, t, **kw: titles.append(t) or original(self, t, **kw)
    )
    figures = all_figures(load_run(_run(tmp_path)))
    assert set(figures) == {"latency", "success", "traffic", "states"}
    assert titles == []  # the HTML's figcaption says it once
    for caption, png in figures.values():
        assert caption and png.startswith(b"\x89PNG")
