"""`bench-peers --rejudge`: the published table follows the reports as they judge now, from the
last run's own folders, without another run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.benchmarks import peers
from tests.reports.synthetic import outage_run

README = "# x\n\n<!-- bench:peers -->\nSTALE-QUOTE\n<!-- /bench:peers -->\n"


def _run(root: Path, system: str, stamp: str, scenario: str) -> Path:
    """An outage run of `system` (ours: resilient and control; a peer: `external`)."""
    made = outage_run(root / "made" / f"{system}{stamp}", fault=(10.0, 20.0), back_after=1.0)
    folder = root / "runs" / system / f"{stamp}-{scenario}"
    shutil.copytree(made, folder)
    if system != "ours":
        shutil.rmtree(folder / "control")
        (folder / "resilient").rename(folder / "external")
    (folder / "scenario.yaml").write_text(f"name: {scenario}\nmodels: {{count: 2}}\n")
    (folder / "results.json").write_text(json.dumps({"passed": True, "variants": {}}))  # stale
    return folder


def test_rejudge_publishes_each_scenarios_newest_run_as_judged_now(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "combine_main", lambda argv: 0)  # the repository's docs stay as they are
    for system in ("ours", *peers.PEERS):
        _run(tmp_path, system, "20261201T000000", "outage")
        _run(tmp_path, system, "20261203T000000", "outage")
    stale = tmp_path / "runs" / "litellm" / "20261201T000000-outage"
    (stale / "external" / "records.csv").unlink()  # the older run could not be judged at all
    out = tmp_path / "docs" / "peers.md"
    out.parent.mkdir()
    published = {"time_scale": 1.0, "command": "make bench-peers", "seconds": 1510, "conformance": {}}
    out.with_suffix(".json").write_text(json.dumps(published))
    readme = tmp_path / "README.md"
    readme.write_text(README)

    assert (
        peers.main(
            ["--rejudge", "--runs", str(tmp_path / "runs"), "--out", str(out), "--readme", str(readme)]
        )
        == 0
    )

    data = json.loads(out.with_suffix(".json").read_text())
    systems = [(cell["system"], cell["scenario"]) for cell in data["cells"]]
    assert systems == [(s, "outage") for s in ("resilient", "control", "litellm", "portkey")]
    verdicts = {cell["system"]: cell["passed"] for cell in data["cells"]}
    assert verdicts["control"] is False  # judged from the records, not the stale results.json
    assert "1510 s" in out.read_text() and "STALE-QUOTE" not in readme.read_text()
