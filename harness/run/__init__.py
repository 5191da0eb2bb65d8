"""One scenario run: runner, variants, fault and operator appliers, observers (progress, state
snapshots, the dashboard's run status) off the fault-applying path, the record tail, run.json."""

from harness.run.runner import Runner, RunResult, format_summary, main_progress
from harness.run.sut import GatewayProcess
from harness.run.variant import VariantResult

__all__ = ["format_summary", "GatewayProcess", "main_progress", "Runner", "RunResult", "VariantResult"]
