"""A rule set like promtool's `check metrics`, for our /metrics: parsed by prometheus_client's own
parser, then named and shaped by Prometheus' conventions."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

SNAKE = re.compile(r"^[a-z_][a-z0-9_]*$")
NON_BASE_UNITS = ("_milliseconds", "_ms", "_microseconds", "_minutes", "_hours", "_kilobytes", "_percent")
RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def problems(text: str) -> list[str]:
    """Every breach of the conventions in an exposition; empty when it is clean."""
    found: list[str] = []
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        return [f"unparseable: {exc}"]
    for family in families:
        name, kind = family.name, family.type
        if not SNAKE.match(name):
            found.append(f"{name}: not snake_case")
        if not family.documentation.strip():
            found.append(f"{name}: no HELP")
        if any(unit in name for unit in NON_BASE_UNITS):
            found.append(f"{name}: use base units (seconds, bytes, ratios)")
        if kind in ("gauge", "untyped") and name.endswith(RESERVED_SUFFIXES):
            found.append(f"{name}: a {kind} must not end in a counter or histogram suffix")
        if kind == "gauge" and re.search(r"(^|_)(rate|share|percentage|availability)$", name):
            found.append(f"{name}: a share is a ratio: name it ..._ratio")
        labels = {key for sample in family.samples for key in sample.labels}
        if kind == "gauge" and "quantile" in labels:
            found.append(f"{name}: quantiles belong to a summary, not a gauge")
        for label in labels:
            if not SNAKE.match(label) or label.startswith("__"):
                found.append(f"{name}: label {label!r} is not a plain snake_case name")
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            if key in seen:
                found.append(f"{sample.name}{sample.labels}: duplicated series")
            seen.add(key)
            if kind == "counter" and not sample.name.endswith(("_total", "_created")):
                found.append(f"{sample.name}: a counter's samples end in _total")
        if kind == "histogram":
            buckets = [s for s in family.samples if s.name.endswith("_bucket")]
            if not any(s.labels.get("le") == "+Inf" for s in buckets):
                found.append(f"{name}: a histogram needs a +Inf bucket")
    return found
