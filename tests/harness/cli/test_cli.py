import subprocess
import sys

from harness.cli import main


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert "chaos-harness, version" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out


def test_unknown_command_exits_2(capsys):
    assert main(["no-such-command"]) == 2


def test_python_dash_m_harness_works():
    result = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "chaos-harness" in result.stdout


def test_demo_shows_failover_degradation_and_restoration(capsys):
    from harness.sim.tour import PHASES

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = {}
    for name, _, _ in PHASES:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        rows[name] = [int(x) for x in line[len(name) :].split()]
    total, primary, backup, degraded, errors = rows["primary down"]
    assert (primary, backup, errors) == (0, total, 0)
    total, primary, backup, degraded, errors = rows["both down"]
    assert (degraded, errors) == (total, 0)
    total, primary, backup, degraded, errors = rows["primary back"]
    assert primary > backup > 0  # progressive restoration shares traffic while it climbs
    assert "restoration complete" in out
    assert "-> isolate" in out
