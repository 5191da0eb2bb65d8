"""From a run folder to `results.json`: every SLI, target, verdict and reason, per variant."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from reports.rundata import RunData
from reports.sli import overheads, variant_slis
from reports.slo import Verdict, bite, exercise, judge, passed, targets

RESULTS_FILE = "results.json"


def compute(run: RunData) -> dict[str, Any]:
    """Judge every variant of a run; the control's verdicts decide whether the fault bit."""
    chosen = targets(run.scenario.get("slo") or None)
    slis = {name: variant_slis(variant) for name, variant in run.variants.items()}
    main = run.main.name
    control = run.control
    if control is not None:
        slis[main].update(overheads(slis[main], slis[control.name]))
    verdicts: dict[str, list[Verdict]] = {
        name: judge(figures, chosen, against_control=name == main and control is not None)
        for name, figures in slis.items()
    }
    has_faults = bool(run.main.windows)
    bite_check = bite(verdicts.get("control"), has_faults)
    variants = {}
    for name, figures in slis.items():
        figures = {k: v for k, v in figures.items() if not k.startswith("_")}
        variant = run.variants[name]
        exercised = exercise(figures["faults"])
        variants[name] = {
            "mode": variant.mode,
            "phases": figures.pop("phases"),
            "faults": figures.pop("faults"),
            "exercised": exercised,
            "fault_rates": figures.pop("fault_rates"),
            "slis": figures,
            "verdicts": [v.to_dict() for v in verdicts[name]],
            "passed": passed(verdicts[name], {"bit": None}, exercised),
            "t0": variant.meta.get("t0"),
        }
    meta = run.main.meta
    return _jsonable(
        {
            "run_id": run.folder.name,
            "scenario": run.name,
            "description": str(run.scenario.get("description", "")).strip(),
            "seed": run.scenario.get("seed"),
            "main": main,
            "simulated": bool(run.main.meta.get("simulated")),
            "passed": passed(verdicts[main], bite_check, variants[main]["exercised"]),
            "exercised": variants[main]["exercised"],
            "inconclusive": [v.sli for v in verdicts[main] if v.inconclusive],
            "bite": bite_check,
            "targets": [t.text for t in chosen],
            "variants": variants,
            "versions": meta.get("versions", {}),
            "machine": meta.get("machine", {}),
            "load": meta.get("load", {}),
            "phases": meta.get("phases", {}),
            "windows": meta.get("windows", []),
        }
    )


def _jsonable(value: Any) -> Any:
    """Strict JSON: infinities and NaN become null (the verdict's reason says 'never')."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def write(results: dict[str, Any], folder: Path) -> Path:
    path = folder / RESULTS_FILE
    path.write_text(json.dumps(results, indent=2, allow_nan=False), encoding="utf-8")
    return path


def failures(results: dict[str, Any], *, strict: bool = False) -> list[str]:
    """One line per reason the run fails the gate: breached SLOs, faults the system under test
    never met, a fault that did not bite; with `strict`, inconclusive verdicts too."""
    main = results["variants"][results["main"]]
    failing = ("fail", "inconclusive") if strict else ("fail",)
    lines = [f"{v['sli']}: {v['reason']}" for v in main["verdicts"] if v["status"] in failing]
    for fault in results.get("exercised", []):
        if not fault["exercised"]:
            models = ", ".join(fault["models"])
            lines.append(
                f"fault {fault['fault']} ({fault['kind']} on {models}) not exercised: {fault['basis']}"
            )
    if results["bite"]["bit"] is False:
        lines.append(results["bite"]["reason"])
    return lines
