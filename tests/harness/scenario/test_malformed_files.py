"""Whatever a scenario file holds, `validate` and `run` answer 0 (valid) or 2 with one line
naming the problem: never a traceback, never exit 1 (CI reads 1 as "an SLO was breached")."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import cli

VALID: dict[str, Any] = {
    "name": "fuzzed",
    "seed": 3,
    "models": {"count": 3, "latency": {"first_token": 0.02, "tokens_min": 4, "tokens_max": 9}},
    "system_under_test": {"plan": "hedged", "hedge_delay": 0.2, "policies": {"retry": {"attempts": 2}}},
    "load": {"rate": 20, "users": 2, "stream_share": 0.5},
    "phases": {"warmup": 1, "baseline": 2, "recovery": 1},
    "faults": [
        {"at": 0, "for": 2, "target": "model-0", "down": True},
        {
            "at": 1,
            "for": 1,
            "target": ["model-1"],
            "network": {"type": "latency", "attributes": {"latency": 200}},
        },
        {"at": 0, "for": 2, "target": {"fraction": 0.5}, "endpoint": {"error_rate": 0.3, "status": 503}},
    ],
    "admin": [{"at": 1, "for": 1, "action": "isolate", "target": "model-2", "reason": "drill"}],
    "slo": {"uptime": ">= 99%"},
}

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["30%", "", "model-9", "all", "x/../..", "latncy", ".inf", "-1", "\u202e", "🙂"]),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(
        st.sampled_from(["latncy", "fraction", "eror_rate", "type", "x"]), st.integers(), max_size=2
    ),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the valid scenario a mutation can hit."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


PATHS = _paths(VALID)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "unknown"]))
            if action == "replace":
                parent[path[-1]] = draw(JUNK)
            elif action == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.sampled_from(["bogus", "latncy", "for_", "eror_rate"]))] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    return yaml.safe_dump(data, allow_unicode=True)


RAW = st.one_of(
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
    st.integers(1, 3000).map(lambda depth: "a: " + "[" * depth + "]" * depth),
    st.sampled_from(
        [
            "",
            "---\n...\n",
            "- a\n- b\n",
            "name: [unclosed\n",
            "name: x\nname: y\n",
            "!!python/object:os.system x",
        ]
    ),
)


def _run(cli_args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, cli_args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(mutated(), RAW))
def test_any_file_validates_or_exits_2_with_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    code, stderr = _run(["validate", str(path)])
    assert code in (0, 2), stderr
    if code == 2:
        assert stderr.startswith("chaos-harness: ") and stderr.count("\n") == 1, stderr
        assert "Traceback" not in stderr


def test_bytes_that_are_not_utf8_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    code, stderr = _run(["validate", str(path)])
    assert code == 2 and "not UTF-8" in stderr


def test_infinite_and_unsafe_values_are_named(tmp_path: Path) -> None:
    cases = {
        "phases: {baseline: .inf}": "phases.baseline",
        "name: 'x/../../..'": "name",
        "faults: [{at: 0, for: 1, network: {type: latency, attributes: {latncy: 300}}}]": "latncy",
        "faults: [{at: 0, for: 1, endpoint: {error_rate: '30%', status: 503}}]": "not 30%",
        "faults: [{at: 0, for: 1, endpoint: {eror_rate: 0.3}}]": "eror_rate",
        "models: {latency: {tokens_min: 9, tokens_max: 2}}": "tokens_min",
    }
    for line, named in cases.items():
        text = line if line.startswith("name") else f"name: ok\n{line}"
        path = tmp_path / "case.yaml"
        path.write_text(text + "\n", encoding="utf-8")
        code, stderr = _run(["validate", str(path)])
        assert code == 2 and named in stderr, (line, stderr)
