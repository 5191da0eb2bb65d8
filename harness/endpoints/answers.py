"""Every answer's identity, so what a client received can be checked without trusting whatever
stands between the endpoint and the client.

An answer's words are drawn from its id alone, and its first content token is a marker
`[[ans:<id>:<n>:<crc32>]]`: the id, how many words follow, and the CRC-32 of those words joined
by single spaces. A client holding the whole content can tell a complete answer from a cut one
(fewer words) or a spliced or altered one (the checksum) with no help from the system under
test; an endpoint asked to continue an answer (a prefill) can produce the rest of the very same
words. The format is the protocol: `harness/load/integrity.py` checks it without importing this.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass

from faker.providers.lorem.en_US import Provider

VOCABULARY: tuple[str, ...] = tuple(Provider.word_list)
MARKER = re.compile(r"\[\[ans:([0-9a-f]{12}):(\d+):([0-9a-f]{8})\]\]")


def words_of(answer_id: str, count: int) -> list[str]:
    """The words of answer `answer_id`, the same in every process (seeded by the id)."""
    return random.Random(answer_id).choices(VOCABULARY, k=count)


def checksum(words: list[str]) -> str:
    return f"{zlib.crc32(' '.join(words).encode()):08x}"


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer an endpoint produces: its id and its words, marker first."""

    id: str
    words: tuple[str, ...]

    @classmethod
    def new(cls, answer_id: str, count: int) -> Answer:
        return cls(answer_id, tuple(words_of(answer_id, count)))

    @property
    def marker(self) -> str:
        return f"[[ans:{self.id}:{len(self.words)}:{checksum(list(self.words))}]]"

    def tokens(self) -> list[str]:
        """What is sent, one token at a time: the marker travels with the first word, so an
        answer cut before its first word carries no content at all."""
        if not self.words:
            return [self.marker]
        return [f"{self.marker} {self.words[0]}", *self.words[1:]]

    def text(self) -> str:
        return " ".join(self.tokens())


def continued(prefill: str) -> tuple[Answer, int] | None:
    """The answer an assistant prefill is the start of, and how many of its words the prefill
    already holds; None when the prefill is not the start of one of our answers."""
    found = MARKER.search(prefill)
    if found is None:
        return None
    answer = Answer.new(found[1], int(found[2]))
    if answer.marker != found[0]:
        return None
    held = prefill[found.end() :].split()
    if held != list(answer.words[: len(held)]):
        return None
    return answer, len(held)
