"""The one closed-loop episode driver: clock, camera, hooks and the ways an episode ends."""

from __future__ import annotations

import numpy as np

from grasp_ros.control import PlannerRuntime, Status
from grasp_ros.control.episode import EpisodeHooks, Tick, run_episode
from grasp_ros.envs import make_env
from grasp_ros.models.analytic import PointWallModel


class Log(EpisodeHooks):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_start(self, task, stamp):
        self.events.append(("start", stamp))

    def on_frame(self, capture, receive, image):
        self.events.append(("frame", capture))

    def on_state(self, stamp, state):
        self.events.append(("state", stamp))

    def on_tick(self, tick: Tick):
        self.events.append(("tick", tick.stamp, tick.index))

    def on_step(self, tick, state, image):
        self.events.append(("step", tick.index))


def test_a_scripted_agent_runs_on_the_simulated_clock() -> None:
    env = make_env("wall", image_size=32)
    task = env.sample_task(10, seed=0)
    log = Log()
    seen = []
    out = run_episode(
        env,
        task,
        lambda t, state: seen.append(t) or np.zeros(2, np.float32),
        period=0.5,
        max_ticks=3,
        start_time=100.0,
        first_step=2,
        hooks=log,
        until_success=False,
    )
    assert seen == [0.0, 0.5, 1.0]
    assert out.ticks == 3 and out.end_stamp == 100.0 + 5 * 0.5 and len(out.states) == 4
    assert log.events[:6] == [
        ("start", 101.0),
        ("frame", 101.0),
        ("state", 101.0),
        ("tick", 101.0, 0),
        ("step", 0),
        ("frame", 101.5),
    ]
    assert log.events[-2:] == [("frame", 102.5), ("state", 102.5)]


def test_halt_on_ends_before_executing_and_stop_after_ends_after() -> None:
    env = make_env("wall", image_size=32)
    task = env.sample_task(10, seed=0)
    model = PointWallModel(wall=False)
    for kind, expected_ticks in (("halt_on", 0), ("stop_after", 1)):
        runtime = PlannerRuntime(model, {"budget": "iterations", "goal_threshold": 1e6})
        out = run_episode(
            env, task, runtime, period=0.1, max_ticks=5, **{kind: (Status.GOAL_REACHED,)}
        )
        assert out.last.command.status is Status.GOAL_REACHED
        assert out.ticks == expected_ticks and out.halted == (kind == "halt_on")
