"""Scripted agents that act on ground truth: the task's expert and random exploration.

They stand in for a robot's driver when recording a simulator bag, and need no model; a
planner-driven agent is a :class:`~grasp_ros.control.PlannerRuntime` instead. Each is a policy
``(seconds since the start, ground-truth state) -> action``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from grasp_ros.envs.base import PointEnv, Task, World

#: A scripted agent: ``(seconds since the start, ground-truth state) -> action``.
Policy = Callable[[float, np.ndarray], np.ndarray]

#: Cells of the shortest path the expert aims ahead: one step moves ``speed`` = 2 cells.
EXPERT_LOOKAHEAD = 2


def expert_policy(env: World, task: Task) -> Policy:
    """The task's expert: its own solution where it has one, else a shortest-path follower.

    A task with ``expert_actions`` (Push-T's scripted pusher) is solved by playing them, one
    per call, then standing still. In a point world the expert aims a few cells ahead along
    the BFS path on ground truth; that path may cut a wall corner diagonally, which the
    non-sliding Wall dynamics stop dead, so then the action is split into its axis moves and
    the first that is free is taken.
    """
    if task.expert_actions is not None:
        return _replay(task.expert_actions, env.action_dim)
    if not isinstance(env, PointEnv):
        raise ValueError(f"the {env.name} world's tasks carry no expert actions")
    dist = env._distance_field(task.goal_state)
    goal = np.asarray(task.goal_state, dtype=np.float64)[:2]
    scale = dist.shape[0] / env.world_size

    def policy(_t: float, state: np.ndarray) -> np.ndarray:
        cell = _nearest_reachable_cell(dist, state[:2] * scale)
        path = _descend(dist, cell)
        if len(path) <= EXPERT_LOOKAHEAD + 1:
            target = goal
        else:
            row, col = path[EXPERT_LOOKAHEAD]
            target = (np.array([col, row]) + 0.5) / scale
        a = np.clip((target - state[:2]) / env.speed, env.action_low, env.action_high)
        options = np.array([a, [0.0, a[1]], [a[0], 0.0]])
        nxt = env.step_states(np.repeat(state[None], len(options), 0), options)
        free = np.linalg.norm(nxt[:, :2] - state[:2] - env.speed * options, axis=1) < 1e-9
        moved = np.linalg.norm(nxt[:, :2] - state[:2], axis=1) > 1e-9
        usable = free & moved
        return options[int(np.argmax(usable))] if usable.any() else a

    return policy


def _replay(actions: np.ndarray, action_dim: int) -> Policy:
    """Plays ``actions`` one per call, then zeros."""
    queue = list(np.asarray(actions, dtype=np.float32))

    def policy(_t: float, _state: np.ndarray) -> np.ndarray:
        return queue.pop(0) if queue else np.zeros(action_dim, np.float32)

    return policy


def _nearest_reachable_cell(dist: np.ndarray, xy: np.ndarray) -> tuple[int, int]:
    """The grid cell ``(row, col)`` under ``xy``, or its closest-to-goal neighbour if blocked."""
    n = dist.shape[0]
    col, row = (int(v) for v in np.clip(np.floor(xy), 0, n - 1))
    if np.isfinite(dist[row, col]):
        return row, col
    around = [
        (r, c)
        for r in range(max(row - 1, 0), min(row + 2, n))
        for c in range(max(col - 1, 0), min(col + 2, n))
    ]
    return min(around, key=lambda rc: dist[rc])


def _descend(dist: np.ndarray, cell: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells from ``cell`` to the goal, each step to the 8-neighbour nearest the goal."""
    n = dist.shape[0]
    path = [cell]
    while dist[cell] > 0:
        row, col = cell
        nxt = min(
            (
                (r, c)
                for r in range(max(row - 1, 0), min(row + 2, n))
                for c in range(max(col - 1, 0), min(col + 2, n))
            ),
            key=lambda rc: dist[rc],
        )
        if not dist[nxt] < dist[cell]:
            break
        path.append(nxt)
        cell = nxt
    return path


def random_policy(env: World, seed: int, switch_prob: float = 0.15) -> Policy:
    """Random actions held for random spells (resampled with ``switch_prob`` each step)."""
    rng = np.random.default_rng(seed)
    held = rng.uniform(env.action_low, env.action_high)

    def policy(_t: float, _state: np.ndarray) -> np.ndarray:
        nonlocal held
        if rng.random() < switch_prob:
            held = rng.uniform(env.action_low, env.action_high)
        return held.copy()

    return policy
