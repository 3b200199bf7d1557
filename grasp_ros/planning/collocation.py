"""Latent collocation (LatCo-style, Rybkin et al., 2021): the paper's "lifted states" baseline.

States s_1..s_T and actions are free variables; dynamics are a soft constraint whose weight
grows over the solve (a penalty schedule standing in for LatCo's Lagrange multipliers), and the
goal is a cost on s_T alone:

    L = lambda_k * sum_t ||F(s_t, a_t) - s_{t+1}||^2 + ||s_T - g||^2

with full gradients through the model's state input and no noise. Like GRASP one iteration is a
single batched model call; unlike GRASP it has no stop-gradient, no dense goal term and no sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Planner, PlannerConfig, PlanState, interpolate
from .config import knob
from .objectives import latent_mse
from .plan import Plan


@dataclass
class CollocationConfig(PlannerConfig):
    """Collocation settings."""

    iterations: int = knob(300, "iteration cap per plan call", low=0, high=100000)
    action_lr: float = knob(0.05, "Adam step size for actions", low=0.0, high=10.0)
    state_lr: float = knob(0.05, "Adam step size for states", low=0.0, high=10.0)
    dyn_weight: float = knob(
        1.0, "initial weight lambda of the dynamics penalty", low=0.0, high=1e6
    )
    dyn_weight_growth: float = knob(
        2.0, "factor applied to lambda every growth period", low=1.0, high=100.0
    )
    growth_every: int = knob(50, "iterations between lambda increases", low=1, high=100000)


@dataclass(kw_only=True)
class _State(PlanState):
    actions: torch.Tensor  # [1, T, A], leaf
    states: torch.Tensor  # [1, T, *L] = s_1..s_T, leaf
    opt: torch.optim.Optimizer


class CollocationPlanner(Planner):
    """Lifted-state optimisation with full state gradients (see the module docstring)."""

    name = "collocation"
    Config = CollocationConfig
    config: CollocationConfig

    def _init(self, s0: torch.Tensor, goal: torch.Tensor, warm: Plan | None) -> _State:
        cfg = self.config
        if warm is not None:
            actions, states = warm.actions[None].clone(), warm.states[None, 1:].clone()
        else:
            actions = torch.zeros(1, self.horizon, self.action_dim, device=s0.device)
            states = interpolate(s0, goal, self.horizon)[None, 1:].clone()
        self.clamp_actions(actions).requires_grad_(True)
        states.requires_grad_(True)
        opt = torch.optim.Adam(
            [{"params": [actions], "lr": cfg.action_lr}, {"params": [states], "lr": cfg.state_lr}]
        )
        return _State(s0=s0, goal=goal, actions=actions, states=states, opt=opt)

    def _step(self, st: _State, it: int) -> None:
        cfg = self.config
        full = torch.cat([st.s0[None, None], st.states], 1)
        pred = self.predict_parallel(full[:, :-1], st.actions)
        weight = cfg.dyn_weight * cfg.dyn_weight_growth ** (it // cfg.growth_every)
        loss = (
            weight * latent_mse(pred, full[:, 1:], 2).sum()
            + self.objective.terminal(st.states[:, -1], st.goal).sum()
        )
        st.opt.zero_grad(set_to_none=True)
        loss.backward()
        st.opt.step()
        with torch.no_grad():
            self.clamp_actions(st.actions)

    def _candidates(self, st: _State) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.cat([st.s0[None, None], st.states], 1)
        return st.actions.detach(), full.detach()
