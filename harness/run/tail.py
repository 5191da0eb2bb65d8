"""The records as Locust appends to them, for live progress (never for verdicts)."""

from __future__ import annotations

import csv
from pathlib import Path


class RecordTail:
    """Reads the records CSV as it grows: the file itself, or with `--workers` each worker's own
    file until the master merges them at the end."""

    KEEP = 5.0
    """Seconds of rows kept: progress only looks at the last second, so memory stays flat."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: dict[Path, int] = {}
        self.headers: dict[Path, list[str]] = {}
        self.rows: list[dict[str, str]] = []

    def _sources(self) -> list[Path]:
        workers = sorted(self.path.parent.glob(f"{self.path.name}.worker*"))
        return workers or ([self.path] if self.path.exists() else [])

    def poll(self) -> None:
        for source in self._sources():
            with source.open("rb") as handle:  # bytes: csv writes \r\n, text mode would shift offsets
                handle.seek(self.offsets.get(source, 0))
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[source] = self.offsets.get(source, 0) + len(complete)
            lines = complete.decode("utf-8").splitlines()
            if source not in self.headers and lines:
                self.headers[source] = next(csv.reader([lines[0]]))
                lines = lines[1:]
            header = self.headers.get(source)
            if header:
                self.rows.extend(dict(zip(header, row, strict=False)) for row in csv.reader(lines))
        if self.rows:
            newest = max(_ended(r) for r in self.rows[-50:])
            self.rows = [r for r in self.rows if _ended(r) >= newest - self.KEEP]

    def window(self, start: float, end: float) -> tuple[int, int]:
        """Requests that ended in [start, end), and how many of them failed. By end, not start: a
        row is written when its request ends, so the last second's starts are mostly not in the
        file yet (the progress line showed 27/s while 40/s were sent)."""
        hits = [r for r in self.rows if start <= _ended(r) < end]
        return len(hits), sum(1 for r in hits if r["ok"] != "True")


def _ended(row: dict[str, str]) -> float:
    return float(row["t"] or 0) + float(row.get("latency_ms") or 0) / 1000
