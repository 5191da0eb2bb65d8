"""The speed bench measures our gateway against an earlier commit's on one stack, in the same
minutes, and judges the paired change against the goal as the reports judge."""

from __future__ import annotations

import json
import subprocess

from harness.benchmarks import versus
from harness.benchmarks.versus import PROJECT_ROOT, summarise


def test_the_verdict_needs_the_whole_interval_past_the_goal():
    base = [0.8] * 16
    assert summarise(base, [0.36] * 16)["verdict"] == "pass"  # -55 % every round
    assert summarise(base, [0.6] * 16)["verdict"] == "fail"  # -25 %
    straddling = [0.36, 0.44] * 8  # -55 % and -45 % in turn: the interval holds both
    assert summarise(base, straddling)["verdict"] == "inconclusive"


def test_an_unknown_base_is_refused_with_exit_code_2(tmp_path, capsys):
    code = versus.main(["--base", "no-such-commit-0123", "--out", str(tmp_path / "speed.md")])
    assert code == 2
    assert "no-such-commit-0123" in capsys.readouterr().out
    assert not (tmp_path / "speed.md").exists()


def test_head_against_itself_runs_both_gateways_and_leaves_no_worktree_behind(tmp_path):
    out, readme = tmp_path / "speed.md", tmp_path / "README.md"
    readme.write_text("before\n<!-- bench:speed -->\nold\n<!-- /bench:speed -->\nafter\n")
    argv = ["--base", "HEAD", "--rounds", "6", "--rate", "40", "--duration", "0.4"]
    assert versus.main([*argv, "--out", str(out), "--readme", str(readme)]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["base_commit"] == data["head_commit"]
    assert all(ms > 0 for side in data["cpu_ms"].values() for ms in side) and len(data["cpu_ms"]["base"]) == 6
    assert data["verdict"] == "fail"  # the same code is not twice as fast as itself
    assert "Paired change" in readme.read_text() and "old" not in readme.read_text()
    listed = ["git", "-C", str(PROJECT_ROOT), "worktree", "list"]
    assert str(tmp_path) not in subprocess.run(listed, capture_output=True, text=True).stdout
