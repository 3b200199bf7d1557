"""Push-T training data with pushing in it, and the check that a model learned pushing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grasp_ros.envs import make_env
from grasp_ros.envs.pusht import block_outline
from grasp_ros.envs.rollouts import random_rollouts
from grasp_ros.models.patch import PatchWorldModel
from grasp_ros.research import model_card, train_patch
from grasp_ros.research.evaluation import expert_check


def _block_moves(states: np.ndarray) -> float:
    """Share of steps in which a point of the block's outline moves more than 2 units."""
    outline = block_outline(states.reshape(-1, 7)).reshape(*states.shape[:2], -1, 2)
    return float((np.linalg.norm(np.diff(outline, axis=1), axis=-1).max(-1) > 2.0).mean())


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
