"""Planner parameters from a command line: ``--params YAML`` and repeatable ``-p NAME=VALUE``.

The offline tools (``grasp-ros-replay``, ``grasp-ros-record-sim``) configure the planner as the
node does, from the same schema and the same ROS 2 parameters file, so a file that tunes the
robot tunes the replay. Everything is validated against :data:`grasp_ros.control.params.SCHEMA`
before a tool starts work, so a misspelt name or a bad value is one clear error line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from grasp_ros.control import params as schema


@dataclass
class ParamOptions:
    """The options of a tool that configures the planner: ``--params`` and ``-p``.

    A tool's options dataclass (:mod:`grasp_ros.cli`) derives from this one, and its parser
    gets the two arguments from :func:`add_param_arguments`.
    """

    params: str | None = None
    param: list[str] = field(default_factory=list)

    def planner_params(self) -> dict[str, Any]:
        """The validated parameters these options give (see :func:`params_from_cli`)."""
        return params_from_cli(self.params, self.param)


def add_param_arguments(parser: argparse.ArgumentParser) -> None:
    """``--params FILE`` and repeatable ``-p NAME=VALUE``, for :func:`params_from_cli`."""
    parser.add_argument(
        "--params",
        metavar="YAML",
        help="ROS 2 parameters file, e.g. config/planner.yaml (default: every parameter at "
        "its default)",
    )
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one parameter (YAML value), e.g. -p seed=3 -p grasp.goal_weight=0.5 "
        "-p model=path/to/model.pt; repeatable",
    )


def params_from_cli(path: str | None, overrides: Sequence[str]) -> dict[str, Any]:
    """Flat parameters: the schema defaults, then the file, then the ``NAME=VALUE`` overrides.

    Raises:
        ParamsError: the file is missing or malformed, an override is malformed, or a name
            is unknown or a value invalid.
    """
    values = schema.defaults()
    if path:
        values.update(schema.validate(schema.load_params_file(path)))
    for item in overrides:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise schema.ParamsError(f"-p {item!r}: expected NAME=VALUE, e.g. -p horizon=20")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise schema.ParamsError(
                f"-p {item!r}: the value is not valid YAML: {schema.describe_yaml_error(exc)}"
            ) from None
        values.update(schema.validate({name.strip(): value}))
    return values
