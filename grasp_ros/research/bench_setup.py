"""What every benchmark shares: which world and model it runs, and where it was measured.

The open-loop benchmark (:mod:`~grasp_ros.research.bench`), the closed-loop one
(:mod:`~grasp_ros.research.closed_loop`) and the GPU one read their options' lists, find a
world's model and reference environment, and record the machine, its load and the code version
the same way. The lookup is generic: any environment in :data:`grasp_ros.envs.ENVS` whose model
names it (``model.env_name``) runs, shipped or given as ``--model ENV=SPEC``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

import grasp_ros
from grasp_ros.models import env_for_model, list_shipped_models, load_world_model
from grasp_ros.models.loader import CHECKPOINT_DIR


def csv_type(kind: type, choices: list[str] | None = None) -> Any:
    """argparse type for a comma-separated list of ``kind`` (optionally from ``choices``)."""

    def parse(text: str) -> list[Any]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        try:
            values = [kind(s) for s in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a list of {kind.__name__}s"
            ) from None
        bad = [v for v in values if choices is not None and v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return values

    return parse


def model_override(text: str) -> tuple[str, str]:
    env, sep, spec = text.partition("=")
    if not sep or not env or not spec:
        raise argparse.ArgumentTypeError(f"expected ENV=SPEC (e.g. wall=out/wall.pt), got {text!r}")
    return env, spec


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured: CPU, cores, load (other work skews timings), GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cores = os.cpu_count()
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": cores,
        "gpu": gpu,
        "load_avg_1min_at_start": load,
        "torch_threads": torch.get_num_threads(),
        "summary": f"{cpu}, {cores} cores" + (f", {gpu}" if gpu else ""),
    }


def versions() -> dict[str, Any]:
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(grasp_ros.__file__).parent,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "grasp_ros": grasp_ros.__version__,
        "git_commit": commit,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def model_info(spec: str, model: Any) -> dict[str, Any]:
    """The model's spec, class and checkpoint hash: which weights produced the numbers."""
    path = CHECKPOINT_DIR / f"{spec}.pt" if spec in list_shipped_models() else Path(spec)
    info: dict[str, Any] = {"spec": spec, "class": type(model).__name__}
    if path.is_file():
        info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return info


def load_model(env_name: str, spec: str, device: torch.device) -> tuple[Any, Any]:
    """The world model for ``env_name`` and the reference world it was trained in."""
    model = load_world_model(spec, device=device)
    trained_in = getattr(model, "env_name", "")
    if trained_in != env_name:
        raise ValueError(
            f"model {spec!r} was not trained in {env_name!r} (its env_name is "
            f"{trained_in!r}); pass --model {env_name}=SPEC"
        )
    return model, env_for_model(model)
