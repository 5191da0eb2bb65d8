"""Counting a process's instructions with callgrind: switched on and off from outside around
the part that is measured, read from the counts file it writes as it exits."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

MISSING = "valgrind is not installed (Debian: apt-get install valgrind)"


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def launcher(counts: Path) -> list[str]:
    """The command prefix that runs a program under callgrind, counting nothing until told."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={counts}"]


def counting(pid: int, on: bool) -> None:
    """Switch counting on or off in the callgrind-run process `pid`."""
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(pid)], check=True, capture_output=True
    )


def total(path: Path) -> int:
    """The `totals:` line (the `summary:` line near the top stays 0 when counting is switched on
    and off by `callgrind_control`)."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")
