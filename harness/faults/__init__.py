"""One module per kind of fault (network toxic, down, endpoint) behind one small interface, and
the registry the runner looks them up in."""

from harness.faults.base import FaultKind, FaultSurface
from harness.faults.registry import REGISTRY, kind_of

__all__ = ["REGISTRY", "FaultKind", "FaultSurface", "kind_of"]
