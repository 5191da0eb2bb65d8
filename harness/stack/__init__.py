"""Infrastructure processes only: process supervision, the Toxiproxy adapter, and the stack of
simulated endpoints behind Toxiproxy as local processes (default) or containers."""

from harness.stack.local import Stack, start_stack
from harness.stack.processes import EnvironmentProblem
from harness.stack.toxiproxy import PROJECT_ROOT, Toxics, find_server_binary

__all__ = ["PROJECT_ROOT", "EnvironmentProblem", "find_server_binary", "Stack", "start_stack", "Toxics"]
