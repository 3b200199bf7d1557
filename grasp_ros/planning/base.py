"""What every planner shares: the base config, input checks and the loop.

Planners differ only where the algorithms differ (DINO-WM's planning/ layout): each subclass
says how it initialises (`_init`), what one iteration does (`_step`) and how it picks its answer
(`_candidates`); this module owns the budget (iteration cap and wall-clock deadline), best-so-far
bookkeeping, the serial rollout and the checks that turn bad input into a clear error.
The deadline bounds everything ``plan`` does (see :mod:`grasp_ros.planning.deadline`).
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from .config import knob, validate_config
from .deadline import Deadline, OutOfTimeError
from .objectives import Objective, objective_for
from .plan import Plan
from .starts import random_plans

#: ``callback(iteration, elapsed_seconds, snapshot) -> stop?``; ``snapshot()`` returns the Plan
#: the planner would return if it stopped now, and changes nothing: the search and the final
#: answer are those of a run without callbacks. Time spent in the callback is not counted.
Callback = Callable[[int, float, Callable[[], Plan]], bool | None]


@dataclass
class _Best:
    """Best candidate seen so far, kept on the device (no host sync inside the loop)."""

    cost: torch.Tensor
    actions: torch.Tensor
    states: torch.Tensor


@dataclass
class PlannerConfig:
    """The knobs every planner has; subclasses add their own and may change these defaults."""

    iterations: int = knob(100, "iteration cap per plan call", low=0, high=100000)
    seed: int = knob(0, "seed for random draws (same seed, same plan)", low=0, high=2**31 - 1)


@dataclass(kw_only=True)
class PlanState:
    """One ``plan`` call's optimisation state: the fixed ends, and the best candidate so far."""

    s0: torch.Tensor
    goal: torch.Tensor
    best: _Best | None = None
    warm: Plan | None = None  # the warm start, re-offered as a candidate with every answer


@functools.cache
def _load_optimizer_code() -> None:
    """Build one throwaway Adam, once per process.

    torch imports ``torch._dynamo`` when the first optimizer is constructed (about 2 s on a
    CPU). Paid inside the first ``plan()`` call it eats a deadline whole: the first control tick
    after start-up returned the zero plan after 0 iterations. Planners pay it when built.
    """
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


