"""Rebuild every output of a run from its files: results.json, report.html, summary.md, junit.xml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports import html, junit, markdown, results
from reports.rundata import load_run


@dataclass(frozen=True, slots=True)
class Report:
    """What `build` wrote for one run folder, and the verdicts behind it."""

    folder: Path
    results: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.results["passed"])

    @property
    def html(self) -> Path:
        return self.folder / "report.html"

    @property
    def failures(self) -> list[str]:
        return results.failures(self.results)

    def passed_strictly(self) -> bool:
        """Passed, and no verdict was inconclusive (`gate --strict`)."""
        return self.passed and not self.results.get("inconclusive")


def build(folder: str | Path, *, plots: bool = True) -> Report:
    """Judge a run folder and write its reports next to its records (idempotent)."""
    folder = Path(folder)
    run = load_run(folder)
    computed = results.compute(run)
    results.write(computed, folder)
    figures: dict[str, tuple[str, bytes]] = {}
    if plots:
        from reports.plots import all_figures  # matplotlib only when pictures are wanted

        figures = all_figures(run)
    (folder / "report.html").write_text(html.render(computed, figures), encoding="utf-8")
    (folder / "summary.md").write_text(markdown.render(computed, "report.html"), encoding="utf-8")
    (folder / "junit.xml").write_text(junit.render([computed]), encoding="utf-8")
    return Report(folder, computed)
