"""The deadline of one ``plan`` call, kept between any two model calls.

The deadline bounds everything ``plan`` does, not only the iterations: every model call checks
the clock (``Planner.step_model``), and once what is left of the deadline is only what
returning the answer takes (its serial rollouts, timed), a call in a cold start's sampling or
inside an iteration (a GD rollout, a GRASP sync) raises :class:`OutOfTimeError` and the work
stops there. A stopped sampling falls back to the straight-line start; a stopped iteration
leaves the iterate of the last completed update, since every update follows its model calls.
The answer's own rollouts are the floor no deadline goes below.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class OutOfTimeError(Exception):
    """A model call found the deadline spent, save the time to return the answer."""


class Deadline:
    """When the running ``plan`` call's answer is due, and what returning it takes."""

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self.clock = time.perf_counter  # the planner's clock (Planner.use_clock)
        self.due: float | None = None  # a time on that clock; None: no deadline
        self.step_seconds = 0.0  # one step of the answer's two serial rollouts, timed once
        self.finish_seconds = 0.0  # what returning the last answer took
        self._preemptible = False

    def stop_at(self) -> float:
        """When preemptible work must stop: the due time less the time the answer takes, at
        most two serial rollouts (the candidates', then the best's if it is an older one)."""
        return self.due - max(self.finish_seconds, self.horizon * self.step_seconds)

    def check(self) -> None:
        """OutOfTimeError inside :meth:`interruptible` work that would leave too little time
        (room is kept for about one more serial call)."""
        if self._preemptible and self.clock() + self.step_seconds > self.stop_at():
            raise OutOfTimeError

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Model calls inside may raise OutOfTimeError once a deadline is given and spent."""
        before, self._preemptible = self._preemptible, self.due is not None
        try:
            yield
        finally:
            self._preemptible = before
