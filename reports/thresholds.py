"""SLO threshold expressions in the k6 style: `p99_ms < 800`, `uptime >= 99.95%`, per phase too.

Grammar: `NAME[{phase:PHASE}] OP NUMBER[%|ms|s]`, OP one of < <= > >= ==. A `%` divides by 100,
so `uptime >= 99.9%` and `uptime >= 0.999` are the same target. `{phase:faults}` judges a
per-phase figure (`p99_ms{phase:faults} < 800`) instead of the whole run's.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
PHASE_NAMES = ("warmup", "baseline", "faults", "recovery", "all")
_EXPRESSION = re.compile(
    r"^\s*(?P<name>[a-z][a-z0-9_]*)\s*(?:\{\s*phase\s*:\s*(?P<phase>[a-z]+)\s*\})?\s*"
    r"(?P<op><=|>=|==|<|>)\s*(?P<value>-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*(?P<unit>%|ms|s)?\s*$"
)
_CONDITION = re.compile(r"^\s*(<=|>=|==|<|>)")


class ThresholdError(ValueError):
    """A threshold expression that cannot be read; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """One target: an SLI (optionally of one phase), a comparison and a number.

    Usage::

        Threshold.parse("uptime >= 99.9%").holds(0.9995)   # True
    """

    sli: str
    op: str
    value: float
    phase: str | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Threshold:
        match = _EXPRESSION.match(text)
        if match is None:
            raise ThresholdError(f"{text!r} is not `NAME[{{phase:P}}] OP NUMBER[%]` (e.g. `p99_ms < 800`)")
        phase = match["phase"]
        if phase is not None and phase not in PHASE_NAMES:
            raise ThresholdError(f"{text!r}: phase {phase!r} is not one of {', '.join(PHASE_NAMES)}")
        value = float(match["value"])
        if match["unit"] == "%":
            value /= 100
        return cls(match["name"], match["op"], value, phase, " ".join(text.split()))

    @classmethod
    def from_condition(cls, key: str, condition: str | float, default_op: str = "<=") -> Threshold:
        """`key: "<= 10"` in a scenario's `slo:` mapping; a bare number keeps the default operator."""
        text = f"{key} {condition}" if _CONDITION.match(str(condition)) else f"{key} {default_op} {condition}"
        return cls.parse(text)

    @property
    def key(self) -> str:
        """What a scenario override replaces: the SLI and its phase."""
        return f"{self.sli}{{phase:{self.phase}}}" if self.phase else self.sli

    def holds(self, measured: float) -> bool:
        return OPERATORS[self.op](measured, self.value)

    def describe(self) -> str:
        """The target as people read it: `>= 99.9%` for shares, `<= 30` for seconds."""
        if self.sli in PERCENT_SLIS:
            return f"{self.op} {format_percent(self.value)}"
        return f"{self.op} {self.value:g}"


PERCENT_SLIS = frozenset(
    {
        "uptime",
        "degraded_share",
        "failure_impact",
        "fallback_latency_increase",
        "degraded_capacity",
        "resource_overhead",
        "latency_overhead_p50",
        "latency_overhead_p99",
        "error_rate",
    }
)


def format_percent(value: float) -> str:
    text = f"{value * 100:.3f}".rstrip("0").rstrip(".")
    return f"{text}%"
