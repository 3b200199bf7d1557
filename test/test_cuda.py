"""CUDA correctness: run only where torch sees a CUDA GPU, skipped with the reason elsewhere.

What the CPU tests cannot show: ``device: auto`` picks the GPU; a plan on CUDA equals the plan
on the CPU for the same inputs and seed; the deadline holds although kernels run asynchronously
(the planner synchronises after each iteration when it has a deadline); no copy between host
and device happens inside the iteration loop (counted with ``torch.profiler``); the compiled
forward (``compile`` parameter) plans as the eager model, CUDA graphs included.

CPU and CUDA generators draw different numbers for the same seed, so the equality checks use
the planners' deterministic settings (straight-line start, no state noise; GD from zeros).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from grasp_ros.control import PlannerRuntime, Status
from grasp_ros.models import env_for_model, load_world_model, resolve_device
from grasp_ros.models.base import to_tensor
from grasp_ros.models.compiled import CompiledForward
from grasp_ros.planning import make_planner
from grasp_ros.research.patch_model import PatchTokenModel

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"
)
CUDA = torch.device("cuda")
#: Deterministic settings: the same plan on any device, up to floating-point summation order.
DETERMINISTIC = {
    "grasp": {"init": "interpolate", "state_noise": 0.0, "sync_every": 10, "sync_steps": 3},
    "gd": {"init": "zero"},
}


def wall_task(device: torch.device) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The wall model on ``device``, and a task's start and goal latents encoded on the CPU
    (cuDNN may convolve in TF32, which would make the two devices' latents differ)."""
    cpu_model = load_world_model("wall", device="cpu")
    task = env_for_model(cpu_model).sample_task(20, seed=0)
    with torch.no_grad():
        z = cpu_model.encode(to_tensor(np.stack([task.start_image, task.goal_image])))
    model = load_world_model("wall", device=device).requires_grad_(False)
    return model, z[0].to(device), z[1].to(device)


def test_device_auto_picks_cuda() -> None:
    assert resolve_device("auto") == torch.device("cuda")
    runtime = PlannerRuntime.from_params({"model": "wall", "device": "auto"})
    assert runtime.device.type == "cuda"
    assert all(p.is_cuda for p in runtime.model.parameters())
    task = env_for_model(runtime.model).sample_task(20, seed=0)
    runtime.on_goal(task.goal_image)
    runtime.on_image(task.start_image, 0.0)
    cmd = runtime.tick(0.0)
    assert cmd.status is Status.OK, cmd.message
    assert cmd.plan.actions.is_cuda and np.isfinite(cmd.action).all()


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_cuda_plans_equal_cpu_plans(name: str) -> None:
    plans = []
    for device in (torch.device("cpu"), CUDA):
        model, start, goal = wall_task(device)
        planner = make_planner(name, model, 20, seed=0, **DETERMINISTIC[name])
        plans.append(planner.plan(start, goal, max_iters=30))
    cpu, cuda = plans
    assert cuda.iterations == cpu.iterations == 30
    torch.testing.assert_close(cuda.actions.cpu(), cpu.actions, atol=2e-3, rtol=0)
    assert cuda.cost == pytest.approx(cpu.cost, rel=1e-2, abs=1e-5)


def test_deadline_holds_with_asynchronous_kernels() -> None:
    """Warm-started GRASP ticks at DINO-WM's latent size (256 x 384 tokens, H=50, population
    8), where an iteration's kernels take milliseconds of GPU time but microseconds to queue:
    without the per-iteration synchronisation the loop would queue many iterations inside the
    deadline and the GPU would finish them far past it. Timed until the GPU has finished; the
    deadline is ten iterations, and one iteration of overrun is allowed (the planner only knows
    an iteration's cost once it has run one)."""
    model = PatchTokenModel().to(CUDA).eval().requires_grad_(False)
    with torch.no_grad():
        start, goal = model.encode(torch.rand(2, 3, 64, 64, device=CUDA))
    planner = make_planner("grasp", model, 50, population=8, iterations=100000)
    plan = planner.plan(start, goal, max_iters=3)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    plan = planner.plan(start, goal, warm_start=plan.shift(1), max_iters=5)
    torch.cuda.synchronize()
    per_iteration = (time.perf_counter() - t0) / 5
    deadline = 10 * per_iteration
    for _ in range(3):
        warm = plan.shift(1)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        plan = planner.plan(start, goal, warm_start=warm, deadline=deadline)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        assert elapsed <= deadline + per_iteration + 0.01, (deadline, elapsed, plan.iterations)
        assert plan.iterations >= 3


def _host_device_copies(events: list) -> int:
    return sum(e.name.startswith(("Memcpy HtoD", "Memcpy DtoH")) for e in events)


def _copies_in_plan(planner, start: torch.Tensor, goal: torch.Tensor, iterations: int) -> int:
    planner.plan(start, goal, max_iters=iterations)  # first-call costs out of the profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        planner.plan(start, goal, max_iters=iterations)
        torch.cuda.synchronize()
    return _host_device_copies(prof.events())


def test_the_copy_count_sees_a_device_to_host_copy() -> None:
    """The control for the next test: an ``item()`` is counted."""
    x = torch.ones(4, device=CUDA)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        x.sum().item()
        torch.cuda.synchronize()
    assert _host_device_copies(prof.events()) >= 1


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("grasp", {"sync_every": 0}),
        pytest.param("grasp", {"sync_every": 5}, id="grasp-with-syncs"),
        ("gd", {}),
        ("cem", {}),
    ],
)
def test_no_host_device_copy_inside_the_iteration_loop(name: str, config: dict) -> None:
    """Copies made once per plan (the inputs, the final selection) are allowed; the count must
    not grow with the number of iterations."""
    model, start, goal = wall_task(CUDA)
    planner = make_planner(name, model, 20, seed=0, **config)
    few, many = (_copies_in_plan(planner, start, goal, n) for n in (5, 25))
    assert many == few


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_forward_plans_as_the_eager_model_on_cuda(mode: str) -> None:
    model, start, goal = wall_task(CUDA)
    plans = [
        make_planner("grasp", m, 20, seed=0, **DETERMINISTIC["grasp"]).plan(
            start, goal, max_iters=30
        )
        for m in (model, CompiledForward(model, mode))
    ]
    torch.testing.assert_close(plans[1].actions, plans[0].actions, atol=1e-3, rtol=0)
    torch.testing.assert_close(plans[1].rollout, plans[0].rollout, atol=1e-3, rtol=1e-3)
