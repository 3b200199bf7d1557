"""What the node tests feed the planner: fast settings of the analytic model, and its images."""

from __future__ import annotations

import numpy as np
import torch

from grasp_ros.models.analytic import PointWallModel

RATE = 10.0
#: The analytic model (no checkpoint) and a few iterations a tick: ticks take milliseconds.
PLANNER = {
    "autostart": True,
    "model": "grasp_ros.models.analytic:PointWallModel",
    "device": "cpu",
    "cpu_threads": 1,
    "control_rate": RATE,
    "budget": "iterations",
    "iterations": 3,
    "cold_start_iterations": 10,
    "horizon": 10,
}


def rgb(*positions: tuple[float, float], size: int = 32) -> np.ndarray:
    """Camera images ``uint8 [N, size, size, 3]`` of the analytic world at ``positions``."""
    images = PointWallModel().render(torch.tensor(positions, dtype=torch.float32), size)
    return (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def stamp_msg(seconds: float):
    """builtin_interfaces/Time for float seconds."""
    from grasp_ros.nodes import messages

    return messages.time_msg(seconds)


def image_msg(image: np.ndarray, seconds: float):
    """sensor_msgs/Image (rgb8) stamped ``seconds``."""
    from grasp_ros.nodes import messages

    return messages.image_msg(image, messages.header(stamp_msg(seconds)))
