"""Reference worlds: determinism, walls, task difficulty and success checks."""

from __future__ import annotations

import numpy as np
import pytest

from grasp_ros.envs import MazeEnv, Task, WallEnv, make_env, random_rollouts

ENV_NAMES = ["wall", "maze"]


def _fewest_steps(env, task: Task, max_steps: int) -> int | None:
    """Fewest steps to success through the true dynamics (BFS over 16 full-speed actions).

    States are merged on a half-unit lattice, so this is an upper bound on the true optimum.
    """
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    moves = np.stack([np.cos(angles), np.sin(angles)], 1)
    moves = moves / np.abs(moves).max(1, keepdims=True)
    frontier = task.start_state[None]
    seen: set[tuple[int, int]] = set()
    for t in range(max_steps + 1):
        gap = np.linalg.norm(frontier[:, :2] - task.goal_state[None, :2], axis=1)
        if (gap < env.success_radius).any():
            return t
        nxt = env.step_states(
            np.repeat(frontier, len(moves), 0), np.tile(moves, (len(frontier), 1))
        )
        keys = np.round(nxt[:, :2] * 2).astype(int)
        _, first = np.unique(keys, axis=0, return_index=True)
        fresh = [i for i in first if tuple(keys[i]) not in seen]
        seen.update(tuple(keys[i]) for i in fresh)
        frontier = nxt[fresh]
    return None


@pytest.mark.parametrize("name", ENV_NAMES)
def test_reset_and_step_are_deterministic(name):
    env_a, env_b = make_env(name), make_env(name, seed=123)
    obs_a, obs_b = env_a.reset(seed=7), env_b.reset(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 2))
    for a in actions:
        obs_a, obs_b = env_a.step(a), env_b.step(a)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(env_a.state, env_b.state)
    assert obs_a.shape == (64, 64, 3) and obs_a.dtype == np.uint8
    np.testing.assert_array_equal(obs_a, env_a.render())


@pytest.mark.parametrize("name", ENV_NAMES)
def test_reset_to_task_state_restores_the_observation(name):
    env = make_env(name)
    task = env.sample_task(20, seed=3)
    env.reset(seed=99)
    np.testing.assert_array_equal(env.reset(state=task.start_state), task.start_image)
    np.testing.assert_array_equal(env.state, task.start_state)
    env.reset(state=task.goal_state)
    np.testing.assert_array_equal(env.render(), task.goal_image)
    with pytest.raises(ValueError, match="shape"):
        env.reset(state=np.zeros(7))


@pytest.mark.parametrize("name", ENV_NAMES)
def test_image_size_is_configurable(name):
    env = make_env(name, image_size=96)
    assert env.reset(seed=0).shape == (96, 96, 3)


def test_wall_free_motion_follows_dino_wm_dynamics():
    env = WallEnv()
    env.reset(state=np.array([10.0, 20.0, 32.0]))
    env.step([0.5, -1.0])
    np.testing.assert_allclose(env.state, [11.0, 18.0, 32.0])
    env.step([5.0, 0.0])  # clipped to the action box
    np.testing.assert_allclose(env.state, [13.0, 18.0, 32.0])


def test_wall_blocks_and_the_door_lets_through():
    env = WallEnv()
    env.reset(state=np.array([20.0, 10.0, 40.0]))  # far from the door
    for _ in range(20):
        env.step([1.0, 0.0])
    assert 28.0 <= env.state[0] < env.wall_x[0]
    env.reset(state=np.array([20.0, 40.0, 40.0]))  # level with the door
    for _ in range(20):
        env.step([1.0, 0.0])
    assert env.state[0] > 50.0
    assert env.valid(env.state[None])[0]


def test_wall_slides_by_default_and_stops_dead_with_dino_wm_rule():
    start = np.array([28.0, 10.0, 40.0])  # 1 unit left of the wall, far from the door
    slide = WallEnv()
    slide.reset(state=start)
    slide.step([1.0, 1.0])
    np.testing.assert_allclose(slide.state[:2], [28.5, 12.0])
    stop = WallEnv(sliding=False)
    stop.reset(state=start)
    stop.step([1.0, 1.0])  # stopped on the diagonal, 0.5 short of the wall face
    np.testing.assert_allclose(stop.state[:2], [29 - 0.5 / np.sqrt(2), 11 - 0.5 / np.sqrt(2)])


