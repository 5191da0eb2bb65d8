"""A pipeline's calm: while every guard next to the attempt is in its ordinary state (breaker
closed, no trial or rate-limit streak), the attempt engine neither asks them to admit nor calls
their success hooks; it logs a fast success here, and the guards count the log later.

Why: in a gateway most requests meet nothing but calm guards, and each admit or success hook
was a frame of its own, run cold once per request (in process, callgrind counted the guards'
hooks at ~8 k of the policies' ~24 k instructions a request). The guards' figures come out the
same: a guard says when it stops or starts being calm (`changed`), an attempt is logged only
if nothing changed while it ran, and every reader or writer of a guard's figures drains the log
first, so the successes are counted in the order they came, before anything that came after
them. A guard takes part in one calm at most: two logs could not tell which success came first.
Private: `Pipeline` builds one when every guard with an admit or a success hook can take part
(`Guard.join_calm`) and none takes part in another already.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

LOG_MOST = 3 * 32
"""Entries (three per success) the engine logs before it drains: the guards then count 32
successes at once, their code and data in the cache."""

Sink = Callable[[list[float]], None]
"""Takes the logged successes, `(started, ended, first answer)` in turn, oldest first."""


class Member(Protocol):
    def calm_into(self, calm: Calm) -> bool: ...


class Calm:
    """`quiet`: every member is calm now; `epoch` changes whenever that may have changed; `permit`
    is what a member's admit would have put in `ctx.permit` (the breaker's generation; -1 when
    no member gives permits, and the context's is left alone), `slow` the shortest duration a
    member no longer counts as an ordinary success."""

    __slots__ = ("epoch", "log", "members", "permit", "quiet", "sinks", "slow")

    def __init__(self, members: Sequence[Member] = (), sinks: Sequence[Sink] = ()) -> None:
        self.members = tuple(members)
        self.sinks = tuple(sinks)
        self.log: list[float] = []
        self.epoch = 0
        self.quiet = False
        self.permit = -1
        self.slow = math.inf

    def changed(self) -> None:
        """A member's state moved: ask them all again (a successful attempt under way is then
        settled through the guards' own hooks, as it would have been without a calm)."""
        self.epoch += 1
        self.permit = -1
        self.slow = math.inf
        self.quiet = bool(self.members) and all(member.calm_into(self) for member in self.members)

    def drain(self) -> None:
        """Hand the logged successes to the members that count them, and start a new log."""
        log = self.log
        if log:
            self.log = []
            for sink in self.sinks:
                sink(log)


NEVER = Calm()
"""The calm of a pipeline whose guards cannot all take part: it has no members, so it is
never quiet and no attempt is logged in it."""
