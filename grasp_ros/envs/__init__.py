"""Reference worlds: environments that grasp_ros plans in, trains on and benchmarks with.

All share one API (:class:`~grasp_ros.envs.base.World`): ``reset(seed=None, state=None)``,
``step(action)``, ``render()`` returning RGB ``uint8 [H, W, 3]``, the ground-truth ``state``,
``sample_task(horizon, seed)`` returning a :class:`Task`, ``success(state, goal_state)``,
``action_dim``, ``action_low`` and ``action_high``.
"""

from __future__ import annotations

from grasp_ros.envs.base import PointEnv, Task, World
from grasp_ros.envs.maze import MazeEnv
from grasp_ros.envs.pusht import PushTEnv
from grasp_ros.envs.rollouts import random_rollouts
from grasp_ros.envs.wall import WallEnv

ENVS: dict[str, type[World]] = {"wall": WallEnv, "maze": MazeEnv, "pusht": PushTEnv}


def metres_per_unit(name: str) -> float:
    """Metres per world unit of the reference world ``name`` (1.0 for a model trained
    elsewhere, whose ``project()`` is taken to be in metres already)."""
    cls = ENVS.get(name.lower())
    return 1.0 if cls is None else cls.metres_per_unit


def make_env(name: str, **kwargs: object) -> World:
    """Build a reference world by name (``'wall'``, ``'maze'`` or ``'pusht'``); kwargs go to its
    class."""
    try:
        cls = ENVS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; choose one of {sorted(ENVS)}") from None
    return cls(**kwargs)  # type: ignore[arg-type]


__all__ = [
    "ENVS",
    "MazeEnv",
    "PointEnv",
    "PushTEnv",
    "Task",
    "WallEnv",
    "World",
    "make_env",
    "metres_per_unit",
    "random_rollouts",
]
