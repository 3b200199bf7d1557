"""Planner settings: documented, range-checked config fields and the one range check.

A planner's knobs are dataclass fields made with :func:`knob`; the parameter schema
(:mod:`grasp_ros.control.params`) reads their metadata to declare ROS parameters, and
:func:`check_value` judges a value the same way wherever it enters.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any


def knob(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A documented, range-checked config field.

    The parameter schema (`grasp_ros.control.params`) reads this metadata to declare ROS
    parameters, so a planner's knobs are described in exactly one place.
    """
    meta = {"help": help, "low": low, "high": high, "choices": choices}
    return field(default=default, metadata=meta)


def check_value(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> None:
    """Raise ValueError unless ``value`` is one of ``choices`` and finite within [low, high].

    The one range check: planner configs (:func:`validate_config`) and the parameter schema
    (``ParamSpec.check``) both use it, so a value is judged the same way wherever it enters.
    A list of numbers (``stop_action``) must be finite element by element.
    """
    if choices and value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")
    if isinstance(value, (list, tuple)):
        if not all(math.isfinite(v) for v in value if isinstance(v, (int, float))):
            raise ValueError(f"{name}={value} is not finite")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ValueError(f"{name}={value} is not finite")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}={value} is outside [{low}, {high}]")


def validate_config(config: Any) -> None:
    """Raise ValueError naming the first knob whose value is outside its documented range."""
    for f in dataclasses.fields(config):
        meta = f.metadata
        check_value(
            f.name, getattr(config, f.name), meta.get("low"), meta.get("high"), meta.get("choices")
        )
