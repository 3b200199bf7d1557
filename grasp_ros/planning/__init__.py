"""Planners over a world model: GRASP and the paper's baselines behind one interface.

``make_planner(name, model, horizon, **config)`` builds one by name; every planner has
``plan(start, goal, warm_start=None, max_iters=None, deadline=None) -> Plan`` and scores plans
with one :class:`~grasp_ros.planning.objectives.Objective` (latent MSE unless told otherwise).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .base import Planner
from .cem import CEMConfig, CEMPlanner
from .collocation import CollocationConfig, CollocationPlanner
from .config import validate_config
from .gd import GDConfig, GDPlanner
from .grasp import GraspConfig, GraspPlanner
from .objectives import OBJECTIVES, CostToGo, LatentMSE, Objective, make_objective
from .plan import Plan

PLANNERS: dict[str, type[Planner]] = {
    cls.name: cls for cls in (GraspPlanner, GDPlanner, CEMPlanner, CollocationPlanner)
}


def make_planner(name: str, model: nn.Module, horizon: int, **config: Any) -> Planner:
    """Build the planner called ``name`` ('grasp' | 'gd' | 'cem' | 'collocation')."""
    try:
        cls = PLANNERS[name]
    except KeyError:
        raise ValueError(f"unknown planner {name!r}; choose one of {sorted(PLANNERS)}") from None
    return cls(model, horizon, **config)


__all__ = [
    "OBJECTIVES",
    "PLANNERS",
    "CEMConfig",
    "CEMPlanner",
    "CollocationConfig",
    "CollocationPlanner",
    "CostToGo",
    "GDConfig",
    "GDPlanner",
    "GraspConfig",
    "GraspPlanner",
    "LatentMSE",
    "Objective",
    "Plan",
    "Planner",
    "make_objective",
    "make_planner",
    "validate_config",
]
