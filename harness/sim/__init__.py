"""The same scenario in virtual time, with no socket: our gateway's own code against the
endpoints' behaviour and simulated toxics, in one process (`run --sim`), and the search for
fault timelines that breach an SLO (`explore`)."""

from harness.sim.run import Simulator, simulate_variant

__all__ = ["simulate_variant", "Simulator"]
