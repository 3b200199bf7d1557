"""PlannerRuntime: everything the planner node does, without ROS.

It owns the model, the planner, the newest camera image, the goal, the warm-start plan and the
timing statistics. The node (and the demo, and the replay tool) only feed it images with their
stamps and call ``tick(now)`` at the control rate; times are float seconds on whatever clock the
caller uses (ROS time, bag time, a simulated clock), so data age is never read off the wall
clock. Only the planning budget is wall-clock time, and the ``'iterations'`` budget avoids even
that for deterministic replay.

Failure is designed: no image, a stale image, no goal, a planner exception or a non-finite plan
each give a stop command with its own status, and the next tick with good input plans again.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from grasp_ros.control import params as schema
from grasp_ros.control.inputs import check_goal, check_image, check_time, same_goal
from grasp_ros.control.memory import check_memory, saved_bytes_per_sample
from grasp_ros.control.stall import StallDetector
from grasp_ros.models.base import to_tensor
from grasp_ros.models.compiled import compile_forward
from grasp_ros.planning import Plan, Planner, make_objective, make_planner


class Status(enum.IntEnum):
    """Tick outcome; values equal the constants in msg/PlannerStatus.msg."""

    OK = 0
    NO_GOAL = 1
    NO_IMAGE = 2
    STALE_IMAGE = 3
    PLANNER_ERROR = 4
    GOAL_REACHED = 5
    STOPPED = 6


@dataclass
class Command:
    """What one tick decided: the action to send now and why."""

    action: np.ndarray
    status: Status
    plan: Plan | None
    solve_time: float
    actions: np.ndarray
    message: str = ""
    tick: int = 0
    stamp: float = 0.0
    dt: float = 0.0
    iterations: int = 0
    cost: float = math.nan
    image_age: float = math.nan
    #: The objective's terminal cost from the current image to the goal (NaN: not computed).
    goal_cost: float = math.nan

    @property
    def is_stop(self) -> bool:
        return self.status is not Status.OK


@dataclass
class RuntimeStats:
    """Per-tick figures, bounded in memory (the last ``window`` ticks)."""

    window: int = 1000
    ticks: int = 0
    deadline_misses: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    solve_times: deque[float] = field(default_factory=deque)
    tick_times: deque[float] = field(default_factory=deque)
    iterations: deque[int] = field(default_factory=deque)
    costs: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        for name in ("solve_times", "tick_times", "iterations", "costs"):
            setattr(self, name, deque(maxlen=self.window))

    def record(self, cmd: Command, tick_time: float, period: float) -> None:
        self.ticks += 1
        self.status_counts[cmd.status.name] = self.status_counts.get(cmd.status.name, 0) + 1
        self.tick_times.append(tick_time)
        if cmd.status is Status.OK:
            self.solve_times.append(cmd.solve_time)
            self.iterations.append(cmd.iterations)
            self.costs.append(cmd.cost)
            if tick_time > period:
                self.deadline_misses += 1

    def summary(self) -> dict[str, Any]:
        """Counts and percentiles over the window, as plain numbers (JSON-ready)."""

        def pct(values: deque, q: float) -> float:
            return float(np.percentile(np.asarray(values), q)) if values else math.nan

        return {
            "ticks": self.ticks,
            "deadline_misses": self.deadline_misses,
            "status_counts": dict(self.status_counts),
            "solve_time_p50": pct(self.solve_times, 50),
            "solve_time_p99": pct(self.solve_times, 99),
            "tick_time_p50": pct(self.tick_times, 50),
            "tick_time_p99": pct(self.tick_times, 99),
            "tick_time_max": max(self.tick_times, default=math.nan),
            "iterations_mean": float(np.mean(self.iterations)) if self.iterations else math.nan,
            "cost_last": self.costs[-1] if self.costs else math.nan,
        }


class PlannerRuntime:
    """Closed-loop planning at a fixed rate with warm starts (see the module docstring)."""

    def __init__(self, model: nn.Module, params: Mapping[str, Any] | None = None) -> None:
        # Planning differentiates with respect to actions and states only; weight gradients
        # would cost time in every iteration and pile up in the weights' .grad.
        self.model = model.eval().requires_grad_(False)
        self.params = schema.defaults()
        self.params.update(schema.validate({} if params is None else params))
        self._check_action_params(self.params)
        self._per_sample = saved_bytes_per_sample(self.model)
        check_memory(self.params, self.model, self._per_sample)
        self._planning_model = compile_forward(self.model, self.params["compile"])
        self.planner = self._build_planner(self.params)
        self.stats = RuntimeStats()
        self._image: np.ndarray | None = None
        self._image_stamp = -math.inf
        self._image_fresh = False
        self._latent: torch.Tensor | None = None
        self._goal: torch.Tensor | np.ndarray | None = None
        self._goal_latent: torch.Tensor | None = None
        self._warm: Plan | None = None
        self._warm_stamp = 0.0
        self._safety = 1.0
        self._tick = 0
        self._stall = StallDetector()

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PlannerRuntime:
        """Load the model named by ``params['model']`` and build the planner from the rest.

        Keys are those of ``config/planner.yaml`` (flat dotted names or nested mappings);
        unknown keys are an error.
        """
        from grasp_ros.models import load_world_model

        values = schema.defaults()
        values.update(schema.validate(params))
        if values["cpu_threads"] > 0:
            torch.set_num_threads(values["cpu_threads"])
        torch.set_float32_matmul_precision(values["matmul_precision"])
        runtime = cls(load_world_model(values["model"], device=values["device"]), values)
        runtime.warmup()
        return runtime

    def warmup(self) -> float:
        """Encode a blank image and run a two-iteration plan; returns the seconds it took.

        torch's first forward and backward passes are far slower than later ones (about 2 s
        against 10 ms measured with the analytic model), so without this the robot's first
        tick would miss its deadline. Planning is a pure function of its inputs, so this
        changes no later result. With ``compile`` on, the plan runs the planner's whole
        iteration cap, so that every shape the planner calls the model with (GRASP's serial
        syncs too) is compiled here rather than inside a tick.
        """
        t0 = time.perf_counter()
        size = getattr(self.model, "image_size", None) or 64
        h, w = (size, size) if isinstance(size, int) else size
        with torch.no_grad():
            z = self._encode_image(np.zeros((h, w, 3), dtype=np.uint8))
        compiled = self.params["compile"] != "off"
        self.planner.plan(z, z, max_iters=None if compiled else 2)
        return time.perf_counter() - t0

    # -- inputs -----------------------------------------------------------------------------
    @property
    def period(self) -> float:
        return 1.0 / self.params["control_rate"]

    @property
    def device(self) -> torch.device:
        return self.planner.device

    def on_image(self, image: np.ndarray, stamp: float) -> None:
        """Keep the newest camera image (RGB ``uint8 [H, W, 3]``); older ones are dropped.

        A slightly older image than the one held arrived out of order and is ignored; one
        older by more than ``image_timeout`` means the clock jumped back (a looping bag, a
        simulator reset), so it is taken and the warm start, planned in the old timeline, is
        dropped. A malformed image or stamp raises ValueError and leaves the held image
        untouched, so it goes stale on its own.
        """
        image, stamp = check_image(image), check_time("stamp", stamp)
        if stamp < self._image_stamp:
            if self._image_stamp - stamp <= self.params["image_timeout"]:
                return
            self._warm = None
        self._image, self._image_stamp, self._image_fresh = image, float(stamp), True

    def on_goal(self, goal: np.ndarray | torch.Tensor, stamp: float = 0.0) -> bool:
        """Set the goal: an RGB ``uint8 [H, W, 3]`` image, or a latent ``[*latent_shape]``.

        A new goal drops the warm start (the old plan aims elsewhere); the current goal again (a
        republished topic) changes nothing and returns False. Encoding happens once, on the
        next tick. Anything else raises ValueError and changes nothing.
        """
        check_time("stamp", stamp)
        goal = check_goal(goal, tuple(self.model.latent_shape))
        if same_goal(goal, self._goal):
            return False
        self._goal, self._goal_latent, self._warm = goal, None, None
        self._stall.reset()
        return True

    def reset(self) -> None:
        """Drop the warm start and the statistics (the ROS node's ``~/reset`` service)."""
        self._warm = None
        self._safety = 1.0
        self._stall.reset()
        self.stats = RuntimeStats()

    # -- the control tick -------------------------------------------------------------------
    def tick(self, now: float) -> Command:
        """Plan from the newest image to the goal and return the action to send now.

        ``now`` must be a finite number of seconds (ValueError otherwise, and nothing changes):
        a NaN clock would make every image look fresh.
        """
        now = check_time("now", now)
        t0 = time.perf_counter()
        self._tick += 1
        try:
            cmd = self._plan_tick(now, t0)
        except Exception as exc:
            self._warm = None
            cmd = self.stop_command(
                now, Status.PLANNER_ERROR, f"{type(exc).__name__}: {exc}", self._image_age(now)
            )
        tick_time = time.perf_counter() - t0
        self.stats.record(cmd, tick_time, self.period)
        if self.params["budget"] == "deadline" and cmd.status is Status.OK:
            over = tick_time > self.period
            self._safety = min(4.0, self._safety * 1.25) if over else max(1.0, self._safety * 0.98)
        return cmd

    def _plan_tick(self, now: float, t0: float) -> Command:
        age = self._image_age(now)
        if self._image is None:
            return self.stop_command(now, Status.NO_IMAGE, "no camera image received yet", age)
        timeout = self.params["image_timeout"]
        if age > timeout:
            msg = f"camera image is {age:.3f} s old (image_timeout {timeout} s)"
            return self.stop_command(now, Status.STALE_IMAGE, msg, age)
        if age < -timeout:
            # An image from the future never goes stale: the watchdog would never fire.
            msg = (
                f"camera image is stamped {-age:.3f} s in the future of the clock (more than "
                f"image_timeout {timeout} s): clock skew between camera and planner; check "
                "time sync and use_sim_time"
            )
            return self.stop_command(now, Status.STALE_IMAGE, msg, age)
        if self._goal is None:
            return self.stop_command(now, Status.NO_GOAL, "no goal received yet", age)
        fresh = self._image_fresh
        start, goal = self._encode()
        objective = self.planner.objective
        distance = float(objective.terminal(start, goal))
        if distance < self.params["goal_threshold"]:
            self._warm = None
            msg = f"goal reached: {objective.name} {distance:.4g} < {self.params['goal_threshold']}"
            cmd = self.stop_command(now, Status.GOAL_REACHED, msg, age)
            cmd.cost = cmd.goal_cost = distance
            return cmd
        stalled = self._stall.observe(self.params, distance, start, fresh, self._warm)
        warm, message = None, ""
        if stalled:
            message = "no progress: planned afresh from sampled starts"
        elif self._warm is not None and self.params["warm_start"]:
            steps = max(0, round((now - self._warm_stamp) / self.period))
            warm = self._warm.shift(steps, self.params["warm_start_pad"], self.params["horizon"])
        iters, deadline = self._budget(warm is not None, t0)
        plan = self.planner.plan(start, goal, warm_start=warm, max_iters=iters, deadline=deadline)
        self._warm, self._warm_stamp = plan, now
        actions = plan.actions[: self.params["action_chunk"]].detach().cpu().numpy()
        return Command(
            action=actions[0].copy(),
            status=Status.OK,
            plan=plan,
            solve_time=plan.solve_time,
            actions=actions,
            message=message,
            tick=self._tick,
            stamp=now,
            dt=self.period,
            iterations=plan.iterations,
            cost=plan.cost,
            image_age=age,
            goal_cost=distance,
        )

    def _budget(self, warm: bool, t0: float) -> tuple[int, float | None]:
        iters = self.params["iterations"] if warm else self.params["cold_start_iterations"]
        if self.params["budget"] == "iterations":
            return iters, None
        spent = time.perf_counter() - t0
        usable = self.period * (1.0 - self.params["deadline_margin"]) / self._safety - spent
        return iters, max(0.0, usable)

    @torch.no_grad()
    def _encode(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._image_fresh or self._latent is None:
            self._latent = self._encode_image(self._image)
            self._image_fresh = False
        if self._goal_latent is None:
            goal = self._goal
            if isinstance(goal, np.ndarray):
                self._goal_latent = self._encode_image(goal)
            else:
                self._goal_latent = goal.to(self.device)
        return self._latent, self._goal_latent

    def _encode_image(self, image: np.ndarray) -> torch.Tensor:
        size = getattr(self.model, "image_size", None)
        if size is not None:
            h, w = (size, size) if isinstance(size, int) else size
            if image.shape[:2] != (h, w):
                import cv2

                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        latent = self.model.encode(to_tensor(image[None], self.device))[0]
        if not torch.isfinite(latent).all():
            raise ValueError("the encoder returned non-finite latents (NaN or inf)")
        return latent

    def _image_age(self, now: float) -> float:
        return now - self._image_stamp if self._image is not None else math.inf

    def stop_command(
        self, now: float, status: Status, message: str, image_age: float = math.nan
    ) -> Command:
        """The safe command: ``stop_action`` (zeros when empty), inside the model's bounds."""
        action = self._stop_action()
        return Command(
            action=action,
            status=status,
            plan=None,
            solve_time=0.0,
            actions=action[None].copy(),
            message=message,
            tick=self._tick,
            stamp=now,
            dt=self.period,
            image_age=image_age,
        )

    def _stop_action(self) -> np.ndarray:
        a = torch.tensor(self.params["stop_action"] or [0.0] * self.model.action_dim)
        low = getattr(self.model, "action_low", None)
        high = getattr(self.model, "action_high", None)
        if low is not None or high is not None:
            a = a.clamp(
                min=None if low is None else low.cpu(), max=None if high is None else high.cpu()
            )
        return a.numpy().astype(np.float32)

    # -- live parameters --------------------------------------------------------------------
    def set_params(self, changes: Mapping[str, Any]) -> tuple[bool, str]:
        """Apply parameter changes atomically: all of them, or none with the reason.

        Read-only parameters (``model``, ``device``, ``compile`` and the like) are refused,
        and so is a configuration whose estimated memory exceeds ``memory_limit_mb``; a change to
        the planner, the horizon, the seed or a planner setting builds a new planner first, so
        an invalid combination (say CEM elites > samples) is refused before anything changes.
        """
        try:
            values = schema.validate(changes)
        except ValueError as exc:
            if not isinstance(changes, Mapping):
                raise  # not a bad value but a caller's bug: the error says what is expected
            return False, str(exc)
        for name, value in values.items():
            if schema.SCHEMA[name].read_only and value != self.params[name]:
                return False, f"{name} is read-only; restart with the new value"
        candidate = {**self.params, **values}
        try:
            self._check_action_params(candidate)
            check_memory(candidate, self.model, self._per_sample)
            planner = (
                self._build_planner(candidate)
                if any(schema.SCHEMA[n].rebuilds_planner for n in values)
                else self.planner
            )
        except ValueError as exc:
            return False, str(exc)
        self.params, self.planner = candidate, planner
        return True, ""

    def _build_planner(self, params: Mapping[str, Any]) -> Planner:
        config = schema.planner_config(params, params["planner"])
        ctg = (params[f"cost_to_go_{k}"] for k in ("weight", "slack", "leak_weight"))
        config["objective"] = make_objective(params["objective"], self.model, *ctg)
        return make_planner(params["planner"], self._planning_model, params["horizon"], **config)

    def _check_action_params(self, params: Mapping[str, Any]) -> None:
        dim = int(self.model.action_dim)
        if params["stop_action"] and len(params["stop_action"]) != dim:
            raise ValueError(
                f"stop_action has {len(params['stop_action'])} values, the model's actions "
                f"have {dim} (or leave it empty for zeros)"
            )
