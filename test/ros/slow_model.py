"""A world model whose every ``forward`` call sleeps: a planning step that lasts seconds.

The shutdown tests signal the planner while such a step runs (model ``slow_model:SlowModel``;
the launcher puts this folder on the nodes' PYTHONPATH).
"""

from __future__ import annotations

import time

import torch

from grasp_ros.models.analytic import PointWallModel

#: Seconds each model call sleeps.
SLEEP = 0.2


class SlowModel(PointWallModel):
    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        time.sleep(SLEEP)
        return super().forward(latents, actions)
