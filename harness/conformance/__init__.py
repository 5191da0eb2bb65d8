"""The conformance suite: sixteen single-request LLM faults after the public failoverbench
catalogue, scored pass / partial / safe / fail (its own `catalogue.yaml`)."""

from harness.conformance.catalogue import Case, Catalogue, load
from harness.conformance.runner import run_conformance
from harness.conformance.scoring import Verdict

__all__ = ["Case", "Catalogue", "load", "run_conformance", "Verdict"]
