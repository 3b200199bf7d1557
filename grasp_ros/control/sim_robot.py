"""The simulated robot that sim_node runs: a reference world, its task and the command it holds.

A real robot keeps executing its last command for a while and stops once commands stop
coming; this one holds the newest command for ``action_timeout`` seconds of the node's clock,
then executes zeros. A command may be a chunk of actions ``dt`` apart (the planner's
``action_chunk``): they are executed in turn, and the last is held for ``action_timeout``.
The world moves only through its own API (`PointEnv.reset`, ``step``, ``success``), the calls
the closed-loop episode driver (`grasp_ros.control.episode`) makes, so the node and the offline
tools move the same world the same way. No rclpy: the node converts messages and calls this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grasp_ros.envs import PointEnv, Task


@dataclass(frozen=True)
class Step:
    """One step of the world: the action executed (row ``index`` of the command's chunk), the
    state and image after it.

    ``reached`` is True on the first step that ends within the task's success radius.
    """

    action: np.ndarray
    index: int
    state: np.ndarray
    image: np.ndarray
    reached: bool


class SimRobot:
    """A world with a task, driven by held commands (see the module docstring)."""

    def __init__(self, env: PointEnv, horizon: int, action_timeout: float) -> None:
        self.env, self.horizon, self.action_timeout = env, horizon, action_timeout
        self._chunk = np.zeros((1, env.action_dim), np.float32)
        self._command_at, self._dt = -np.inf, 1.0
        self.task: Task | None = None
        self.image: np.ndarray | None = None
        self.seed, self.steps, self.reached = 0, 0, False

    def new_task(self, seed: int) -> Task:
        """Draw the task for ``seed`` and put the agent at its start."""
        self.task = self.env.sample_task(self.horizon, seed)
        self.image = self.env.reset(state=self.task.start_state)
        self.seed, self.steps, self.reached = seed, 0, False
        return self.task

    def command(self, actions: np.ndarray, now: float, dt: float = 1.0) -> None:
        """Execute ``actions`` (one action, or a chunk ``[k, action_dim]`` of actions ``dt``
        seconds apart) from ``now`` on; ValueError (nothing held) unless they fit the world."""
        actions = np.asarray(actions, dtype=np.float32)
        chunk = actions[None] if actions.ndim == 1 else actions
        dim = self.env.action_dim
        if chunk.ndim != 2 or chunk.shape[1:] != (dim,) or not len(chunk):
            chunk = None
        if chunk is None or not np.isfinite(chunk).all():
            raise ValueError(
                f"an action of shape {list(actions.shape)}: the {self.env.name} world takes "
                f"{self.env.action_dim} finite values (or k rows of them)"
            )
        if not dt > 0:
            raise ValueError(f"a chunk's dt must be positive, got {dt}")
        self._chunk, self._command_at, self._dt = chunk, now, float(dt)

    def step(self, now: float) -> Step:
        """Execute the command's action due at ``now`` (zeros once the last one is older than
        ``action_timeout``)."""
        age, last = now - self._command_at, len(self._chunk) - 1
        fresh = age <= last * self._dt + self.action_timeout
        index = min(last, max(0, int(age // self._dt))) if fresh else 0
        action = self._chunk[index] if fresh else np.zeros(self.env.action_dim, np.float32)
        self.image = self.env.step(action)
        self.steps += 1
        state = self.env.state
        reached = not self.reached and self.env.success(state, self.task.goal_state)
        self.reached = self.reached or reached
        return Step(action, index, state, self.image, reached)
