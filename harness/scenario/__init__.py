"""The scenario as pure data: the model (pydantic), files and suites, and the fault timeline."""

from harness.scenario.files import load_scenario, parse_scenario, scenario_files
from harness.scenario.model import AdminStep, Fault, NetworkFault, Scenario, ScenarioError
from harness.scenario.timeline import ActiveFault, Timeline

__all__ = [
    "ActiveFault",
    "AdminStep",
    "Fault",
    "load_scenario",
    "NetworkFault",
    "parse_scenario",
    "Scenario",
    "scenario_files",
    "ScenarioError",
    "Timeline",
]