class Planner(abc.ABC):
    """Base class: ``Cls(model, horizon, **config)`` then ``plan(start, goal, ...)``.

    ``objective`` is the goal cost every candidate is scored with (default: the model's own,
    else latent MSE; see :mod:`grasp_ros.planning.objectives`).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    #: Whether ``plan`` builds torch optimizers (GRASP, GD, collocation; not CEM).
    uses_optimizer: ClassVar[bool] = True

    def __init__(
        self, model: nn.Module, horizon: int, objective: Objective | None = None, **config: Any
    ) -> None:
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        try:
            self.config = self.Config(**config)
        except TypeError:
            known = sorted(f.name for f in dataclasses.fields(self.Config))
            unknown = sorted(set(config) - set(known))
            raise ValueError(
                f"unknown {self.name} setting(s) {unknown}; valid settings are {known}"
            ) from None
        validate_config(self.config)
        if self.uses_optimizer:
            _load_optimizer_code()
        self.model = model
        self.objective = objective_for(model) if objective is None else objective
        self.horizon = int(horizon)
        self.latent_shape = tuple(int(d) for d in model.latent_shape)
        self.action_dim = int(model.action_dim)
        self.model_calls = 0
        self._deadline = Deadline(self.horizon)
        self.clock: Callable[[], float] = time.perf_counter

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Measure budgets and times on ``clock`` (seconds) instead of the wall clock, e.g.
        ``time.process_time``: this process's CPU time, which other work on a shared machine
        does not eat (a benchmark's budgets then mean the same under any load)."""
        self.clock = self._deadline.clock = clock

    # -- subclass hooks ---------------------------------------------------------------------
    @abc.abstractmethod
    def _init(self, s0: torch.Tensor, goal: torch.Tensor, warm: Plan | None) -> PlanState:
        """Build the optimisation state for one ``plan`` call."""

    @abc.abstractmethod
    def _step(self, st: Any, it: int) -> None:
        """Run iteration ``it`` (0-based) in place."""

    @abc.abstractmethod
    def _candidates(self, st: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The current iterate: actions ``[P, T, A]`` and virtual states ``[P, T+1, *L]``
        (``None`` for serial planners, whose states are their rollout)."""

    # -- shared machinery -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        low = getattr(self.model, "action_low", None)
        if isinstance(low, torch.Tensor):
            return low.device
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")

    def step_model(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """One batched model call; every model call goes through here so it is counted, and
        so that a deadline can stop preemptible work between two calls."""
        self._deadline.check()
        self.model_calls += 1
        return self.model(latents, actions)

    @torch.no_grad()
    def _time_serial_step(self, s0: torch.Tensor) -> None:
        """Time one step of each of the answer's rollouts (batch: the candidates, then 1), so
        that a fresh planner's first deadline is kept. Each size is called once untimed first:
        the first call at a batch size can cost 100 times a later one."""
        spent = 0.0
        for batch in (self._answer_rows(), 1):
            z = s0.expand(batch, *s0.shape)
            a = torch.zeros(batch, self.action_dim, device=s0.device)
            self.step_model(z, a)
            c0 = self.clock()
            self.step_model(z, a)
            spent += self.clock() - c0
        self._deadline.step_seconds = spent

    def _answer_rows(self) -> int:
        """Rows of the answer's batched rollout: the candidates and the warm start."""
        return getattr(self.config, "population", 1) + 1

    def _fresh_plans(self, st: Any) -> torch.Tensor | None:
        """Plans rolled out with the answer's candidates for the next tick (GRASP's re-seeding);
        ``None``: none."""
        return None

    def _reseed(
        self,
        members: tuple[torch.Tensor, torch.Tensor],
        goal: torch.Tensor,
        plans: torch.Tensor,
        rollouts: torch.Tensor,
        costs: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The population handed to the next tick, given the rolled-out fresh plans."""
        return members

    def predict_parallel(self, inputs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """F(s_t, a_t) for all t at once: ``[P, T, *L]`` x ``[P, T, A]`` -> ``[P, T, *L]``."""
        p, t = actions.shape[:2]
        flat = self.step_model(
            inputs.reshape(p * t, *self.latent_shape), actions.reshape(p * t, -1)
        )
        return flat.reshape(p, t, *self.latent_shape)

    def rollout(self, s0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Serial rollout ``[P, *L]`` x ``[P, T, A]`` -> ``[P, T+1, *L]`` (T model calls)."""
        states = [s0]
        for t in range(actions.shape[1]):
            states.append(self.step_model(states[-1], actions[:, t]))
        return torch.stack(states, 1)

    @torch.no_grad()
    def sampled_starts(
        self, s0: torch.Tensor, goal: torch.Tensor, n: int, samples: int, gen: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``n`` best of ``samples`` random plans (:func:`random_plans`): actions
        ``[n, T, A]`` and rollouts. Costs ``horizon`` serial model calls of batch ``samples``."""
        horizon = self.horizon
        actions = self.random_plans(samples, gen or self.generator())
        try:
            with self._deadline.interruptible():
                roll = self.rollout(s0.expand(samples, *s0.shape), actions)
        except OutOfTimeError:  # no time to sample: start on the straight line, zero actions
            line = interpolate(s0, goal, horizon)
            return actions.new_zeros(n, horizon, self.action_dim), line.expand(n, *line.shape)
        costs = self.objective.trajectory(roll, goal)
        best = costs.topk(min(n, samples), largest=False).indices
        best = best[torch.arange(n, device=s0.device) % len(best)]
        return actions[best], roll[best]

    def random_plans(self, samples: int, gen: torch.Generator) -> torch.Tensor:
        """``samples`` random plans ``[samples, T, A]`` within the model's action bounds."""
        low, high = (getattr(self.model, f"action_{k}", None) for k in ("low", "high"))
        plans = random_plans(samples, self.horizon, self.action_dim, low, high, gen, self.device)
        return self.clamp_actions(plans)

    def clamp_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Project actions onto the model's bounds, in place."""
        low, high = (getattr(self.model, f"action_{k}", None) for k in ("low", "high"))
        if low is not None or high is not None:
            actions.clamp_(min=low, max=high)
        return actions

    def offer(
        self, st: Any, actions: torch.Tensor, states: torch.Tensor, costs: torch.Tensor
    ) -> None:
        """Keep the lowest-true-cost candidate; ``costs`` are rollout costs ``[P]``
        (:meth:`Objective.trajectory`)."""
        cost, i = costs.detach().min(0)
        # index_select, not ``actions[i]``: indexing with a 0-dim device tensor reads it back
        # to the host (an item() per call), a sync every GD/CEM iteration and GRASP sync step
        a = actions.detach().index_select(0, i.view(1))[0]
        s = states.detach().index_select(0, i.view(1))[0]
        best: _Best | None = st.best
        if best is None:
            st.best = _Best(cost, a.clone(), s.clone())
            return
        better = cost < best.cost  # NaN never wins
        best.cost = torch.where(better, cost, best.cost)
        best.actions = torch.where(better, a, best.actions)
        best.states = torch.where(better, s, best.states)

    def plan(
        self,
        start: torch.Tensor,
        goal: torch.Tensor,
        warm_start: Plan | None = None,
        max_iters: int | None = None,
        deadline: float | None = None,
        callback: Callback | None = None,
        callback_every: int = 1,
    ) -> Plan:
        """Plan from latent ``start`` to latent ``goal`` (each ``[*latent_shape]``).

        Runs at most ``max_iters`` iterations (default: the config's ``iterations``) and stops
        early so that the answer is ready within ``deadline`` seconds of wall clock when one is
        given; the best plan found so far is returned, never a half-updated one.
        """
        t0 = self.clock()
        calls0 = self.model_calls
        s0, g = self._check_latent("start", start), self._check_latent("goal", goal)
        warm = self._fit_warm(warm_start, g)
        budget = self.config.iterations if max_iters is None else int(max_iters)
        if budget < 0:
            raise ValueError(f"max_iters must be >= 0, got {max_iters}")
        if deadline is not None and not deadline >= 0:
            raise ValueError(f"deadline must be a number of seconds >= 0, got {deadline}")
        sync_cuda = deadline is not None and self.device.type == "cuda"
        paused, iter_seconds, it = 0.0, 0.0, 0
        self._deadline.due = None if deadline is None else t0 + deadline
        if deadline is not None and not self._deadline.step_seconds:
            self._time_serial_step(s0)
        with torch.enable_grad():
            st = self._init(s0, g, warm)
            st.warm = warm
            while it < budget:
                now = self.clock() - t0 - paused
                if (
                    deadline is not None
                    and t0 + paused + now + iter_seconds > self._deadline.stop_at()
                ):
                    break
                try:
                    with self._deadline.interruptible():
                        self._step(st, it)
                except OutOfTimeError:
                    break
                it += 1
                if sync_cuda:
                    torch.cuda.synchronize()
                spent = self.clock() - t0 - paused - now
                iter_seconds = spent if it == 1 else 0.7 * iter_seconds + 0.3 * spent
                if callback is not None and it % callback_every == 0:
                    c0 = self.clock()
                    snapshot = functools.partial(
                        self._result, st, s0, g, it, t0 + paused, record=False
                    )
                    stop = callback(it, c0 - t0 - paused, snapshot)
                    paused += self.clock() - c0
                    if deadline is not None:
                        self._deadline.due = t0 + paused + deadline
                    if stop:
                        break
        f0 = self.clock()
        self._deadline.due = None
        plan = self._result(st, s0, g, it, t0 + paused)
        self._deadline.finish_seconds = self.clock() - f0
        plan.warm_started = warm is not None
        plan.model_calls = self.model_calls - calls0
        return plan

    @torch.no_grad()
    def _result(
        self, st: Any, s0: torch.Tensor, g: torch.Tensor, it: int, t0: float, record: bool = True
    ) -> Plan:
        """The answer: the best of the current candidates and the best seen so far.

        ``record=False`` (a snapshot) leaves the best-so-far record as it was, so that looking
        at the plan mid-search (a benchmark's checks) never becomes part of the final answer.
        """
        if not record:
            kept = st.best
            st.best = kept and dataclasses.replace(kept)
            try:
                return self._result(st, s0, g, it, t0)
            finally:
                st.best = kept
        actions, states = self._candidates(st)
        members = None if states is None else (actions.clone(), states.clone())
        if st.warm is not None:  # the shifted previous plan is always a candidate: a warm tick
            # never returns a plan the model rates worse than going on with the last one
            actions = torch.cat([actions, st.warm.actions[None]])
            if states is not None:
                states = torch.cat([states, torch.cat([s0[None], st.warm.states[1:]])[None]])
        # Fresh plans for the next tick's population ride in the same batched rollout: a
        # serial rollout's cost is mostly per call, not per row (GRASP's re-seeding).
        fresh = self._fresh_plans(st) if record else None
        n = actions.shape[0]
        batch = actions if fresh is None else torch.cat([actions, fresh])
        roll = self.rollout(s0.expand(batch.shape[0], *s0.shape), batch)
        costs = self.objective.trajectory(roll, g)
        if fresh is not None and members is not None:
            members = self._reseed(members, g, fresh, roll[n:], costs[n:])
        roll, costs = roll[:n], costs[:n]
        self.offer(st, actions, states if states is not None else roll, costs)
        best: _Best = st.best
        same = [i for i in range(actions.shape[0]) if torch.equal(actions[i], best.actions)]
        if same:  # the best is a current candidate: its rollout was just computed
            rollout = roll[same[0]]
        else:  # the best came from an earlier iteration or sync
            rollout = self.rollout(s0[None], best.actions[None])[0]
        if not (torch.isfinite(rollout).all() and torch.isfinite(best.actions).all()):
            raise ValueError(
                f"{self.name}: the world model returned non-finite latents (NaN or inf) while "
                "planning; check the model and its inputs"
            )
        return Plan(
            actions=best.actions.clone(),
            states=best.states.clone(),
            rollout=rollout,
            cost=float(best.cost),
            iterations=it,
            solve_time=self.clock() - t0,
            planner=self.name,
            members=members,
        )

    def _check_latent(self, what: str, z: torch.Tensor) -> torch.Tensor:
        z = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        if tuple(z.shape) == (1, *self.latent_shape):
            z = z[0]
        if tuple(z.shape) != self.latent_shape:
            raise ValueError(
                f"{what} latent has shape {tuple(z.shape)}, but the model's latent_shape is "
                f"{self.latent_shape}"
            )
        if not torch.isfinite(z).all():
            raise ValueError(f"{what} latent contains NaN or inf")
        return z.detach()

    def _fit_warm(self, warm: Plan | None, goal: torch.Tensor) -> Plan | None:
        if warm is None:
            return None
        if (
            tuple(warm.states.shape[1:]) != self.latent_shape
            or warm.actions.shape[1] != self.action_dim
        ):
            raise ValueError(
                f"warm start has latents {tuple(warm.states.shape[1:])} and actions of size "
                f"{warm.actions.shape[1]}; the model has {self.latent_shape} and {self.action_dim}"
            )
        if warm.horizon != self.horizon:
            warm = warm.shift(0, horizon=self.horizon)
        dev = self.device
        members = warm.members and tuple(m.to(dev, torch.float32) for m in warm.members)
        return dataclasses.replace(
            warm,
            actions=warm.actions.to(dev, torch.float32),
            states=warm.states.to(dev, torch.float32),
            rollout=warm.rollout.to(dev, torch.float32),
            members=members,
        )

    def generator(self) -> torch.Generator:
        """A fresh generator seeded from the config: the same inputs give the same plan."""
        return torch.Generator(device=self.device).manual_seed(int(self.config.seed))


def interpolate(s0: torch.Tensor, goal: torch.Tensor, horizon: int) -> torch.Tensor:
    """Straight line s_0 -> g in latent space: ``[T+1, *L]`` with s_0 and g at the ends."""
    w = torch.linspace(0.0, 1.0, horizon + 1, device=s0.device).reshape(-1, *[1] * s0.dim())
    return s0 + w * (goal - s0)
