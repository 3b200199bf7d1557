"""One closed-loop episode: a simulated world and an agent stepped on one simulated clock.

The demo, the sim recorder and the benchmark's closed-loop mode all run the same loop that the
robot runs: camera frames reach the agent stamped with the simulated time, the agent (a
:class:`PlannerRuntime`, or a scripted policy on ground truth) picks an action at the control
rate, the world executes it for one period, and the clock advances. They differ only in what
they record, so that is what the :class:`EpisodeHooks` methods are for: the demo writes a bag
and an animation, the recorder a robot-like bag, the benchmark sums planning effort.

Tick ``k`` happens at ``start_time + (first_step + k) * period`` (``first_step`` lets several
episodes share one clock). The episode ends after ``max_ticks`` ticks, on reaching the goal
(``until_success``), after executing a command whose status is in ``stop_after`` (the stop
command that GOAL_REACHED sends), or at once, unexecuted, on one whose status is in
``halt_on``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import numpy as np

from grasp_ros.control.runtime import Command, PlannerRuntime, Status
from grasp_ros.envs import Task, World
from grasp_ros.envs.agents import Policy

#: A camera frame: ``(capture stamp, receive stamp, RGB image)``, stamps in clock seconds.
Frame = tuple[float, float, np.ndarray]


class IdealCamera:
    """One frame per tick showing the world as it is at the tick, delivered at once."""

    def frames(
        self, until: float, stamp: float, states: list[np.ndarray], image: np.ndarray
    ) -> Iterable[Frame]:
        """The frames received by ``until`` (seconds since the start; ``inf``: the end)."""
        return [(stamp, stamp, image)]


@dataclass
class Tick:
    """One control tick as the hooks see it.

    Attributes:
        index: ticks before this one in the episode.
        stamp: the simulated time of the tick.
        state: the ground-truth state the action starts from.
        action: the action executed (the command's, or the scripted policy's).
        command: the runtime's command (``None`` for a scripted policy).
        tick_time: wall-clock seconds the agent took to decide.
        model_calls: batched model calls the planner made in this tick.
    """

    index: int
    stamp: float
    state: np.ndarray
    action: np.ndarray
    command: Command | None = None
    tick_time: float = 0.0
    model_calls: int = 0


@dataclass
class Outcome:
    """How the episode ended.

    Attributes:
        ticks: ticks whose action was executed.
        success: the world's success test held at the last state.
        last: the last tick (executed or halted on), ``None`` when there was none.
        halted: the episode ended on a ``halt_on`` status, its command not executed.
        end_stamp: the simulated time after the last executed action.
        states: ground-truth states, the start and one after each executed action.
    """

    ticks: int
    success: bool
    last: Tick | None
    halted: bool
    end_stamp: float
    states: list[np.ndarray] = field(default_factory=list)

    @property
    def final_state(self) -> np.ndarray:
        return self.states[-1]


class EpisodeHooks:
    """What a caller records; every method does nothing unless overridden."""

    def on_start(self, task: Task, stamp: float) -> None:
        """Before the first tick (the goal is set)."""

    def on_frame(self, capture: float, receive: float, image: np.ndarray) -> None:
        """A camera frame reached the agent (or, after the last tick, the end of the log)."""

    def on_state(self, stamp: float, state: np.ndarray) -> None:
        """The ground-truth state at a tick, and once more at the end."""

    def on_tick(self, tick: Tick) -> None:
        """The agent decided; the world has not moved yet."""

    def on_step(self, tick: Tick, state: np.ndarray, image: np.ndarray) -> None:
        """The world executed ``tick.action``: the new state and the new observation."""


def run_episode(
    env: World,
    task: Task,
    agent: PlannerRuntime | Policy,
    *,
    period: float,
    max_ticks: int,
    start_time: float = 0.0,
    first_step: int = 0,
    camera: IdealCamera | None = None,
    hooks: EpisodeHooks | None = None,
    until_success: bool = True,
    stop_after: Collection[Status] = (),
    halt_on: Collection[Status] = (),
    realtime: bool = False,
) -> Outcome:
    """Run ``task`` in ``env`` with ``agent`` (see the module docstring); ``env`` is reset."""
    camera = camera or IdealCamera()
    hooks = hooks or EpisodeHooks()
    runtime = agent if isinstance(agent, PlannerRuntime) else None
    image = env.reset(state=task.start_state)
    states = [env.state]
    if runtime is not None:
        runtime.on_goal(task.goal_image, start_time + first_step * period)
    hooks.on_start(task, start_time + first_step * period)
    last: Tick | None = None
    success, halted, k = False, False, 0
    wall0 = time.monotonic()
    while k < max_ticks:
        since = k * period
        stamp = start_time + (first_step + k) * period
        for capture, receive, frame in camera.frames(since, stamp, states, image):
            hooks.on_frame(capture, receive, frame)
            if runtime is not None:
                runtime.on_image(frame, capture)
        hooks.on_state(stamp, states[-1])
        last = _decide(agent, runtime, k, since, stamp, states[-1])
        if last.command is not None and last.command.status in halt_on:
            halted = True
            break
        hooks.on_tick(last)
        image = env.step(last.action)
        states.append(env.state)
        k += 1
        hooks.on_step(last, states[-1], image)
        success = env.success(states[-1], task.goal_state)
        if (until_success and success) or (last.command and last.command.status in stop_after):
            break
        if realtime:
            time.sleep(max(0.0, wall0 + k * period - time.monotonic()))
    end = start_time + (first_step + k) * period
    for capture, receive, frame in camera.frames(math.inf, end, states, image):
        hooks.on_frame(capture, receive, frame)
    hooks.on_state(end, states[-1])
    return Outcome(k, success, last, halted, end, states)


def _decide(
    agent: PlannerRuntime | Policy,
    runtime: PlannerRuntime | None,
    k: int,
    since: float,
    stamp: float,
    state: np.ndarray,
) -> Tick:
    if runtime is None:
        action = np.asarray(agent(since, state), dtype=np.float32)
        return Tick(k, stamp, state, action)
    before = runtime.planner.model_calls
    t0 = time.perf_counter()
    cmd = runtime.tick(stamp)
    tick_time = time.perf_counter() - t0
    calls = runtime.planner.model_calls - before
    return Tick(k, stamp, state, cmd.action, cmd, tick_time, calls)
