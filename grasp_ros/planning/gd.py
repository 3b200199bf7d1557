"""GD: gradient descent on the actions through the serial rollout (the paper's GD baseline).

Minimises ||F^T(s_0, a) - g||^2 by backpropagating through T composed model calls, so each
iteration is T serial calls and the gradient passes through every state Jacobian D_s F: slow
and ill-conditioned at long horizons, which is what GRASP is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Planner, PlannerConfig, PlanState
from .config import knob
from .plan import Plan


@dataclass
class GDConfig(PlannerConfig):
    """GD settings."""

    lr: float = knob(0.05, "Adam step size for actions", low=0.0, high=10.0)
    init: str = knob(
        "zero",
        "cold-start actions: zeros (the paper's baseline) or the best random plan",
        choices=("zero", "sample"),
    )
    init_samples: int = knob(
        256, "init 'sample': random piecewise-constant plans rolled out", low=1, high=100000
    )


@dataclass(kw_only=True)
class _State(PlanState):
    actions: torch.Tensor  # [1, T, A], leaf
    opt: torch.optim.Optimizer


class GDPlanner(Planner):
    """Adam on the terminal loss of the serial rollout, actions projected onto bounds."""

    name = "gd"
    Config = GDConfig
    config: GDConfig

    def _init(self, s0: torch.Tensor, goal: torch.Tensor, warm: Plan | None) -> _State:
        if warm is not None:
            actions = warm.actions[None].clone()
        elif self.config.init == "sample":
            actions = self.sampled_starts(s0, goal, 1, self.config.init_samples)[0]
        else:
            actions = torch.zeros(1, self.horizon, self.action_dim, device=s0.device)
        self.clamp_actions(actions).requires_grad_(True)
        return _State(
            s0=s0, goal=goal, actions=actions, opt=torch.optim.Adam([actions], lr=self.config.lr)
        )

    def _step(self, st: _State, it: int) -> None:
        st.opt.zero_grad(set_to_none=True)
        roll = self.rollout(st.s0[None], st.actions)
        cost = self.objective.trajectory(roll, st.goal)
        self.offer(st, st.actions, roll, cost)
        cost.sum().backward()
        st.opt.step()
        with torch.no_grad():
            self.clamp_actions(st.actions)

    def _candidates(self, st: _State) -> tuple[torch.Tensor, None]:
        return st.actions.detach(), None
