"""What the demo writes besides its bag: the tick and episode records, the animated GIF of the
closed loop, the per-tick timing plot and summary.json."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import grasp_ros
from grasp_ros.control import PlannerRuntime
from grasp_ros.envs import Task, World
from grasp_ros.models import has_decoder
from grasp_ros.viz import decode_mosaic, overlay

PANEL = 256
GAP = 4
WIDTH = 2 * PANEL + GAP
DECODED_STATES = 8
END_FRAMES = 10
LEGEND = "dots: virtual states (dark=early)  blue: model rollout  grey: path  green: goal"


class Animation:
    """Frames of the demo GIF, kept palette-quantised (one byte a pixel) until written."""

    def __init__(self, env: World, model: torch.nn.Module, period: float) -> None:
        self.env, self.model, self.period = env, model, period
        self.frames: list[Image.Image] = []
        self.decoder = has_decoder(model)
        self._mosaic: np.ndarray | None = None

    def add(
        self,
        image: np.ndarray,
        task: Task,
        trail: list[np.ndarray],
        lines: list[str],
        plan: dict[str, Any] | None = None,
        repeat: int = 1,
    ) -> None:
        """One frame: the camera with the plan (VirtualTrajectory fields) drawn on, the goal,
        the decoded virtual states, and ``lines`` of text; shown ``repeat`` periods long."""
        size, world = PANEL, self.env.world_size
        goal_px = overlay.to_pixels(self.env.object_pose(task.goal_state[None]), world, size)[0]
        ring = self.env.success_radius * size / world
        camera = overlay.upscale(image, size)
        overlay.draw_path(
            camera, overlay.to_pixels(np.array(trail), world, size), overlay.TRAIL_COLOR
        )
        overlay.draw_ring(camera, goal_px, ring, overlay.GOAL_COLOR)
        for outline in self.env.outlines(task.goal_state).values():  # Push-T's goal pose
            closed = np.concatenate([outline, outline[:1]])
            overlay.draw_path(camera, overlay.to_pixels(closed, world, size), overlay.GOAL_COLOR)
        if plan is not None and plan["positions"] is not None:
            rollout = overlay.to_pixels(plan["rollout_positions"], world, size)
            overlay.draw_path(camera, rollout, overlay.ROLLOUT_COLOR, 2)
            states = overlay.to_pixels(plan["positions"], world, size)
            overlay.draw_dots(camera, states, overlay.time_colors(len(states)))
        goal = overlay.draw_ring(
            overlay.upscale(task.goal_image, size), goal_px, ring, overlay.GOAL_COLOR
        )
        rows = [[overlay.caption(camera, "camera + plan"), overlay.caption(goal, "goal image")]]
        if self.decoder and plan is not None:
            self._mosaic = decode_mosaic(
                self.model, plan["virtual_states"], DECODED_STATES, DECODED_STATES, gap=0
            )
            rows.append([overlay.caption(self._mosaic, "virtual states, decoded: s_0 ... goal")])
        elif self._mosaic is not None:  # a tick without a plan: the last one, faded
            faded = (self._mosaic // 3 + 170).astype(np.uint8)
            rows.append([overlay.caption(faded, "virtual states, decoded: last plan")])
        rows.append([overlay.text_bar(WIDTH, [*lines, LEGEND])])
        self.frames.extend([_quantize(Image.fromarray(overlay.stack(rows, GAP)))] * repeat)

    def save(self, path: Path) -> None:
        """Write the GIF (one frame per control period, looping) atomically."""
        size = max(f.size[0] for f in self.frames), max(f.size[1] for f in self.frames)
        for i, frame in enumerate(self.frames):
            if frame.size != size:  # a frame before the first plan has no decoded states
                canvas = Image.new("RGB", size, "white")
                canvas.paste(frame.convert("RGB"))
                self.frames[i] = _quantize(canvas)
        tmp = path.with_name(f".{path.name}.tmp")
        self.frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=self.frames[1:],
            duration=round(1000 * self.period),
            loop=0,
        )
        tmp.replace(path)


def _quantize(frame: Image.Image) -> Image.Image:
    """An RGB PIL image to 8-bit palette, without dithering (flat colours, crisp lines)."""
    return frame.quantize(colors=255, dither=Image.Dither.NONE)


def plot_ticks(
    records: list[TickRecord], episodes: list[Episode], title: str, period: float, path: Path
) -> None:
    """Solve time, iterations and cost per tick (planning ticks only), episodes shaded apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = np.array([r.status == "OK" for r in records], dtype=bool)
    values = {
        "solve time (ms)": np.array([1000 * r.solve_time for r in records]),
        "iterations": np.array([r.iterations for r in records], dtype=float),
        "cost (latent MSE)": np.array([r.cost for r in records]),
    }
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    start = 0
    for ep in episodes:
        end = start + ep.ticks
        x = np.arange(start, end)
        for ax, v in zip(axes, values.values(), strict=True):
            ax.plot(
                x,
                np.where(ok[start:end], v[start:end], np.nan),
                ".-",
                ms=3,
                lw=0.8,
                color="C0" if ep.success else "C3",
            )
            if ep.episode % 2:
                ax.axvspan(start - 0.5, end - 0.5, color="0.93", zorder=0)
        mark = "✓" if ep.success else "✗"
        axes[0].annotate(
            f"ep {ep.episode + 1} {mark}",
            (start, 1.02),
            xycoords=("data", "axes fraction"),
            fontsize=8,
        )
        start = end
    for ax, label in zip(axes, values, strict=True):
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].axhline(1000 * period, color="k", ls="--", lw=1, label="control period")
    axes[0].legend(loc="upper right", fontsize=8)
    for ax, v in ((axes[0], values["solve time (ms)"]), (axes[2], values["cost (latent MSE)"])):
        if (v[ok] > 0).any():
            ax.set_yscale("log")
    axes[-1].set_xlabel("control tick (blue: successful episode, red: failed)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


@dataclass
class TickRecord:
    """One control tick as the plot and the summary need it."""

    episode: int
    status: str
    solve_time: float
    tick_time: float
    iterations: int
    cost: float


@dataclass
class Episode:
    """One episode's task and outcome."""

    episode: int
    seed: int
    success: bool = False
    ticks: int = 0
    max_ticks: int = 0
    optimal_steps: int = 0
    non_greedy: bool = False
    final_distance: float = math.nan
    deadline_misses: int | None = None  # None: --fast, whose simulated clock has no deadline
    end: str = ""


def summarize(
    env: str,
    realtime: bool,
    runtime: PlannerRuntime,
    episodes: list[Episode],
    records: list[TickRecord],
    wall: float,
) -> dict[str, Any]:
    """summary.json's contents: per-episode outcomes, timing percentiles, params, versions."""
    ok = [r for r in records if r.status == "OK"]

    def ms(values: list[float]) -> dict[str, float | None]:
        if not values:
            return {"p50": None, "p90": None, "p99": None, "max": None}
        q = np.percentile(1000 * np.asarray(values), [50, 90, 99])
        return {"p50": q[0], "p90": q[1], "p99": q[2], "max": 1000 * max(values)}

    return _plain(
        {
            "env": env,
            "mode": "realtime" if realtime else "fast",
            "success_rate": sum(e.success for e in episodes) / max(len(episodes), 1),
            "episodes": [asdict(e) for e in episodes],
            "ticks": len(records),
            "deadline_misses": (sum(e.deadline_misses for e in episodes) if realtime else None),
            "solve_time_ms": ms([r.solve_time for r in ok]),
            "tick_time_ms": ms([r.tick_time for r in records]),
            "iterations_mean": float(np.mean([r.iterations for r in ok])) if ok else None,
            "wall_time_s": wall,
            "params": runtime.params,
            "device": str(runtime.device),
            "versions": {
                "grasp_ros": grasp_ros.__version__,
                "python": platform.python_version(),
                **{name: metadata.version(name) for name in ("torch", "numpy", "rosbags")},
            },
        }
    )


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, NaN to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
