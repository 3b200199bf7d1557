"""The ``~/reach_goal`` action of planner_node (grasp_ros/action/ReachGoal), as nav2's
NavigateToPose is for a navigation stack: send a goal image, follow the ticks, get a result.

The goal image takes the same path as one on the latched ``goal_image`` topic (the node's
inbox, so only the timer thread touches the runtime). Each tick's command comes back here as
feedback; the goal succeeds on ``GOAL_REACHED``. Cancelling, the time limit and a newer goal
end it, and then the node publishes the stop action every tick until the next goal (it halts).
A tolerance applies ``goal_threshold`` for the goal's duration.

A goal sent while the node is not active (not configured yet, or deactivated) is aborted at
once with that reason, and so is a goal in progress when the node is deactivated: no ticks
would come to reach it. (An action goal can only carry a reason in its result, so it is
accepted and aborted rather than rejected.)

What it uses of the node: ``active``, ``post_goal`` (the inbox), ``runtime_lock`` (the runtime,
held from ticks and parameter changes), ``halted`` (why it stops until the next goal) and
``now``; the node calls :meth:`ReachGoalServer.on_tick` with each published command.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import numpy as np
from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup

from grasp_ros.action import ReachGoal
from grasp_ros.control import Status
from grasp_ros.control.runtime import Command
from grasp_ros.nodes import messages as M

#: Seconds between checks for a cancel or the time limit while no tick comes.
POLL = 0.1


class ReachGoalServer:
    """Serves ``~/reach_goal`` for a planner node, one goal at a time (a new one preempts)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self._lock = threading.Lock()
        self._current: Any = None
        self._ticks: queue.Queue[Command] = queue.Queue()
        self._saved_threshold: float | None = None
        self.server = ActionServer(
            node,
            ReachGoal,
            "~/reach_goal",
            execute_callback=self._execute,
            cancel_callback=lambda handle: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )

    def on_tick(self, cmd: Command) -> None:
        """A tick's command, published: feedback for the goal in progress."""
        if self._current is not None:
            self._ticks.put(cmd)

    def _execute(self, handle: Any) -> ReachGoal.Result:
        request = handle.request
        if not self.node.active:
            reason = f"{self.node.get_name()} is not active: configure and activate it first"
            self.node.get_logger().warning(f"aborted a reach_goal: {reason}")
            handle.abort()
            return _result(False, Status.NO_GOAL, reason, 0)
        try:
            rgb = M.image_to_rgb(request.goal_image)
        except M.IMAGE_ERRORS as exc:
            handle.abort()
            return _result(False, Status.NO_GOAL, f"the goal image cannot be used: {exc}", 0)
        with self._lock:
            self._current = handle
            self._ticks = queue.Queue()
        self._begin(rgb, float(request.tolerance))
        start, ticks, status = self.node.now(), 0, Status.NO_GOAL
        while True:
            try:
                cmd = self._ticks.get(timeout=POLL)
            except queue.Empty:
                cmd = None
            if self._current is not handle:
                handle.abort()
                return _result(False, status, "preempted by a newer goal", ticks)
            if handle.is_cancel_requested:
                return self._end(handle, handle.canceled, status, "goal canceled", ticks)
            if not self.node.active:
                message = f"{self.node.get_name()} was deactivated"
                return self._end(handle, handle.abort, status, message, ticks)
            if cmd is not None:
                ticks, status = ticks + 1, cmd.status
                feedback = ReachGoal.Feedback(
                    status=int(cmd.status),
                    goal_cost=_f32(cmd.goal_cost),
                    plan_cost=_f32(cmd.cost),
                    ticks=ticks,
                )
                handle.publish_feedback(feedback)
                if cmd.status is Status.GOAL_REACHED:
                    self._finish(None)
                    self._current = None
                    handle.succeed()
                    return _result(True, status, cmd.message, ticks)
            limit = request.time_limit
            if limit > 0 and self.node.now() - start > limit:
                message = f"time limit of {limit:g} s reached"
                return self._end(handle, handle.abort, status, message, ticks)

    def _begin(self, rgb: np.ndarray, tolerance: float) -> None:
        """Plan for the goal from the next tick on (0 tolerance: the ``goal_threshold``
        parameter, else that threshold until :meth:`_finish`)."""
        self.node.post_goal(rgb)
        with self.node.runtime_lock() as runtime:
            self.node.halted = None
            if runtime is None:
                return
            if self._saved_threshold is None:
                self._saved_threshold = runtime.params["goal_threshold"]
            threshold = tolerance if tolerance > 0 else self._saved_threshold
            runtime.set_params({"goal_threshold": threshold})

    def _finish(self, halt: str | None) -> None:
        """The goal is over: ``goal_threshold`` back; with a reason, stop until the next goal."""
        with self.node.runtime_lock() as runtime:
            if self._saved_threshold is not None and runtime is not None:
                runtime.set_params({"goal_threshold": self._saved_threshold})
            self._saved_threshold, self.node.halted = None, halt

    def _end(self, handle: Any, how: Any, status: Status, message: str, ticks: int) -> Any:
        self._finish(message)
        with self._lock:
            if self._current is handle:
                self._current = None
        how()
        return _result(False, status, message, ticks)


def _result(reached: bool, status: Status, message: str, ticks: int) -> ReachGoal.Result:
    return ReachGoal.Result(reached=reached, status=int(status), message=message, ticks=ticks)


def _f32(value: float) -> float:
    return float(value) if np.isfinite(value) else float("nan")
