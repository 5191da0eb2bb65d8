"""Is what the client received what an endpoint produced? Judged from the content alone.

The simulated endpoints start every answer with a marker `[[ans:<id>:<n>:<crc32>]]`: the
answer's id, how many words follow it, and the CRC-32 of those words joined by single spaces
(`harness/endpoints/answers.py` writes it; this reads it without importing it: the load
process imports nothing of ours). So a cut answer is caught even when the system under test
ends it with `finish_reason: stop` and `[DONE]`, and a spliced or altered one by its checksum.
No locust import here.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

MARKER = re.compile(r"\[\[ans:([0-9a-f]{12}):(\d+):([0-9a-f]{8})\]\]")

WHOLE = "whole"
TRUNCATED = "truncated"
CORRUPTED = "corrupted"
UNMARKED = "unmarked"
"""No marker at all: not produced by any endpoint (a degraded stand-in, or made up)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the content is, the answer it claims to be, and how many of its words arrived."""

    integrity: str
    answer_id: str = ""
    words: int = 0
    expected: int = 0


def judge(content: str) -> Verdict:
    """Whole, truncated (a prefix of the answer), corrupted (anything else), or unmarked."""
    found = MARKER.search(content)
    if found is None:
        return Verdict(UNMARKED)
    answer_id, expected, crc = found[1], int(found[2]), found[3]
    if content[: found.start()].strip():
        return Verdict(CORRUPTED, answer_id, 0, expected)  # something before the answer began
    words = content[found.end() :].split()
    if len(words) > expected:
        return Verdict(CORRUPTED, answer_id, len(words), expected)
    if len(words) == expected:
        whole = f"{zlib.crc32(' '.join(words).encode()):08x}" == crc
        return Verdict(WHOLE if whole else CORRUPTED, answer_id, len(words), expected)
    return Verdict(TRUNCATED, answer_id, len(words), expected)
