"""The report's plots, variants side by side, fault windows marked; PNG bytes, no files.

Line plots shade the fault windows; plots whose colours carry the data (traffic shares, the
state timeline) mark them with a band above the axes instead, so no share or state changes hue
inside a window. The caption is the HTML's, not drawn into the picture a second time.

matplotlib runs headless (Agg) and is imported here only, so reading results needs no plotting.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from reports.rundata import RunData, VariantData
from reports.sli import per_second_shares

STATE_COLOURS = {"closed": "#3a9d5d", "half_open": "#f0a202", "open": "#d1495b", "isolated": "#6c757d"}
HEALTH_COLOURS = {"healthy": "#a8d5b5", "degraded": "#f6c980", "unhealthy": "#6b1f2a"}
FAULT_SHADE: dict[str, Any] = {"color": "#d1495b", "alpha": 0.12, "lw": 0}
FAULT_BAND: dict[str, Any] = {"color": "#d1495b", "alpha": 0.8, "lw": 0}
FONT = 9
BIN = 1.0

Painter = Callable[[Axes, VariantData], None]


def _shade(ax: Axes, variant: VariantData, *, band: bool = False) -> None:
    """Fault windows shaded over the data, or with `band` as a strip above it."""
    for window in variant.windows:
        if band:
            ax.axvspan(window.start, window.end, ymin=1.01, ymax=1.05, clip_on=False, **FAULT_BAND)
        else:
            ax.axvspan(window.start, window.end, **FAULT_SHADE)
    plan = variant.plan
    for boundary in (plan.warmup, plan.baseline_end, plan.faults_end):
        ax.axvline(boundary, color="#888888", lw=0.6, ls=":")
    ax.set_xlim(0, max(plan.end, 1.0))
    ax.grid(alpha=0.25)


def _binned(records: pd.DataFrame) -> pd.core.groupby.DataFrameGroupBy:
    return records.assign(bin=(records["t"] // BIN) * BIN + BIN / 2).groupby("bin")


def latency(ax: Axes, variant: VariantData) -> None:
    ok = variant.records[variant.records["ok"]]
    if ok.empty:
        ax.text(0.5, 0.5, "no successful answers", ha="center", transform=ax.transAxes)
    else:
        grouped = _binned(ok)["latency_ms"]
        for q, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
            series = grouped.quantile(q)
            ax.plot(series.index, series.values, style, label=f"p{int(q * 100)}", color="#1f4e79")
        ax.legend(loc="upper right", fontsize=FONT - 1)
    ax.set_ylabel("latency ms")


def success(ax: Axes, variant: VariantData) -> None:
    records = variant.records
    if not records.empty:
        rate = _binned(records)["ok"].mean() * 100
        ax.plot(rate.index, rate.values, color="#3a9d5d")
        degraded = _binned(records)["degraded"].mean() * 100
        if degraded.any():
            ax.plot(degraded.index, degraded.values, color="#f0a202", label="degraded %")
            ax.legend(loc="lower right", fontsize=FONT - 1)
    ax.set_ylim(-5, 105)
    ax.set_ylabel("success %")


def traffic(ax: Axes, variant: VariantData) -> None:
    shares = per_second_shares(variant.endpoint_counts, None)
    if shares.empty:
        ax.text(0.5, 0.5, "no endpoint counts", ha="center", transform=ax.transAxes)
        ax.set_ylabel("traffic share %")
        return
    shares = shares.fillna(0.0) * 100
    models = sorted(shares.columns, key=lambda m: int(m.rsplit("-", 1)[-1]) if m[-1].isdigit() else 0)
    x = shares.index.to_numpy() + 0.5
    ax.stackplot(x, *(shares[m].to_numpy() for m in models), labels=models, step="mid", alpha=0.85)
    if len(models) <= 8:
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.28),
            fontsize=FONT - 1,
            ncol=len(models),
            frameon=False,
        )
    ax.set_ylim(0, 100)
    ax.set_ylabel("traffic share %")


def _timeline(
    ax: Axes,
    changes: list[dict[str, Any]],
    t0: float,
    end: float,
    y: float,
    height: float,
    first: str,
    colours: dict[str, str],
) -> None:
    state, since = first, 0.0
    for entry in changes:
        at = float(entry["time"]) - t0
        ax.barh(y, at - since, left=since, color=colours.get(state, "#cccccc"), height=height)
        state, since = str(entry.get("to", state)), at
    ax.barh(y, end - since, left=since, color=colours.get(state, "#cccccc"), height=height)


def states(ax: Axes, variant: VariantData) -> None:
    """Per model that changed: its breaker (thick bar) and its health (thin bar under it)."""
    kinds = ("CircuitStateChanged", "HealthChanged")
    changes = [e for e in variant.audit if e.get("kind") in kinds]
    if not changes:
        reason = "no breaker (passthrough)" if variant.mode == "passthrough" else "no state changes"
        ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes, fontsize=FONT)
        ax.set_yticks([])
        return
    t0 = float(variant.meta["t0"])
    labels = sorted({str(e["model"]) for e in changes}, key=_model_order)
    end = variant.plan.end
    for row, label in enumerate(labels):
        mine = [e for e in changes if e["model"] == label]
        breaker = [e for e in mine if e["kind"] == "CircuitStateChanged"]
        health = [e for e in mine if e["kind"] == "HealthChanged"]
        _timeline(ax, breaker, t0, end, row + 0.12, 0.5, "closed", STATE_COLOURS)
        _timeline(ax, health, t0, end, row - 0.3, 0.16, "healthy", HEALTH_COLOURS)
    ax.set_yticks(range(len(labels)), [label.split("/")[-1] for label in labels], fontsize=FONT)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in (*STATE_COLOURS.values(), *HEALTH_COLOURS.values())]
    names = [f"breaker {s.replace('_', '-')}" for s in STATE_COLOURS] + [
        f"health {s}" for s in HEALTH_COLOURS
    ]
    ax.legend(
        handles,
        names,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.28),
        fontsize=FONT - 1,
        ncol=4,
        frameon=False,
    )


def _model_order(label: str) -> int:
    tail = label.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


PLOTS: dict[str, tuple[str, Painter]] = {
    "latency": ("Latency of successful answers, per second (p50, p95, p99)", latency),
    "success": ("Success rate per second", success),
    "traffic": ("Each model's share of the traffic its endpoint received (stacked)", traffic),
    "states": ("Breaker (thick) and health (thin) state per model, from the audit trail", states),
}


def figure(run: RunData, painter: Painter, title: str) -> bytes:
    """One plot kind, a column per variant (system under test left, control right)."""
    variants = list(run.variants.values())
    share_y = painter in (latency, success)  # same scale to compare; model rows differ per variant
    band = painter in BANDED
    height = 3.4 if band else 3.0
    fig, axes = plt.subplots(
        1, len(variants), figsize=(6.4 * len(variants), height), squeeze=False, sharey=share_y
    )
    for ax, variant in zip(axes[0], variants, strict=True):
        painter(ax, variant)
        _shade(ax, variant, band=band)
        ax.set_title(variant.name, fontsize=FONT + 1, pad=10 if band else 6)
        marked = "red band above" if band else "shaded"
        ax.set_xlabel(f"seconds since start ({marked}: fault windows)", fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.yaxis.label.set_size(FONT)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


BANDED = (traffic, states)
"""Plots whose colours are the data: fault windows go above them, not over them."""


def all_figures(run: RunData) -> dict[str, tuple[str, bytes]]:
    """Every plot of the report: name -> (caption, PNG)."""
    return {name: (title, figure(run, painter, title)) for name, (title, painter) in PLOTS.items()}
