"""GRASP: parallel stochastic gradient-based planning (Psenka et al., 2026, arXiv 2602.00475).

Actions a_0..a_{T-1} and virtual states s_1..s_{T-1} are optimised together; s_0 (the encoded
observation) and s_T = g (the goal) are fixed. With sg(.) the stop-gradient, the loss is

    L = sum_t ||F(sg(s_t), a_t) - s_{t+1}||^2  +  goal_weight * sum_t ||F(sg(s_t), a_t) - g||^2

(squared norms averaged over latent elements), so one iteration is ONE batched model call over
population x time. Actions take a deterministic Adam step; virtual states take an Adam step plus
Gaussian noise (``state_noise``). Every ``sync_every`` iterations a short serial phase takes
``sync_steps`` Adam steps on the true terminal loss ||F^T(s_0, a) - g||^2 and the main
optimiser's moments are reset. Choices the paper leaves open, made here: a population of plans
with independent noise is optimised at once, the best picked by true rollout cost; on a cold
start one member starts on the straight line s_0 -> g with zero actions and the others on the
model rollouts of the best of a few hundred random piecewise-constant plans (``init='sample'``),
so the population starts in several basins: the straight line runs into walls, and a
gradient planner stays in the basin it starts in (the Wall world's long detours through the door
were found by no straight-line start). A warm start carries the population on from the
previous tick (shifted), with the previous best as member 0 and ``reseed`` members replaced by
fresh sampled plans, so the search keeps exploring between ticks. The fresh plans are drawn at
the end of each warm tick and rolled out in the answer's own batched rollout (one serial rollout
a tick instead of two), so they join the population one tick later, shifted like the rest.
Bounds are kept by projection. ``anneal`` is the authors' optional schedule: the goal weight and
the noise fall linearly to zero within each sync period, so each period starts
goal-seeking and exploratory and ends fitting the dynamics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Planner, PlannerConfig, PlanState, interpolate
from .config import knob
from .objectives import latent_mse
from .plan import Plan


@dataclass
class GraspConfig(PlannerConfig):
    """GRASP settings.

    Defaults follow the authors' public solver (``le-wm-grasp``) except the start (a population
    of 8 from sampled plans, see the module docstring; theirs is ``init='interpolate',
    population=1``) and the step sizes: Adam moves every element by about ``lr`` per iteration
    whatever the gradient's size, so ``state_lr`` is in latent units. The authors' 0.1 suits
    DINOv2 features; on unit-scale latents (the shipped models and the analytic tests) it makes
    the virtual states wander off the data, and a sweep over door, ill-conditioned and long
    open-field tasks picked ``state_lr=0.01, action_lr=0.1`` (actions in [-1, 1]). Rescale
    ``state_lr`` and ``state_noise`` with your model's latent scale.
    """

    iterations: int = knob(300, "iteration cap per plan call", low=0, high=100000)
    action_lr: float = knob(0.1, "Adam step size for actions", low=0.0, high=10.0)
    state_lr: float = knob(0.01, "Adam step size for virtual states", low=0.0, high=10.0)
    goal_weight: float = knob(1.0, "gamma: weight of the dense goal term", low=0.0, high=1000.0)
    state_noise: float = knob(
        0.005, "sigma_state: std of noise on virtual states", low=0.0, high=10.0
    )
    sync_every: int = knob(
        50, "K_sync: iterations between serial syncs (0: never)", low=0, high=100000
    )
    sync_steps: int = knob(
        10, "gradient steps on the true terminal loss per sync", low=0, high=1000
    )
    sync_lr: float = knob(0.05, "Adam step size during sync", low=0.0, high=10.0)
    population: int = knob(8, "plans optimised in parallel, best kept", low=1, high=4096)
    stop_grad: bool = knob(True, "cut the gradient through the model's state input")
    init: str = knob(
        "sample", "initial virtual states", choices=("interpolate", "rollout", "sample")
    )
    init_samples: int = knob(
        256, "init 'sample': random piecewise-constant plans rolled out", low=1, high=100000
    )
    anneal: bool = knob(
        False, "decay goal_weight and state_noise linearly to 0 within each sync period"
    )
    reseed: int = knob(
        2,
        "warm start: population members replaced by fresh sampled plans each tick (drawn at "
        "the end of a warm tick, they join the next one)",
        low=0,
        high=4096,
    )
    reseed_samples: int = knob(
        32, "warm start: random plans rolled out to pick the re-seeded members", low=1, high=100000
    )


@dataclass(kw_only=True)
class _State(PlanState):
    actions: torch.Tensor  # [P, T, A], leaf
    virtual: torch.Tensor  # [P, T-1, *L], leaf
    opt: torch.optim.Optimizer
    gen: torch.Generator
    scale: float = 1.0  # anneal's factor on goal_weight and state_noise this iteration


class GraspPlanner(Planner):
    """GRASP behind the common planner interface (see the module docstring)."""

    name = "grasp"
    Config = GraspConfig
    config: GraspConfig
    #: Warm starts re-seeded so far: each draws new random plans (deterministic per planner).
    _reseeds = 0

    def _init(self, s0: torch.Tensor, goal: torch.Tensor, warm: Plan | None) -> _State:
        cfg, horizon, pop = self.config, self.horizon, self.config.population
        if warm is not None:
            actions, virtual = self._warm_population(s0, goal, warm)
        else:
            actions = torch.zeros(pop, horizon, self.action_dim, device=s0.device)
            line = interpolate(s0, goal, horizon)[1:horizon]
            virtual = line.expand(pop, *line.shape).clone()
            if cfg.init == "rollout":
                with torch.no_grad():
                    virtual = self.rollout(s0.expand(pop, *s0.shape), actions)[:, 1:horizon]
            elif cfg.init == "sample" and pop > 1:
                actions[1:], roll = self.sampled_starts(s0, goal, pop - 1, cfg.init_samples)
                virtual[1:] = roll[:, 1:horizon]
        self.clamp_actions(actions)
        actions.requires_grad_(True)
        virtual.requires_grad_(True)
        opt = torch.optim.Adam(
            [{"params": [actions], "lr": cfg.action_lr}, {"params": [virtual], "lr": cfg.state_lr}]
        )
        return _State(
            s0=s0, goal=goal, actions=actions, virtual=virtual, opt=opt, gen=self.generator()
        )

    def _warm_population(
        self, s0: torch.Tensor, goal: torch.Tensor, warm: Plan
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions ``[P, T, A]`` and virtual states ``[P, T-1, *L]`` for a warm start.

        The population carries on from last tick's (``warm.members``, shifted: its last
        ``reseed`` members are the fresh plans drawn at the end of that tick, :meth:`_reseed`)
        and member 0 is last tick's best, so the search keeps looking beyond the basin it is
        in: with only the previous plan to refine, 15-20 iterations a tick never leave it
        (measured: closed-loop GRASP 10% at H=40 on Wall, the first tick's sampled start
        forgotten).
        """
        horizon, pop = self.horizon, self.config.population
        if warm.members is not None and warm.members[0].shape[0] == pop:
            actions = warm.members[0].clone()
            virtual = warm.members[1][:, 1:horizon].clone()
        else:
            actions = warm.actions.expand(pop, -1, -1).clone()
            virtual = warm.states[1:horizon].expand(pop, *warm.states[1:horizon].shape).clone()
        actions[0], virtual[0] = warm.actions, warm.states[1:horizon]
        return actions, virtual

    def _answer_rows(self) -> int:
        cfg = self.config
        fresh = min(cfg.reseed, cfg.population - 1)
        return cfg.population + 1 + (cfg.reseed_samples if fresh else 0)

    def _fresh_plans(self, st: _State) -> torch.Tensor | None:
        """``reseed_samples`` new random plans at the end of a warm tick (new draws each tick,
        deterministic per planner); ``None`` on a cold plan (its population is all sampled)."""
        cfg = self.config
        if st.warm is None or not min(cfg.reseed, cfg.population - 1):
            return None
        self._reseeds += 1
        gen = torch.Generator(device=st.s0.device).manual_seed(
            int(cfg.seed) * 1_000_003 + self._reseeds
        )
        return self.random_plans(cfg.reseed_samples, gen)

    def _reseed(
        self,
        members: tuple[torch.Tensor, torch.Tensor],
        goal: torch.Tensor,
        plans: torch.Tensor,
        rollouts: torch.Tensor,
        costs: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last ``reseed`` members replaced by the best fresh plans and their rollouts
        (ending at the goal, as every member's states do)."""
        pop = self.config.population
        fresh = min(self.config.reseed, pop - 1)
        best = costs.topk(min(fresh, len(costs)), largest=False).indices
        best = best[torch.arange(fresh, device=costs.device) % len(best)]
        actions, states = members
        actions[pop - fresh :] = plans[best]
        states[pop - fresh :, :-1] = rollouts[best, :-1]
        states[pop - fresh :, -1] = goal
        return actions, states

    def _states(self, st: _State) -> torch.Tensor:
        """Full state sequence ``[P, T+1, *L]``: s_0, the virtual states, then the goal."""
        pop = st.actions.shape[0]
        ends = (st.s0.expand(pop, 1, *st.s0.shape), st.goal.expand(pop, 1, *st.goal.shape))
        return torch.cat([ends[0], st.virtual, ends[1]], 1)

    def loss(self, st: _State) -> torch.Tensor:
        """GRASP's L = L_dyn + goal_weight * L_goal, summed over time and population."""
        states = self._states(st)
        inputs = states[:, :-1].detach() if self.config.stop_grad else states[:, :-1]
        pred = self.predict_parallel(inputs, st.actions)
        dyn = latent_mse(pred, states[:, 1:], 2).sum()
        if self.config.goal_weight == 0:
            return dyn
        goal = self.objective.dense(torch.cat([states[:, :1], pred], 1), st.goal)
        return dyn + self.config.goal_weight * st.scale * goal

    def _step(self, st: _State, it: int) -> None:
        cfg = self.config
        if cfg.anneal and cfg.sync_every:
            st.scale = 1.0 - (it % cfg.sync_every) / cfg.sync_every
        st.opt.zero_grad(set_to_none=True)
        self.loss(st).backward()
        st.opt.step()
        with torch.no_grad():
            self.clamp_actions(st.actions)
            if cfg.state_noise > 0 and st.virtual.numel():
                noise = torch.randn(st.virtual.shape, generator=st.gen, device=st.virtual.device)
                st.virtual.add_(noise, alpha=cfg.state_noise * st.scale)
        if cfg.sync_every and (it + 1) % cfg.sync_every == 0 and cfg.sync_steps:
            self._sync(st)

    def _sync(self, st: _State) -> None:
        """Serial refinement on the true terminal loss, then reset the main moments."""
        opt = torch.optim.Adam([st.actions], lr=self.config.sync_lr)
        s0 = st.s0.expand(st.actions.shape[0], *st.s0.shape)
        for _ in range(self.config.sync_steps):
            opt.zero_grad(set_to_none=True)
            roll = self.rollout(s0, st.actions)
            costs = self.objective.trajectory(roll, st.goal)
            self.offer(st, st.actions, self._states(st), costs)
            costs.sum().backward()
            opt.step()
            with torch.no_grad():
                self.clamp_actions(st.actions)
        st.opt.state.clear()

    def _candidates(self, st: _State) -> tuple[torch.Tensor, torch.Tensor]:
        return st.actions.detach(), self._states(st).detach()
