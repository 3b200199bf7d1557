"""Push-T training data with pushing in it, and the check that a model learned pushing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grasp_ros.envs import make_env
from grasp_ros.envs.pusht import pushing_steps
from grasp_ros.envs.rollouts import random_rollouts
from grasp_ros.models.patch import PatchWorldModel
from grasp_ros.research import model_card, train_patch
from grasp_ros.research.evaluation import expert_check


def _block_moves(states: np.ndarray) -> float:
    """Share of steps that push the block."""
    return float(pushing_steps(states).mean())


def test_expert_episodes_push_the_block_more_than_random_exploration():
    env = make_env("pusht", image_size=32)
    states, actions = train_patch.expert_rollouts(env, 8, 24, seed=0, noise=0.3)
    assert states.shape == (8, 25, 7) and actions.shape == (8, 24, 2)
    assert np.abs(actions).max() <= 1.0
    random_states, _ = random_rollouts(env, 8, 24, seed=0)
    assert _block_moves(states) > 1.5 * _block_moves(random_states)


def test_expert_share_mixes_episodes_and_is_checked():
    args = train_patch.parse_args(
        [
            "pusht",
            "--episodes",
            "4",
            "--episode-length",
            "5",
            "--rollout-steps",
            "3",
            "--image-size",
            "32",
            "--expert-share",
            "0.5",
        ]
    )
    data = train_patch.collect_mixed(make_env("pusht", image_size=32), args)
    assert data["states"].shape == (4, 6, 7)
    assert data["frames"].shape == (4, 6, 32, 32, 3)
    args.expert_share = 1.5
    assert args.problems()
    args.expert_share, args.env, args.model = 0.5, "wall", "patch"
    assert args.problems()


def test_push_weight_draws_rollouts_that_start_with_a_push():
    from types import SimpleNamespace

    from grasp_ros.research.training import train_dynamics

    states = torch.zeros(2, 6, 7)
    states[0, 3:, 2] = 10.0  # episode 0's block moves 10 units in its step 2 (2 -> 3)
    weights = train_patch.rollout_weights(states, rollout_steps=2, push_weight=4.0)
    assert weights.shape == (2, 4)
    assert weights[0, 2] == 5.0 and (weights.flatten().sum() - 5.0) == 7.0
    assert train_patch.rollout_weights(states, 2, 0.0).eq(1).all()

    # train_dynamics draws (episode, start) pairs in proportion to such weights: with every
    # weight on one start, each rollout it trains on is that one.
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def dynamics_parameters(self):
            return [self.w]

        def forward(self, z, a):
            seen.append(a[:, 0].clone())
            return z + self.w

    actions = torch.arange(2 * 5, dtype=torch.float32).view(2, 5, 1)
    only = torch.zeros(2, 4)
    only[1, 3] = 1.0
    args = SimpleNamespace(seed=0, rollout_batch_size=8, rollout_steps=2, lr=1e-3)
    train_dynamics(args, Spy(), (torch.zeros(2, 6, 3), actions, only), None, "t", 2, 0, None)
    assert torch.cat(seen).unique().tolist() == [8.0, 9.0]  # episode 1, steps 3 and 4

    for argv in (["pusht", "--push-weight=-1"], ["wall", "--model", "patch", "--push-weight", "2"]):
        with pytest.raises(SystemExit):
            train_patch.parse_args(argv)


def test_expert_check_scores_an_identity_model_like_the_start():
    torch.manual_seed(0)
    model = PatchWorldModel(
        grid=4, dim=16, depth=1, heads=2, channels=8, env_name="pusht", world_size=512.0
    )
    out = expert_check(model, make_env("pusht", image_size=64), tasks=2, horizon=8)
    # The untrained predictor is the identity: rolling out the expert's plan goes nowhere.
    assert out["expert_final_mse"] == pytest.approx(out["expert_start_mse"], rel=1e-5)
    assert out["push_steps"] > 0 and 0.0 <= out["push_recall"] <= 1.0
    section = model_card._expert_section(out)
    assert f"{100 * out['push_recall']:.0f}%" in section and "H = 8" in section
