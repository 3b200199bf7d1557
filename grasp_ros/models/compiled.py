"""The planner's view of a world model with its ``forward`` compiled by ``torch.compile``.

A planner calls ``model(latents, actions)`` hundreds of times per control tick, with a handful
of batch shapes (population x horizon for GRASP's parallel call, the population for serial
rollouts, the random-plan samples at a cold start). On a GPU a small model is launch-bound:
each call is a dozen small kernels. ``torch.compile`` fuses the elementwise ones ('default'),
and 'reduce-overhead' also replays each shape's kernels as one CUDA graph. Compiling only the
forward keeps the planners' algorithm code as it is: the runtime hands the planner this wrapper
instead of the model, and nothing else changes.

Costs: the first call of each shape (and of grad / no-grad use) compiles, seconds to a minute,
so the runtime's warm-up runs a full plan to compile them before the first tick (a live change
of the horizon brings new shapes, and the next ticks compile again). Whether it
pays depends on the model and the device; ``python -m grasp_ros.research.gpu_bench`` measures
it. With 'reduce-overhead' the outputs of a CUDA graph live in memory that its next replay
overwrites, and a serial rollout keeps every step's output, so each output is cloned.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: The ``compile`` parameter's values: 'off', or a ``torch.compile`` mode.
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
#: The ``matmul_precision`` parameter's values (``torch.set_float32_matmul_precision``): 'high'
#: and 'medium' let a GPU run float32 matrix products on TF32 tensor cores.
MATMUL_PRECISIONS = ("highest", "high", "medium")


class CompiledForward(nn.Module):
    """``model`` with ``forward`` compiled; every other attribute is the model's own.

    Args:
        model: a world model (the :class:`~grasp_ros.models.WorldModel` contract).
        mode: a ``torch.compile`` mode from :data:`COMPILE_MODES` other than 'off'.
        backend: the ``torch.compile`` backend; tests use 'aot_eager' (the same graph capture
            and autograd, no code generation) to check the mechanism in seconds.
    """

    def __init__(self, model: nn.Module, mode: str = "default", backend: str = "inductor") -> None:
        super().__init__()
        if mode not in COMPILE_MODES or mode == "off":
            raise ValueError(f"compile mode {mode!r} is not one of {list(COMPILE_MODES[1:])}")
        self.inner = model
        self.mode = mode
        if backend == "inductor":
            self._compiled = torch.compile(model.forward, mode=mode)
        else:
            self._compiled = torch.compile(model.forward, backend=backend)

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        # Contiguous inputs: the planners pass expanded (stride-0) and sliced views as well, and
        # each new stride pattern is a recompile (the GPU run hit torch's limit of 8 that way).
        out = self._compiled(latents.contiguous(), actions.contiguous())
        return out.clone() if self.mode == "reduce-overhead" else out

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "inner":  # not built yet (copy, unpickling): no model to ask
                raise
            return getattr(self.inner, name)


def compile_forward(model: nn.Module, mode: str) -> nn.Module:
    """``model`` itself for mode 'off', else the :class:`CompiledForward` wrapper around it."""
    return model if mode == "off" else CompiledForward(model, mode)