def test_wall_door_is_visible_and_moves_with_the_state():
    env = WallEnv()
    low = env.reset(state=np.array([10.0, 10.0, 20.0]))
    high = env.reset(state=np.array([10.0, 10.0, 44.0]))
    column = 32
    assert low[20, column].tolist() == [255, 255, 255]  # the door is open floor
    assert high[20, column].tolist() == [0, 0, 0]  # the wall, once the door moved
    assert high[44, column].tolist() == [255, 255, 255]


def test_maze_agent_slides_along_walls_and_never_enters_them():
    env = MazeEnv()
    states, _ = random_rollouts(env, 64, 60, seed=0)
    assert env.valid(states.reshape(-1, 2)).all()
    env.reset(state=np.array([12.0, 10.0]))  # top corridor, wall above
    env.step([1.0, -1.0])
    assert env.state[0] == pytest.approx(14.0)  # slid right, stopped going up


@pytest.mark.parametrize(("name", "horizons"), [("wall", [10, 20, 30, 40]), ("maze", [20, 50, 80])])
def test_tasks_need_about_the_requested_horizon(name, horizons):
    env = make_env(name)
    for horizon in horizons:
        task = env.sample_task(horizon, seed=horizon)
        assert 0.75 * horizon <= task.optimal_steps <= horizon
        assert task.non_greedy
        assert task.optimal_steps == env.optimal_steps(task.start_state, task.goal_state)
        straight = np.abs(task.goal_state[:2] - task.start_state[:2]).max() / env.speed
        assert task.optimal_steps > straight  # the detour is real
        steps = _fewest_steps(env, task, horizon)
        assert steps is not None and 0.8 * task.optimal_steps <= steps <= task.optimal_steps


def test_wall_tasks_cross_the_wall_with_one_door():
    env = WallEnv()
    for seed in range(5):
        task = env.sample_task(30, seed=seed)
        assert task.start_state[2] == task.goal_state[2]
        sides = np.sign(np.array([task.start_state[0], task.goal_state[0]]) - 32.0)
        assert sides[0] == -sides[1]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_tasks_are_deterministic_and_vary_with_the_seed(name):
    env = make_env(name)
    a, b, c = env.sample_task(30, seed=1), env.sample_task(30, seed=1), env.sample_task(30, 2)
    np.testing.assert_array_equal(a.start_state, b.start_state)
    np.testing.assert_array_equal(a.goal_image, b.goal_image)
    assert not np.array_equal(a.goal_state, c.goal_state)
    assert a.goal_image.shape == (64, 64, 3) and a.goal_image.dtype == np.uint8


def test_too_long_horizons_fall_back_to_the_longest_task():
    env = WallEnv()
    task = env.sample_task(200, seed=0)
    assert 30 <= task.optimal_steps < 200


@pytest.mark.parametrize("name", ENV_NAMES)
def test_success_is_a_radius_around_the_goal_position(name):
    env = make_env(name)
    task = env.sample_task(20, seed=5)
    assert env.success(task.goal_state, task.goal_state)
    assert not env.success(task.start_state, task.goal_state)
    near = task.goal_state.copy()
    near[0] += 0.9 * env.success_radius
    assert env.success(near, task.goal_state)


def test_rollouts_are_reproducible_and_move():
    env = WallEnv()
    s1, a1 = random_rollouts(env, 8, 25, seed=4)
    s2, a2 = random_rollouts(env, 8, 25, seed=4)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(a1, a2)
    assert s1.shape == (8, 26, 3) and a1.shape == (8, 25, 2)
    assert np.abs(a1).max() <= 1.0
    assert (s1[:, 1:, 2] == s1[:, :1, 2]).all()  # the door never moves within an episode
    assert np.linalg.norm(s1[:, -1, :2] - s1[:, 0, :2], axis=1).mean() > 5.0


def test_common_api_and_unknown_names():
    for name in ENV_NAMES:
        env = make_env(name)
        assert env.action_dim == 2
        np.testing.assert_array_equal(env.action_low, [-1, -1])
        np.testing.assert_array_equal(env.action_high, [1, 1])
    with pytest.raises(ValueError, match="unknown environment"):
        make_env("moon")
