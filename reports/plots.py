"""The report's plots, variants side by side, fault windows shaded; PNG bytes, no files.

matplotlib runs headless (Agg) and is imported here only, so reading results needs no plotting.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from reports.rundata import RunData, VariantData
from reports.sli import per_second_shares

STATE_COLOURS = {"closed": "#3a9d5d", "half_open": "#f0a202", "open": "#d1495b", "isolated": "#6c757d"}
FAULT_SHADE = {"color": "#d1495b", "alpha": 0.12, "lw": 0}
BIN = 1.0

Painter = Callable[[Axes, VariantData], None]


def _shade(ax: Axes, variant: VariantData) -> None:
    for window in variant.windows:
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
        ax.legend(loc="upper right", fontsize=7)
    ax.set_ylabel("latency ms")


def success(ax: Axes, variant: VariantData) -> None:
    records = variant.records
    if not records.empty:
        rate = _binned(records)["ok"].mean() * 100
        ax.plot(rate.index, rate.values, color="#3a9d5d")
        degraded = _binned(records)["degraded"].mean() * 100
        if degraded.any():
            ax.plot(degraded.index, degraded.values, color="#f0a202", label="degraded %")
            ax.legend(loc="lower right", fontsize=7)
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
        ax.legend(loc="lower left", fontsize=7, ncol=len(models))
    ax.set_ylim(0, 100)
    ax.set_ylabel("traffic share %")


def breaker(ax: Axes, variant: VariantData) -> None:
    changes = [e for e in variant.audit if e.get("kind") == "CircuitStateChanged"]
    if not changes:
        reason = "no breaker (passthrough)" if variant.mode == "passthrough" else "no breaker transitions"
        ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        return
    t0 = float(variant.meta["t0"])
    labels = sorted({str(e["model"]) for e in changes}, key=_model_order)
    end = variant.plan.end
    for row, label in enumerate(labels):
        state, since = "closed", 0.0
        for entry in (e for e in changes if e["model"] == label):
            at = float(entry["time"]) - t0
            ax.barh(row, at - since, left=since, color=STATE_COLOURS.get(state, "#cccccc"), height=0.6)
            state, since = str(entry.get("to", state)), at
        ax.barh(row, end - since, left=since, color=STATE_COLOURS.get(state, "#cccccc"), height=0.6)
    ax.set_yticks(range(len(labels)), [label.split("/")[-1] for label in labels], fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in STATE_COLOURS.values()]
    ax.legend(handles, list(STATE_COLOURS), loc="upper right", fontsize=6, ncol=4)


def _model_order(label: str) -> int:
    tail = label.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


PLOTS: dict[str, tuple[str, Painter]] = {
    "latency": ("Latency of successful answers, per second (p50, p95, p99)", latency),
    "success": ("Success rate per second", success),
    "traffic": ("Each model's share of the traffic its endpoint received (stacked)", traffic),
    "breaker": ("Circuit breaker state per model, from the audit trail", breaker),
}


def figure(run: RunData, painter: Painter, title: str) -> bytes:
    """One plot kind, a column per variant (system under test left, control right)."""
    variants = list(run.variants.values())
    share_y = painter in (latency, success)  # same scale to compare; model rows differ per variant
    fig, axes = plt.subplots(
        1, len(variants), figsize=(6.2 * len(variants), 2.9), squeeze=False, sharey=share_y
    )
    for ax, variant in zip(axes[0], variants, strict=True):
        painter(ax, variant)
        _shade(ax, variant)
        ax.set_title(variant.name, fontsize=9)
        ax.set_xlabel("seconds since start (shaded: fault windows)", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def all_figures(run: RunData) -> dict[str, tuple[str, bytes]]:
    """Every plot of the report: name -> (caption, PNG)."""
    return {name: (title, figure(run, painter, title)) for name, (title, painter) in PLOTS.items()}
