"""The memory guard: estimate what a planner configuration needs, and refuse it up front.

``horizon=1000`` with ``grasp.population=4096`` used to be accepted and grew until the OS killed
the process. Memory a plan needs scales with horizon x batch x (latent size + what the model
keeps for the backward pass per sample), so it can be estimated before anything is allocated:

- the model's per-sample footprint is measured once, by counting the bytes autograd saves in
  one forward pass at batch 2 and at batch 4 (the difference is per sample; weights cancel);
- each planner's batches follow from its settings: GRASP and collocation differentiate
  ``population`` (1 for collocation) plans of ``horizon`` steps at once, GD one serial rollout,
  CEM rolls ``samples`` plans without gradients, and a sampled cold start rolls
  ``init_samples`` plans without gradients.

The estimate is for float32 and counts the optimiser's state, gradients and the stacked
rollouts; it aims at the right order of magnitude, not the byte. Against the growth of peak
RSS over three iterations with the shipped Wall model on CPU: GRASP population 512 at horizon
200 / 400, 0.9 / 1.8 GiB estimated against 1.4 / 1.8 GiB measured; CEM 2000 samples at 200,
198 against 248 MiB. ``memory_limit_mb`` caps it (0: half of the device's memory).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from grasp_ros.control.params import ParamsError, planner_config
from grasp_ros.models.base import device_of
from grasp_ros.planning import PLANNERS

_FLOAT = 4  # bytes


def saved_bytes_per_sample(model: nn.Module) -> int:
    """Bytes autograd keeps per sample for one ``forward`` (measured at batch 2 and 4)."""
    device = device_of(model)
    latent, dim = tuple(model.latent_shape), int(model.action_dim)
    sizes = []
    for batch in (2, 4):
        total = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        z = torch.zeros(batch, *latent, device=device, requires_grad=True)
        a = torch.zeros(batch, dim, device=device, requires_grad=True)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(z, a)
        sizes.append(total)
    return max(0, (sizes[1] - sizes[0]) // 2)


def plan_bytes(params: Mapping[str, Any], model: nn.Module, per_sample: int) -> int:
    """Estimated peak bytes of one ``plan`` call with these parameters (see the module doc)."""
    name = params["planner"]
    cfg = PLANNERS[name].Config(**planner_config(params, name))
    horizon, dim = params["horizon"], int(model.action_dim)
    latent = math.prod(int(d) for d in model.latent_shape)
    sampled = getattr(cfg, "init_samples", 0) if getattr(cfg, "init", "") == "sample" else 0
    if name == "cem":
        with_grad, without_grad = 0, cfg.samples
    else:
        with_grad, without_grad = getattr(cfg, "population", 1), sampled
    # With gradients: states and actions, their gradients and two Adam moments, the
    # predictions and the loss terms, and what the model saves for the backward pass.
    grad = with_grad * (_FLOAT * (8 * latent + 4 * dim) + per_sample)
    # Without: the rollout's states, listed and then stacked, and the sampled actions.
    plain = without_grad * _FLOAT * (2 * latent + dim)
    return horizon * (grad + plain)


def device_memory(device: torch.device) -> int:
    """Total bytes of the device: GPU memory for CUDA, else the machine's physical memory."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(params: Mapping[str, Any], model: nn.Module, per_sample: int) -> None:
    """ParamsError with the estimate and the limit when the configuration would not fit."""
    need = plan_bytes(params, model, per_sample)
    limit_mb = params["memory_limit_mb"]
    if limit_mb > 0:
        limit, source = limit_mb * 2**20, f"memory_limit_mb={limit_mb:g}"
    else:
        device = device_of(model)
        limit = device_memory(device) // 2
        source = f"half of the {device.type} device's memory (memory_limit_mb=0)"
    if need > limit:
        planner = params["planner"]
        raise ParamsError(
            f"planning with {planner} at horizon {params['horizon']} would need about "
            f"{need / 2**20:,.0f} MiB, more than the limit of {limit / 2**20:,.0f} MiB "
            f"({source}); lower the horizon or the planner's population/samples, or raise "
            "memory_limit_mb"
        )
