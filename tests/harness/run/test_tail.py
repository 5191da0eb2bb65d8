"""The progress line's rate counts answers by when they ended: rows are written at the end of a
request, so counting by start undercounts the last second (27/s shown while 40/s were sent)."""

from __future__ import annotations

from pathlib import Path

from harness.run.tail import RecordTail

HEADER = "t,latency_ms,ok\n"


def test_the_window_counts_requests_by_when_they_ended(tmp_path: Path):
    records = tmp_path / "records.csv"
    rows = [f"{i * 0.025:.3f},{500.0},True\n" for i in range(80)]  # 40/s, each 0.5 s long
    records.write_text(HEADER + "".join(rows))
    tail = RecordTail(records)
    tail.poll()
    assert tail.window(1.5, 2.5) == (40, 0)  # ended 1.5..2.5: started 1.0..2.0
    with records.open("a") as more:
        more.write("0.100,9000.0,False\n")  # a slow one, started long before it ended
    tail.poll()
    assert tail.window(9.0, 9.2) == (1, 1)  # kept, although it started 9 s earlier
