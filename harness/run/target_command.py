"""Someone else's gateway, started by the harness for each scenario (`run --target-cmd`).

Attaching to a gateway a user started by hand (`up`, then `run --stack --target --target-pid`)
gives every scenario the same stack: its model count, seed and latency are the first scenario's,
and the gateway's cooldowns carry over from one scenario to the next. A command the harness starts
gets what our own gateway gets: a stack of the scenario's own, a fresh process, its CPU measured,
and a stop when the scenario ends, however it ends.

The command is split like a shell line (no shell runs it) and its placeholders are filled in per
scenario: `{port}` a free port on 127.0.0.1 (the target is then http://127.0.0.1:{port}), `{stack}`
the scenario stack's stack.json, and one per emitter of `up --emit` (`{litellm}`, `{portkey}`:
that gateway's config file, written for this stack). The same values are in the environment as
CHAOS_PORT, CHAOS_STACK and CHAOS_CONFIG_<NAME>, and `--target-header` values may name them
(`x-portkey-config: @{portkey}`).
"""

from __future__ import annotations

import json
import shlex
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.run.target_headers import Header, resolve
from harness.stack import EnvironmentProblem
from harness.stack.peer_configs import EMITTERS
from harness.stack.processes import LOOPBACK, Child, free_port, reachable, wait_until

KNOWN = ("port", "stack", *sorted(EMITTERS))


class TargetCommandError(ValueError):
    """The command cannot be run as given (names what is wrong)."""


@dataclass(frozen=True)
class TargetCommand:
    """A command line with placeholders, and where its gateway listens when it picks its own port."""

    line: str
    url: str | None = None
    """Given when the command listens on an address of its own choosing (no `{port}` in it)."""
    ready_timeout: float = 180.0
    """LiteLLM takes over a minute to import its proxy on a slow host."""
    env: Mapping[str, str] = field(default_factory=dict)
    headers: tuple[Header, ...] = ()
    """`--target-header` templates: their values may name this command's placeholders
    (`@{portkey}`: the Portkey config written for the scenario's stack)."""

    def __post_init__(self) -> None:
        try:
            argv = shlex.split(self.line)
            names = self.placeholders()
        except ValueError as exc:  # unclosed quote or brace
            raise TargetCommandError(f"--target-cmd {self.line!r}: {exc}") from None
        if not argv:
            raise TargetCommandError("--target-cmd is empty")
        unknown = sorted(names - set(KNOWN))
        if unknown:
            known = ", ".join(f"{{{name}}}" for name in KNOWN)
            raise TargetCommandError(f"--target-cmd: unknown placeholder {{{unknown[0]}}} (known: {known})")
        if "port" not in names and self.url is None:
            raise TargetCommandError(
                "--target-cmd: put {port} where the command takes its port, or give --target URL "
                "for the address it listens on"
            )

    def placeholders(self) -> set[str]:
        parts = [*shlex.split(self.line), *(value for _, value in self.headers)]
        return {name for part in parts for _, name, _, _ in string.Formatter().parse(part) if name}

    def start(self, described: dict[str, Any], folder: Path, config: Callable[[str], str]) -> StartedTarget:
        """Write what the placeholders name into `folder` (`config(name)`: that gateway's config
        for this stack), start the command, wait until it accepts connections; a command that
        exits first is an `EnvironmentProblem` with its log's last lines."""
        folder.mkdir(parents=True, exist_ok=True)
        stack_file = folder / "stack.json"
        stack_file.write_text(json.dumps(described, indent=2), encoding="utf-8")
        values = {"port": str(free_port()), "stack": str(stack_file)}
        env = {"CHAOS_PORT": values["port"], "CHAOS_STACK": values["stack"]}
        for name in sorted(self.placeholders() & set(EMITTERS)):
            path = folder / f"{name}-config.{EMITTERS[name].suffix}"
            path.write_text(config(name), encoding="utf-8")
            values[name] = env[f"CHAOS_CONFIG_{name.upper()}"] = str(path)
        argv = [part.format(**values) for part in shlex.split(self.line)]
        headers = tuple(resolve((name, value.format(**values))) for name, value in self.headers)
        url = self.url or f"http://{LOOPBACK}:{values['port']}"
        child = Child("target", argv, folder / "target.log", env={**env, **self.env})
        try:
            wait_until(
                lambda: reachable(url, timeout=1.0) is None,
                timeout=self.ready_timeout,
                child=child,
                what=f"listening at {url}",
            )
        except EnvironmentProblem as exc:
            child.stop()
            raise EnvironmentProblem(f"--target-cmd {argv[0]}: {exc}") from None
        return StartedTarget(child, url, headers)


@dataclass(frozen=True)
class StartedTarget:
    child: Child
    url: str
    headers: tuple[Header, ...] = ()
    """What the load sends it, placeholders filled and files read."""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s: a gateway draining its connections gets that long."""
        self.child.stop(timeout=15)
