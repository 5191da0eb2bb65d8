"""Run folders to SLIs, SLO verdicts and reports (HTML, Markdown, JSON, JUnit).

Reads only what a run wrote (`runs/<run-id>/`), never the harness, so a report can be rebuilt
anywhere: `chaos-harness report RUN_DIR`, or `reports.build(RUN_DIR)` from Python.
"""

from reports.build import Report, build
from reports.compare import Change, compare
from reports.rundata import NOT_JUDGED, FaultWindow, PhasePlan, RunData, RunDataError, VariantData, load_run
from reports.slo import DEFAULT_TARGETS, Verdict, bite, judge, targets
from reports.thresholds import Threshold, ThresholdError

__all__ = [
    "DEFAULT_TARGETS",
    "NOT_JUDGED",
    "bite",
    "build",
    "Change",
    "compare",
    "FaultWindow",
    "judge",
    "load_run",
    "PhasePlan",
    "Report",
    "RunData",
    "RunDataError",
    "targets",
    "Threshold",
    "ThresholdError",
    "VariantData",
    "Verdict",
]
