"""The result of planning: actions, the states the planner believes in, and their cost.

A :class:`Plan` is also the warm start of the next control tick (:meth:`Plan.shift`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

PAD_MODES = ("zero", "last")


@dataclass
class Plan:
    """A planned action sequence and what the planner believes will happen.

    Attributes:
        actions: ``[T, A]`` actions a_0 .. a_{T-1}.
        states: ``[T+1, *latent]``: GRASP/collocation virtual states with s_0 and the goal at
            the ends; for serial planners (GD, CEM) their rollout.
        rollout: ``[T+1, *latent]`` serial rollout of ``actions`` from s_0 through the model.
        cost: the objective's terminal cost of ``rollout[-1]`` (latent MSE by default).
        iterations: optimisation iterations run.
        solve_time: wall-clock seconds spent in ``plan``.
        planner: name of the planner that made it.
        model_calls: batched ``forward`` calls made (one GRASP iteration is one call).
        warm_started: whether a previous plan seeded this one.
    """

    actions: torch.Tensor
    states: torch.Tensor
    rollout: torch.Tensor
    cost: float
    iterations: int
    solve_time: float
    planner: str = ""
    model_calls: int = 0
    warm_started: bool = False

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])

    def shift(self, k: int, pad: str = "zero", horizon: int | None = None) -> Plan:
        """The warm start for the next control tick after ``k`` executed steps.

        As pytorch_mppi rolls its action sequence: the first ``k`` steps are dropped and the
        tail, up to ``horizon`` steps (default: this plan's), is filled with zero actions
        (``pad='zero'``, DINO-WM and pytorch_mppi) or the last action (``pad='last'``, nav2
        MPPI). States move with their actions: the new s_0 is the old s_k (the planner
        re-anchors it to the new observation) and the tail holds the goal, so the padded steps
        read "hold at the goal". ``rollout`` moves the same way and is only a guess until the
        next plan recomputes it.
        """
        if pad not in PAD_MODES:
            raise ValueError(f"pad={pad!r} is not one of {list(PAD_MODES)}")
        horizon = self.horizon if horizon is None else int(horizon)
        k = max(0, min(int(k), self.horizon))
        fill = self.actions[-1:] if pad == "last" else torch.zeros_like(self.actions[-1:])

        def roll(x: torch.Tensor, tail: torch.Tensor, n: int) -> torch.Tensor:
            kept = x[k : k + n]
            return torch.cat([kept, tail.expand(n - len(kept), *x.shape[1:])])

        goal = self.states[-1:]
        return dataclasses.replace(
            self,
            actions=roll(self.actions, fill, horizon),
            states=torch.cat([roll(self.states[:-1], goal, horizon), goal]),
            rollout=roll(self.rollout, self.rollout[-1:], horizon + 1),
        )
