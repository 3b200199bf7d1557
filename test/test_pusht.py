"""The Push-T world: deterministic physics, pushing, the success rule, tasks and rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grasp_ros.envs import PushTEnv, make_env, random_rollouts
from grasp_ros.envs.pusht import AGENT_COLOR, BLOCK_COLOR, block_outline, pose_error


@pytest.fixture(scope="module")
def env() -> PushTEnv:
    return make_env("pusht", seed=0)


def state(agent=(256.0, 450.0), block=(256.0, 250.0), angle=0.0, velocity=(0.0, 0.0)):
    return np.array([*agent, *block, angle, *velocity], dtype=np.float64)


def test_registry_and_api(env: PushTEnv) -> None:
    assert isinstance(env, PushTEnv) and env.name == "pusht" and env.action_dim == 2
    assert env.state.shape == (7,)
    np.testing.assert_array_equal(env.action_low, [-1, -1])
    np.testing.assert_array_equal(env.action_high, [1, 1])


def test_physics_is_deterministic_and_state_complete(env: PushTEnv) -> None:
    """A state fixes its future: the single-agent path, the batch and a replay agree exactly."""
    rng = np.random.default_rng(1)
    starts = env.exploration_states(rng, 6)
    actions = rng.uniform(-1, 1, size=(10, 6, 2))
    batch = [starts]
    for a in actions:
        batch.append(env.step_states(batch[-1], a))
    for i in range(6):
        env.reset(state=starts[i])
        for t in range(10):
            env.step(actions[t, i])
            np.testing.assert_array_equal(env.state, batch[t + 1][i])
        # Restarting mid-way from a recorded state gives the same rest of the run.
        env.reset(state=batch[5][i])
        for t in range(5, 10):
            env.step(actions[t, i])
        np.testing.assert_array_equal(env.state, batch[10][i])


def test_agent_pushes_the_block(env: PushTEnv) -> None:
    """Driving up into the T's stem moves it up; driving away leaves it where it is."""
    start = state()
    up, away = start.copy(), start.copy()
    for _ in range(8):
        up = env.step_states(up[None], np.array([[0.0, -1.0]]))[0]
        away = env.step_states(away[None], np.array([[0.0, 1.0]]))[0]
    assert up[3] < start[3] - 100  # pushed more than 100 units up (y grows downwards)
    assert (
        abs(up[2] - start[2]) < 5 and pose_error(up[2:5], start[2:5])[1] < 0.05
    )  # straight, centred
    np.testing.assert_allclose(away[2:5], start[2:5])
    assert away[1] > start[1]


def test_agent_speed_and_action_clipping(env: PushTEnv) -> None:
    """Full action: about 40 units a step once up to speed; actions beyond the box are clipped."""
    s = state(agent=(60.0, 100.0), block=(350.0, 350.0))
    fast = s.copy()
    for _ in range(3):
        fast = env.step_states(fast[None], np.array([[1.0, 0.0]]))[0]
    step = env.step_states(fast[None], np.array([[1.0, 0.0]]))[0][0] - fast[0]
    assert 35 < step < 45
    big = env.step_states(s[None], np.array([[5.0, -3.0]]))
    np.testing.assert_array_equal(big, env.step_states(s[None], np.array([[1.0, -1.0]])))


def test_success_tolerance(env: PushTEnv) -> None:
    """Block within 20 units and pi/9 of the goal pose; the agent's position does not count."""
    goal = state(block=(250.0, 250.0), angle=0.05)
    assert env.success(state(agent=(60.0, 60.0), block=(250.0 + 19.0, 250.0), angle=0.05), goal)
    assert not env.success(state(block=(250.0 + 21.0, 250.0), angle=0.05), goal)
    assert env.success(state(block=(250.0, 250.0), angle=0.05 + math.pi / 9 - 0.01), goal)
    assert not env.success(state(block=(250.0, 250.0), angle=0.05 + math.pi / 9 + 0.01), goal)
    # Angles wrap: 0.05 and 2 pi - 0.05 are 0.1 apart.
    assert env.success(state(block=(250.0, 250.0), angle=2 * math.pi - 0.05), goal)


