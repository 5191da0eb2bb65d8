"""A run folder read back into tables: the reports depend on these files, never on the harness."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

RECORD_COLUMNS = {
    "t": float,
    "latency_ms": float,
    "ttft_ms": float,
    "status": float,
    "attempts": float,
    "words": float,
    "expected_words": float,
    "max_gap_ms": float,
}
PHASES = ("warmup", "baseline", "faults", "recovery")
NOT_JUDGED = "not_judged.json"
"""Written by a run that stopped because the harness itself failed: nothing in it is judged."""


class RunDataError(ValueError):
    """A run folder is missing a file or holds one that cannot be read; the message names it."""


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """One fault of the scenario: when it was on (seconds from the run's t0) and on which models."""

    index: int
    start: float
    end: float
    models: tuple[str, ...]
    kind: str
    detail: Any = None

    @property
    def label(self) -> str:
        return f"fault {self.index}: {self.kind} on {', '.join(self.models)}"


@dataclass(frozen=True, slots=True)
class PhasePlan:
    """Phase boundaries in seconds from t0: warm-up, baseline, fault phase, recovery."""

    warmup: float
    baseline_end: float
    faults_end: float
    end: float

    def phase(self, t: float) -> str:
        if t < self.warmup:
            return "warmup"
        if t < self.baseline_end:
            return "baseline"
        if t < self.faults_end:
            return "faults"
        return "recovery"

    def bounds(self, phase: str) -> tuple[float, float]:
        return {
            "warmup": (0.0, self.warmup),
            "baseline": (self.warmup, self.baseline_end),
            "faults": (self.baseline_end, self.faults_end),
            "recovery": (self.faults_end, self.end),
        }[phase]


@dataclass
class VariantData:
    """One system under test's share of a run: records, endpoint counts, timeline, audit trail."""

    name: str
    mode: str
    meta: dict[str, Any]
    records: pd.DataFrame
    endpoint_counts: pd.DataFrame
    """Rows: second since t0; columns: (model, outcome) counts, as the endpoints saw them."""
    answers: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Every answer the endpoints produced: t, model, id, words, sent, complete (ground truth)."""
    audit: list[dict[str, Any]] = field(default_factory=list)
    proxy_bytes: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Rows: second since t0; columns: model; bytes clients sent into its proxy that second."""
    cpu: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Rows: second since t0; column `cpu_s`: the gateway's CPU seconds used in that second."""

    @property
    def plan(self) -> PhasePlan:
        return phase_plan(self.meta)

    @property
    def windows(self) -> list[FaultWindow]:
        return fault_windows(self.meta)

    @property
    def models(self) -> list[str]:
        return list(self.meta.get("models", []))


@dataclass
class RunData:
    """A whole run folder: the resolved scenario and each variant that ran."""

    folder: Path
    scenario: dict[str, Any]
    variants: dict[str, VariantData]

    @property
    def name(self) -> str:
        return str(self.scenario.get("name", self.folder.name))

    @property
    def main(self) -> VariantData:
        """The system under test judged first: whatever ran that is not the control."""
        for name, variant in self.variants.items():
            if name != "control":
                return variant
        raise RunDataError(f"{self.folder}: no variant besides the control")

    @property
    def control(self) -> VariantData | None:
        return self.variants.get("control")


def phase_plan(meta: dict[str, Any]) -> PhasePlan:
    phases = meta["phases"]
    warmup = float(phases["warmup"])
    baseline_end = warmup + float(phases["baseline"])
    faults_end = baseline_end + float(phases["faults"])
    return PhasePlan(warmup, baseline_end, faults_end, faults_end + float(phases["recovery"]))


def fault_windows(meta: dict[str, Any]) -> list[FaultWindow]:
    return [
        FaultWindow(
            int(w["fault"]),
            float(w["start"]),
            float(w["end"]),
            tuple(w["models"]),
            str(w["kind"]),
            w.get("detail"),
        )
        for w in meta.get("windows", [])
    ]


def read_records(path: Path) -> pd.DataFrame:
    """records.csv with typed columns; `ok` and `degraded` as booleans, blanks as NaN."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=["t", "ok"])
    for column, kind in RECORD_COLUMNS.items():
        if column in frame:
            frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce").astype(kind)
    for column in ("ok", "degraded", "stream", "done", "inband_error"):
        if column in frame:
            frame[column] = frame[column].astype(str).str.lower() == "true"
        else:
            frame[column] = False
    for column in ("served_by", "error_kind", "finish_reason", "integrity", "answer_id"):
        if column not in frame:
            frame[column] = ""
    return frame.sort_values("t", kind="stable").reset_index(drop=True)


def read_endpoint_counts(path: Path) -> pd.DataFrame:
    """Per second and model, what each simulated endpoint received, by outcome."""
    if not path.exists():
        return pd.DataFrame()
    raw = json.loads(path.read_text(encoding="utf-8"))
    cells: dict[tuple[str, str], dict[int, int]] = {}
    for model, data in raw.items():
        for second, outcomes in data.get("per_second", {}).items():
            for outcome, count in outcomes.items():
                cells.setdefault((model, outcome), {})[int(second)] = int(count)
    if not cells:
        return pd.DataFrame()
    frame = pd.DataFrame(cells).fillna(0).astype(int).sort_index()
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["model", "outcome"])
    return frame


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(path.read_text(encoding="utf-8").splitlines()):
                break  # a line cut by a crash at the very end: everything before it stands
            raise RunDataError(f"{path}: line {number} is not JSON") from None
    return rows


def _per_second(rows: list[dict[str, Any]], key: str) -> pd.DataFrame:
    """Cumulative samples (`{"t": s, key: value or {model: value}}`) as per-second increments."""
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(
        [{"t": row["t"], **(row[key] if isinstance(row[key], dict) else {key: row[key]})} for row in rows]
    )
    frame = frame.sort_values("t").set_index("t").astype(float)
    increments = frame.diff().clip(lower=0).iloc[1:]
    increments.index = [int(t) for t in frame.index[1:]]
    return increments.groupby(level=0).sum()


def load_variant(folder: Path) -> VariantData:
    meta_path = folder / "run.json"
    if not meta_path.exists():
        raise RunDataError(f"{meta_path}: missing (was this folder written by `chaos-harness run`?)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    records_path = folder / "records.csv"
    if not records_path.exists():
        raise RunDataError(f"{records_path}: missing")
    return VariantData(
        name=folder.name,
        mode=str(meta.get("mode", folder.name)),
        meta=meta,
        records=read_records(records_path),
        endpoint_counts=read_endpoint_counts(folder / "endpoint_counts.json"),
        answers=pd.DataFrame(read_jsonl(folder / "answers.jsonl")),
        audit=read_jsonl(folder / "audit.jsonl"),
        proxy_bytes=_per_second(read_jsonl(folder / "proxies.jsonl"), "bytes"),
        cpu=_per_second(read_jsonl(folder / "cpu.jsonl"), "cpu_s"),
    )


def load_run(folder: str | Path) -> RunData:
    """Read a `runs/<run-id>/` folder; RunDataError names the file when something is off."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunDataError(f"{folder}: no such run folder")
    if (folder / NOT_JUDGED).exists():
        reason = json.loads((folder / NOT_JUDGED).read_text(encoding="utf-8")).get("reason", "")
        raise RunDataError(f"{folder}: {reason or 'not judged'}")
    scenario_path = folder / "scenario.yaml"
    if not scenario_path.exists():
        raise RunDataError(f"{scenario_path}: missing (is {folder} a run folder?)")
    scenario = yaml.safe_load(scenario_path.read_text(encoding="utf-8")) or {}
    variants = {
        child.name: load_variant(child)
        for child in sorted(folder.iterdir())
        if child.is_dir() and (child / "run.json").exists()
    }
    if not variants:
        raise RunDataError(f"{folder}: no variant folder with a run.json (the run ended before any load)")
    ordered = dict(sorted(variants.items(), key=lambda item: item[0] == "control"))
    return RunData(folder, scenario, ordered)
