"""World models: the contract planners plan through, the reference model, and the loader.

``load_world_model('wall')`` gives a trained, checked model shipped with the package;
``env_for_model(model)`` the reference world it was trained in.
"""

from __future__ import annotations

from grasp_ros.models.base import WorldModel, check_world_model, has_decoder, has_projection
from grasp_ros.models.loader import (
    env_for_model,
    list_shipped_models,
    load_world_model,
    resolve_device,
)
from grasp_ros.models.reference import ReferenceWorldModel

__all__ = [
    "ReferenceWorldModel",
    "WorldModel",
    "check_world_model",
    "env_for_model",
    "has_decoder",
    "has_projection",
    "list_shipped_models",
    "load_world_model",
    "resolve_device",
]
