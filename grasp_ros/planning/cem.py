"""CEM: the cross-entropy method over action sequences (DINO-WM's planning baseline).

Each iteration samples ``samples`` sequences from a diagonal Gaussian, rolls all of them out
serially in one batch (T model calls), keeps the ``elites`` with the lowest terminal error and
refits the Gaussian to them. The current mean is always among the samples, so a warm start is
never lost to sampling noise. ``init='sample'`` centres the first Gaussian on the best of the
same random plans GRASP and GD sample their starts from, so the three can be compared from one
start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Planner, PlannerConfig, PlanState
from .config import knob
from .plan import Plan


@dataclass
class CEMConfig(PlannerConfig):
    """CEM settings; defaults follow DINO-WM (300 samples, top 30)."""

    iterations: int = knob(30, "iteration cap per plan call", low=0, high=100000)
    samples: int = knob(300, "action sequences sampled per iteration", low=2, high=100000)
    elites: int = knob(30, "lowest-cost samples the Gaussian is refitted to", low=1, high=100000)
    init_std: float = knob(
        1.0, "initial std, as a fraction of the action half-range", low=0.0, high=10.0
    )
    min_std: float = knob(
        0.01, "floor on the std, as a fraction of the half-range", low=0.0, high=10.0
    )
    init: str = knob(
        "center",
        "cold-start mean: the middle of the action box (DINO-WM's) or the best random plan",
        choices=("center", "sample"),
    )
    init_samples: int = knob(
        256, "init 'sample': random piecewise-constant plans rolled out", low=1, high=100000
    )


@dataclass(kw_only=True)
class _State(PlanState):
    mean: torch.Tensor  # [T, A]
    std: torch.Tensor  # [T, A]
    scale: torch.Tensor  # [A] half-range
    gen: torch.Generator


class CEMPlanner(Planner):
    """Cross-entropy method, batched over samples."""

    name = "cem"
    Config = CEMConfig
    config: CEMConfig
    uses_optimizer = False

    def __init__(self, model: torch.nn.Module, horizon: int, **config: object) -> None:
        super().__init__(model, horizon, **config)
        if self.config.elites > self.config.samples:
            raise ValueError(
                f"elites={self.config.elites} must not exceed samples={self.config.samples}"
            )

    def _init(self, s0: torch.Tensor, goal: torch.Tensor, warm: Plan | None) -> _State:
        low = getattr(self.model, "action_low", None)
        high = getattr(self.model, "action_high", None)
        if low is not None and high is not None:
            scale, center = (high - low) / 2, (high + low) / 2
        else:
            scale = torch.ones(self.action_dim, device=s0.device)
            center = torch.zeros(self.action_dim, device=s0.device)
        if warm is not None:
            mean = warm.actions.clone()
        elif self.config.init == "sample":  # the same draws as GRASP's and GD's sampled starts
            mean = self.sampled_starts(s0, goal, 1, self.config.init_samples)[0][0]
        else:
            mean = center.expand(self.horizon, -1).clone()
        std = (scale * self.config.init_std).expand(self.horizon, -1).clone()
        return _State(s0=s0, goal=goal, mean=mean, std=std, scale=scale, gen=self.generator())

    @torch.no_grad()
    def _step(self, st: _State, it: int) -> None:
        cfg = self.config
        noise = torch.randn(cfg.samples, *st.mean.shape, generator=st.gen, device=st.mean.device)
        noise[0] = 0
        samples = self.clamp_actions(st.mean + st.std * noise)
        roll = self.rollout(st.s0.expand(cfg.samples, *st.s0.shape), samples)
        costs = self.objective.trajectory(roll, st.goal)
        idx = torch.topk(costs, cfg.elites, largest=False).indices
        self.offer(st, samples[idx[:1]], roll[idx[:1]], costs[idx[:1]])
        elites = samples[idx]
        st.mean = elites.mean(0)
        std = elites.std(0, unbiased=False) if cfg.elites > 1 else torch.zeros_like(st.std)
        st.std = torch.maximum(std, st.scale * cfg.min_std)

    def _candidates(self, st: _State) -> tuple[torch.Tensor, None]:
        return self.clamp_actions(st.mean[None].clone()), None
