"""The simulated robot that sim_node runs: a reference world, its task and the command it holds.

A real robot keeps executing its last command for a while and stops once commands stop
coming; this one holds the newest command for ``action_timeout`` seconds of the node's clock,
then executes zeros. The world moves only through its own API (`PointEnv.reset`, ``step``,
``success``), the calls the closed-loop episode driver (`grasp_ros.control.episode`) makes, so
the node and the offline tools move the same world the same way. No rclpy: the node converts
messages and calls this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grasp_ros.envs import PointEnv, Task


@dataclass(frozen=True)
class Step:
    """One step of the world: the action executed, the state and image after it.

    ``reached`` is True on the first step that ends within the task's success radius.
    """

    action: np.ndarray
    state: np.ndarray
    image: np.ndarray
    reached: bool


class SimRobot:
    """A world with a task, driven by held commands (see the module docstring)."""

    def __init__(self, env: PointEnv, horizon: int, action_timeout: float) -> None:
        self.env, self.horizon, self.action_timeout = env, horizon, action_timeout
        self._command = np.zeros(env.action_dim, np.float32)
        self._command_at = -np.inf
        self.task: Task | None = None
        self.image: np.ndarray | None = None
        self.seed, self.steps, self.reached = 0, 0, False

    def new_task(self, seed: int) -> Task:
        """Draw the task for ``seed`` and put the agent at its start."""
        self.task = self.env.sample_task(self.horizon, seed)
        self.image = self.env.reset(state=self.task.start_state)
        self.seed, self.steps, self.reached = seed, 0, False
        return self.task

    def command(self, action: np.ndarray, now: float) -> None:
        """Hold ``action`` from ``now`` on; ValueError (nothing held) unless it fits the world."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.env.action_dim,) or not np.isfinite(action).all():
            raise ValueError(
                f"an action of shape {list(action.shape)}: the {self.env.name} world takes "
                f"{self.env.action_dim} finite values"
            )
        self._command, self._command_at = action, now

    def step(self, now: float) -> Step:
        """Execute the held command (zeros once it is older than ``action_timeout``)."""
        fresh = now - self._command_at <= self.action_timeout
        action = self._command if fresh else np.zeros(self.env.action_dim, np.float32)
        self.image = self.env.step(action)
        self.steps += 1
        state = self.env.state
        reached = not self.reached and self.env.success(state, self.task.goal_state)
        self.reached = self.reached or reached
        return Step(action, state, self.image, reached)
