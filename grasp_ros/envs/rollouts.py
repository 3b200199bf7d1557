"""Random exploration data for training and evaluating world models.

Actions are held for a random number of steps (resampled with probability ``switch_prob`` each
step), so agents travel far enough to pass doors and corridors instead of jittering in place.
All episodes step together through :meth:`PointEnv.step_states`.
"""

from __future__ import annotations

import numpy as np

from grasp_ros.envs.base import PointEnv


def random_rollouts(
    env: PointEnv,
    episodes: int,
    length: int,
    seed: int,
    switch_prob: float = 0.15,
    still_prob: float = 0.0,
    starts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """States ``[episodes, length + 1, state_dim]`` and actions ``[episodes, length, 2]``.

    Starts come from :meth:`PointEnv.exploration_states` (uniform, or biased towards narrow
    passages); actions persist between switches. A fraction ``still_prob`` of the held actions
    is zero: plans with spare steps stand still, and a model that never saw standing still
    drifts (measured: 4 units over 40 zero actions, about the whole success radius).
    ``starts`` ``[episodes, state_dim]`` replaces the drawn start states when given.
    """
    rng = np.random.default_rng(seed)
    states = np.empty((episodes, length + 1, env.random_states(rng, 1).shape[1]))
    actions = np.empty((episodes, length, env.action_dim), dtype=np.float32)
    states[:, 0] = env.exploration_states(rng, episodes) if starts is None else starts
    a = _random_actions(env, rng, episodes, still_prob)
    for t in range(length):
        switch = rng.random(episodes) < switch_prob
        a = np.where(switch[:, None], _random_actions(env, rng, episodes, still_prob), a)
        actions[:, t] = a
        states[:, t + 1] = env.step_states(states[:, t], a)
    return states, actions


def _random_actions(
    env: PointEnv, rng: np.random.Generator, n: int, still_prob: float = 0.0
) -> np.ndarray:
    """Half uniform in the action box, half full speed in a uniform direction; some still.

    Planners push actions to the bounds, so full-speed moves must be as well covered as slow
    ones; uniform sampling in the box alone rarely produces them.
    """
    low, high = env.action_low, env.action_high
    box = rng.uniform(low, high, size=(n, env.action_dim))
    angle = rng.uniform(0, 2 * np.pi, size=n)
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    full = direction / np.abs(direction).max(axis=1, keepdims=True)
    full = low + (full + 1) * (high - low) / 2
    moving = np.where((rng.random(n) < 0.5)[:, None], full, box)
    if not still_prob:
        return moving  # draws nothing more, so data without still actions is unchanged
    still = np.clip(np.zeros_like(moving), low, high)
    return np.where((rng.random(n) < still_prob)[:, None], still, moving)