def test_object_pose_distance_and_outline(env: PushTEnv) -> None:
    """What the success test, the demo and sim/object_pose see is the block's pose."""
    s, goal = state(block=(200.0, 300.0), angle=1.0), state(block=(230.0, 340.0), angle=1.2)
    np.testing.assert_array_equal(
        env.object_pose(np.stack([s, goal])), [[200, 300, 1], [230, 340, 1.2]]
    )
    assert env.distance(s, goal) == pytest.approx(50.0)
    assert not env.reached(env.object_pose(s[None])[0], env.object_pose(goal[None])[0])
    (outline,) = env.outlines(s).values()
    assert outline.shape == (8, 2)
    # The outline's first corner is the bar's end at body (-60, 0), turned by the angle.
    np.testing.assert_allclose(outline[0], [200 - 60 * math.cos(1.0), 300 - 60 * math.sin(1.0)])


def test_sample_task_reproducible_solvable_and_horizon_scaled(env: PushTEnv) -> None:
    a, b = env.sample_task(30, seed=4), env.sample_task(30, seed=4)
    np.testing.assert_array_equal(a.start_state, b.start_state)
    np.testing.assert_array_equal(a.goal_state, b.goal_state)
    np.testing.assert_array_equal(a.goal_image, b.goal_image)
    np.testing.assert_array_equal(a.expert_actions, b.expert_actions)
    assert not np.array_equal(env.sample_task(30, seed=5).goal_state, a.goal_state)
    assert a.horizon == 30 and a.optimal_steps == len(a.expert_actions) <= 30
    assert not env.success(a.start_state, a.goal_state)
    # The expert's actions, replayed through the single-agent API, reach the goal exactly.
    env.reset(state=a.start_state)
    for action in a.expert_actions:
        env.step(action)
    np.testing.assert_array_equal(env.state, a.goal_state)
    np.testing.assert_array_equal(env.render(), a.goal_image)

    # Longer horizons move the block further: position (units) plus angle (in 20-unit steps
    # per pi/9, the success rule's exchange rate), averaged over seeds.
    def change(h: int) -> float:
        errors = [
            pose_error(t.start_state[2:5], t.goal_state[2:5])
            for t in map(lambda s: env.sample_task(h, seed=s), range(8))
        ]
        return float(np.mean([g + 20 * r / (math.pi / 9) for g, r in errors]))

    assert change(80) > 1.5 * change(10)


def test_render(env: PushTEnv) -> None:
    s = state(agent=(100.0, 100.0), block=(300.0, 300.0), angle=0.7)
    image = env.render_states(s[None])[0]
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, env.render_states(s[None])[0])
    assert tuple(image[12, 12]) == AGENT_COLOR  # the agent's centre: (100 / 8, 100 / 8)
    centre = block_outline(s[None])[0].mean(0) / 8
    assert tuple(image[int(centre[1]), int(centre[0])]) == BLOCK_COLOR
    assert tuple(image[60, 3]) == (255, 255, 255)
    big = PushTEnv(image_size=96).render_states(s[None])
    assert big.shape == (1, 96, 96, 3)


def test_random_rollouts_cover_pushing(env: PushTEnv) -> None:
    """Exploration starts near the block, so random data pushes it in a good share of steps."""
    states, actions = random_rollouts(env, 40, 20, seed=0)
    assert states.shape == (40, 21, 7) and actions.shape == (40, 20, 2)
    moved = np.linalg.norm(np.diff(states[:, :, 2:4], axis=1), axis=-1) > 1.0
    assert moved.any(axis=1).mean() > 0.25
    assert env.valid(env.exploration_states(np.random.default_rng(0), 50)).all()
