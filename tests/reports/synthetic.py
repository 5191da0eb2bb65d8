"""Hand-built run folders with known answers: the verdict math is tested on these, not on luck."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIELDS = ["t", "latency_ms", "ttft_ms", "status", "ok", "error_kind", "served_by", "attempts", "degraded"]
FIELDS += ["stream", "user", "finish_reason"]


@dataclass
class Variant:
    """One variant's synthetic traffic: `rate` requests/s over `duration` s, on two models.

    model-0 serves everything while it is "up" (`down` intervals excluded); model-1 takes the rest.
    `errors` intervals turn requests into errors; `latency` gives every answer's latency.
    """

    name: str = "resilient"
    mode: str = "resilient"
    rate: float = 20.0
    duration: float = 30.0
    down: list[tuple[float, float]] = field(default_factory=list)
    errors: list[tuple[float, float]] = field(default_factory=list)
    latency: float = 30.0
    slow: list[tuple[float, float, float]] = field(default_factory=list)
    """(start, end, latency) spans where answers are slower."""
    degraded: list[tuple[float, float]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    cpu_seconds: float | None = 1.0
    truncated: int = 0


def _inside(t: float, spans: list[tuple[float, float]]) -> bool:
    return any(start <= t < end for start, end in spans)


def write_run(
    folder: Path,
    variants: list[Variant],
    *,
    phases: dict[str, float],
    windows: list[dict[str, Any]],
    slo: dict[str, Any] | None = None,
    t0: float = 1_000_000.0,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    scenario = {"name": "synthetic", "description": "hand-built", "seed": 1, "slo": slo or {}}
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario), encoding="utf-8")
    for variant in variants:
        sub = folder / variant.name
        sub.mkdir()
        meta = {
            "variant": variant.name,
            "mode": variant.mode,
            "t0": t0,
            "models": ["model-0", "model-1"],
            "phases": phases,
            "windows": windows,
            "gateway_cpu_seconds": variant.cpu_seconds,
            "versions": {"python": "3.11"},
        }
        (sub / "run.json").write_text(json.dumps(meta), encoding="utf-8")
        counts: dict[str, dict[int, dict[str, int]]] = {"model-0": {}, "model-1": {}}
        with (sub / "records.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            n = int(variant.duration * variant.rate)
            for i in range(n):
                t = i / variant.rate
                model = "model-1" if _inside(t, variant.down) else "model-0"
                ok = not _inside(t, variant.errors)
                latency = next((lat for s, e, lat in variant.slow if s <= t < e), variant.latency)
                degraded = _inside(t, variant.degraded)
                truncated = i < variant.truncated
                writer.writerow(
                    {
                        "t": t,
                        "latency_ms": latency,
                        "ttft_ms": latency / 2,
                        "status": 200 if ok else 502,
                        "ok": ok,
                        "error_kind": "" if ok else "http_502",
                        "served_by": f"{model}/{model}",
                        "attempts": 1,
                        "degraded": degraded,
                        "stream": False,
                        "user": 0,
                        "finish_reason": "" if truncated or not ok else "stop",
                    }
                )
                if ok and not degraded:
                    second = counts[model].setdefault(math.floor(t), {})
                    second["ok"] = second.get("ok", 0) + 1
        endpoint = {
            m: {"model": m, "per_second": {str(s): c for s, c in per.items()}} for m, per in counts.items()
        }
        (sub / "endpoint_counts.json").write_text(json.dumps(endpoint), encoding="utf-8")
        with (sub / "audit.jsonl").open("w", encoding="utf-8") as handle:
            for entry in variant.audit:
                handle.write(json.dumps({**entry, "time": t0 + entry["t"]}) + "\n")
    return folder


def outage_run(folder: Path, *, fault: tuple[float, float], back_after: float, rate: float = 20.0) -> Path:
    """model-0 fails over at fault start and gets its traffic back `back_after` s after fault end."""
    start, end = fault
    phases = {"warmup": 2.0, "baseline": start - 2.0, "faults": end - start, "recovery": 40.0}
    resilient = Variant(rate=rate, duration=end + 40.0, down=[(start, end + back_after)])
    control = Variant(
        name="control", mode="passthrough", rate=rate, duration=end + 40.0, errors=[(start, end)]
    )
    window = {"fault": 0, "start": start, "end": end, "models": ["model-0"], "kind": "down", "detail": None}
    return write_run(folder, [resilient, control], phases=phases, windows=[window])
