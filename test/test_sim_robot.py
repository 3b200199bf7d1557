"""The simulated robot behind sim_node (grasp_ros.control.sim_robot), without ROS."""

from __future__ import annotations

import numpy as np
import pytest

from grasp_ros.control.sim_robot import SimRobot
from grasp_ros.envs import make_env


def _robot(timeout: float = 0.5) -> SimRobot:
    robot = SimRobot(make_env("wall", image_size=32), horizon=10, action_timeout=timeout)
    robot.new_task(3)
    return robot


def test_a_command_is_held_for_the_timeout_then_zeros():
    robot = _robot(timeout=0.5)
    start = robot.env.state.copy()
    robot.command(np.array([1.0, 0.0]), now=10.0)
    held = robot.step(now=10.5)
    np.testing.assert_array_equal(held.action, [1.0, 0.0])
    assert not np.array_equal(held.state, start) and held.image.shape == (32, 32, 3)
    late = robot.step(now=10.6)
    np.testing.assert_array_equal(late.action, [0.0, 0.0])
    np.testing.assert_array_equal(late.state, held.state)
    assert robot.steps == 2


def test_a_chunk_is_executed_one_action_per_dt_and_its_last_held_for_the_timeout():
    robot = _robot(timeout=0.15)
    chunk = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    robot.command(chunk, now=10.0, dt=0.1)
    steps = [robot.step(now=10.0 + t) for t in (0.05, 0.15, 0.25, 0.3, 0.4)]
    assert [s.index for s in steps] == [0, 1, 2, 2, 0]
    for s, want in zip(steps, [chunk[0], chunk[1], chunk[2], chunk[2], [0, 0]], strict=True):
        np.testing.assert_array_equal(s.action, want)
    with pytest.raises(ValueError, match="dt"):
        robot.command(chunk, now=11.0, dt=0.0)


def test_a_command_that_does_not_fit_the_world_is_refused_and_nothing_held():
    robot = _robot()
    for bad in ([1.0], [np.nan, 0.0], np.zeros((0, 2)), np.zeros((2, 3))):
        with pytest.raises(ValueError, match="2 finite values"):
            robot.command(np.array(bad), now=0.0)
    np.testing.assert_array_equal(robot.step(now=0.0).action, [0.0, 0.0])


def test_reaching_the_goal_is_reported_once_and_a_new_task_starts_over():
    robot = _robot(timeout=1e9)
    robot.env.reset(state=robot.task.goal_state)  # put the agent on the goal
    robot.command(np.zeros(2), now=0.0)
    assert robot.step(now=0.0).reached and not robot.step(now=0.0).reached
    task = robot.new_task(robot.seed + 1)
    assert robot.seed == 4 and robot.steps == 0 and not robot.reached
    np.testing.assert_array_equal(robot.env.state, task.start_state)
