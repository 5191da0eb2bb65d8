"""The system under test as a process: our gateway started from a config, announced, stopped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.gateway.launch import command
from harness.stack.processes import Child, read_ready_file, wait_until


class GatewayProcess:
    """One gateway we started; stopped by its own PID."""

    def __init__(self, child: Child, url: str) -> None:
        self.child = child
        self.url = url

    @classmethod
    def start(
        cls, config: dict[str, Any], folder: Path, name: str = "gateway", launcher: Sequence[str] = ()
    ) -> GatewayProcess:
        """Write `config` (a dict of GatewayConfig) beside its log and start it; `launcher` runs
        it under another program (a profiler), which may start slowly."""
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        ready = folder / f"{name}.ready.json"
        ready.unlink(missing_ok=True)
        child = Child(name, [*launcher, *command(config_path, ready)], folder / f"{name}.log")
        try:
            announced = wait_until(
                lambda: read_ready_file(ready), timeout=120 if launcher else 20, child=child, what="listening"
            )
        except BaseException:
            child.stop()
            raise
        return cls(child, str(announced["url"]))

    @property
    def pid(self) -> int:
        return self.child.pid

    @property
    def folder(self) -> Path:
        return self.child.log_path.parent

    def alive(self) -> bool:
        return self.child.alive()

    def cpu_seconds(self) -> float | None:
        return self.child.cpu_seconds()

    def stop(self, timeout: float = 5.0) -> None:
        self.child.stop(timeout=timeout)
