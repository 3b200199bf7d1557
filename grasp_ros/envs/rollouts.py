"""Random exploration data for training and evaluating world models.

Actions are held for a random number of steps (resampled with probability ``switch_prob`` each
step), so agents travel far enough to pass doors and corridors instead of jittering in place.
All episodes step together through :meth:`PointEnv.step_states`.
"""

from __future__ import annotations

import numpy as np

from grasp_ros.envs.base import PointEnv


def random_rollouts(env: PointEnv, episodes: int, length: int, seed: int,
                    switch_prob: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """States ``[episodes, length + 1, state_dim]`` and actions ``[episodes, length, 2]``.

    Starts are uniform over the free space (and, for the Wall, over door positions); actions
    are uniform in the action box and persist between switches.
    """
    rng = np.random.default_rng(seed)
    states = np.empty((episodes, length + 1, env.random_states(rng, 1).shape[1]))
    actions = np.empty((episodes, length, env.action_dim), dtype=np.float32)
    states[:, 0] = env.random_states(rng, episodes)
    a = rng.uniform(env.action_low, env.action_high, size=(episodes, env.action_dim))
    for t in range(length):
        switch = rng.random(episodes) < switch_prob
        fresh = rng.uniform(env.action_low, env.action_high, size=(episodes, env.action_dim))
        a = np.where(switch[:, None], fresh, a)
        actions[:, t] = a
        states[:, t + 1] = env.step_states(states[:, t], a)
    return states, actions
