"""One CSV row per request, written as it completes; worker files merged at the end.

No locust import here: the runner's record tail and the reports read these files too.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

FIELDS = [
    "t",
    "latency_ms",
    "ttft_ms",
    "status",
    "ok",
    "error_kind",
    "served_by",
    "attempts",
    "degraded",
    "stream",
    "user",
    "finish_reason",
    "integrity",
    "answer_id",
    "words",
    "expected_words",
    "done",
    "inband_error",
    "max_gap_ms",
]
"""`integrity`: whole, truncated, corrupted or unmarked, judged from the content's own marker;
`words` of `expected_words` arrived; `done`, `inband_error` and `max_gap_ms` are the stream's
contract as the client saw it."""


class Recorder:
    """Writes one CSV row per request event, flushed at once so a crash loses nothing written."""

    def __init__(self, path: Path) -> None:
        self.file: TextIO = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, FIELDS)
        self.writer.writeheader()
        self.file.flush()
        self.rows = 0

    def on_request(self, context: dict[str, Any] | None = None, exception: Any = None, **kwargs: Any) -> None:
        row = dict(context or {})
        row.setdefault("ok", exception is None)
        row.setdefault("error_kind", "" if exception is None else type(exception).__name__)
        self.writer.writerow({k: row.get(k, "") for k in FIELDS})
        self.file.flush()
        self.rows += 1

    def close(self) -> None:
        self.file.close()


def merge(parts: list[Path], target: Path) -> int:
    """Concatenate worker record files into one (header once), sorted by start time."""
    rows: list[dict[str, str]] = []
    for part in parts:
        if part.exists():
            with part.open(encoding="utf-8", newline="") as handle:
                rows.extend(csv.DictReader(handle))
    rows.sort(key=lambda row: float(row["t"] or 0))
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    for part in parts:
        part.unlink(missing_ok=True)
    return len(rows)
