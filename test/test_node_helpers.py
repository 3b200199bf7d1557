"""What the nodes declare and publish, checked without ROS (grasp_ros.control.node_params,
cmd_vel, diagnostics).

The schema, config/planner.yaml and the parameter descriptors must agree; the rclpy side only
copies these values into ParameterDescriptor and message objects.
"""

from __future__ import annotations

import array
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from grasp_ros.control import PlannerRuntime, cmd_vel, diagnostics
from grasp_ros.control import node_params as P
from grasp_ros.control.outputs import plan_stamp
from grasp_ros.control.params import SCHEMA, load_params_file
from grasp_ros.control.runtime import Command, RuntimeStats, Status
from grasp_ros.models.analytic import PointWallModel

ROOT = Path(__file__).resolve().parents[1]


# -- parameter declarations -------------------------------------------------------------------
def test_declarations_match_the_schema_and_config_yaml():
    decls = {d.name: d for d in P.declarations(SCHEMA.values())}
    assert list(decls) == list(SCHEMA)
    yaml_values = load_params_file(ROOT / "config" / "planner.yaml")
    assert set(yaml_values) == set(decls)
    for name, decl in decls.items():
        spec = SCHEMA[name]
        assert decl.description == spec.description
        assert spec.check(yaml_values[name]) == decl.default == spec.default
        assert decl.ros_type == P.ROS_TYPES[spec.type]
        assert decl.read_only == spec.read_only


def test_declarations_carry_ranges_choices_and_read_only():
    decls = {d.name: d for d in P.declarations(SCHEMA.values())}
    assert decls["horizon"].integer_range == (1, 1000) and decls["horizon"].float_range is None
    assert decls["control_rate"].float_range == (0.1, 1000.0)
    assert decls["control_rate"].integer_range is None
    assert decls["cmd_vel.angular_z"].integer_range == (-1, 64)
    for choice in ("grasp", "gd", "cem", "collocation"):
        assert choice in decls["planner"].additional_constraints
    assert "rebuilds the planner" in decls["horizon"].additional_constraints
    assert "rebuilds" not in decls["control_rate"].additional_constraints
    assert {n for n, d in decls.items() if d.read_only} == {
        "model",
        "device",
        "cpu_threads",
        "compile",
        "matmul_precision",
        "cmd_vel.stamped",
    }
    stop = decls["stop_action"]
    assert stop.ros_type == "double_array" and stop.dynamic_typing and stop.default == []
    assert not any(d.dynamic_typing for n, d in decls.items() if n != "stop_action")
    assert all(d.integer_range or d.float_range for d in decls.values() if d.ros_type == "integer")


@pytest.mark.parametrize("schema", [P.SIM_SCHEMA, P.VISUALIZER_SCHEMA, P.PLANNER_NODE_SCHEMA])
def test_node_schemas_have_valid_defaults_and_descriptions(schema):
    for decl, spec in zip(P.declarations(schema.values()), schema.values(), strict=True):
        assert spec.check(spec.default) == decl.default
        assert decl.description
    assert P.SIM_SCHEMA["cmd_vel.scale"] is SCHEMA["cmd_vel.scale"]


def test_from_ros_turns_rclpy_values_into_schema_values():
    stop = SCHEMA["stop_action"]
    assert P.from_ros(stop, None) == []  # a YAML [] arrives unset
    assert P.from_ros(stop, array.array("d", [0.5, -1.0])) == [0.5, -1.0]
    assert P.from_ros(stop, [1, 2]) == [1.0, 2.0]
    assert P.from_ros(SCHEMA["control_rate"], 20) == 20.0
    with pytest.raises(ValueError, match="list of numbers"):
        P.from_ros(stop, "0, 0")
    with pytest.raises(ValueError, match="not one of"):
        P.from_ros(SCHEMA["planner"], "mppi")


def test_ros_changes_checks_known_names_and_leaves_the_rest_to_rclpy():
    changes = P.ros_changes([("horizon", 12), ("use_sim_time", True), ("grasp.goal_weight", 2)])
    assert changes == {"horizon": 12, "grasp.goal_weight": 2.0}
    with pytest.raises(ValueError, match=r"outside \[1, 1000\]"):
        P.ros_changes([("horizon", 5000)])
    with pytest.raises(ValueError, match="cannot be unset"):
        P.ros_changes([("stop_action", None)])
    assert P.ros_changes([("scale", 2.0)], P.VISUALIZER_SCHEMA) == {"scale": 2.0}


# -- cmd_vel ------------------------------------------------------------------------------------
def _twist_params(**over):
    params = {
        f"cmd_vel.{k}": SCHEMA[f"cmd_vel.{k}"].default
        for k in (*cmd_vel.TWIST_FIELDS, "scale", "image_axes")
    }
    params.update({f"cmd_vel.{k}": v for k, v in over.items()})
    return params


def test_twist_from_action_maps_dimensions_and_scales():
    action = np.array([0.5, -0.25, 0.8], np.float32)
    plain = _twist_params(image_axes=False)
    assert cmd_vel.twist_from_action(action, plain) == {
        "linear_x": 0.5,
        "linear_y": -0.25,
        "angular_z": 0.0,
    }
    mapped = cmd_vel.twist_from_action(
        action, _twist_params(linear_y=-1, angular_z=2, scale=2.0, image_axes=False)
    )
    assert mapped == pytest.approx({"linear_x": 1.0, "linear_y": 0.0, "angular_z": 1.6})
    # Image axes (the default, the reference worlds): y down the image is -y in REP-103.
    image = cmd_vel.twist_from_action(action, _twist_params(angular_z=2))
    assert image == pytest.approx({"linear_x": 0.5, "linear_y": 0.25, "angular_z": -0.8})


def test_action_from_twist_inverts_the_mapping():
    params = _twist_params(linear_y=-1, angular_z=1, scale=0.5)
    action = np.array([0.4, -0.6], np.float32)
    for axes in (True, False):
        flipped = {**params, "cmd_vel.image_axes": axes}
        back = cmd_vel.action_from_twist(cmd_vel.twist_from_action(action, flipped), flipped, 2)
        np.testing.assert_allclose(back, action)
    only_x = cmd_vel.action_from_twist(
        {"linear_x": 1.0, "linear_y": 9.0, "angular_z": 0.0}, params, 3
    )
    np.testing.assert_allclose(only_x, [2.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="scale is 0"):
        cmd_vel.action_from_twist(
            {"linear_x": 1.0, "linear_y": 0, "angular_z": 0}, _twist_params(scale=0.0), 2
        )


def test_twist_mapping_must_fit_the_action_dimension():
    cmd_vel.check_twist_mapping(_twist_params(), 2)
    with pytest.raises(ValueError, match=r"cmd_vel.linear_y=1 .* use -1"):
        cmd_vel.check_twist_mapping(_twist_params(), 1)


# -- diagnostics, stamps ------------------------------------------------------------------------
def _cmd(status: Status, message: str = "", age: float = 0.05) -> Command:
    return Command(
        action=np.zeros(2, np.float32),
        status=status,
        plan=None,
        solve_time=0.02,
        actions=np.zeros((1, 2), np.float32),
        message=message,
        stamp=10.0,
        cost=0.5,
        image_age=age,
    )


def _diag(cmd: Command, rate: float = 10.0, new_misses: int = 0) -> diagnostics.Diagnostic:
    summary = RuntimeStats().summary()
    return diagnostics.diagnostic(
        cmd,
        summary,
        rate=rate,
        control_rate=10.0,
        new_misses=new_misses,
        device="cpu",
        planner="grasp",
    )


def test_diagnostic_levels_follow_the_status_rate_and_misses():
    assert _diag(_cmd(Status.OK)).level == diagnostics.OK
    assert _diag(_cmd(Status.GOAL_REACHED, "goal reached")).level == diagnostics.OK
    for status in (Status.NO_IMAGE, Status.NO_GOAL):
        assert _diag(_cmd(status, "waiting")).level == diagnostics.WARN
    for status in (Status.STALE_IMAGE, Status.PLANNER_ERROR):
        diag = _diag(_cmd(status, "camera image is 2 s old"))
        assert diag.level == diagnostics.ERROR and diag.message == "camera image is 2 s old"
    misses = _diag(_cmd(Status.OK), new_misses=3)
    assert misses.level == diagnostics.WARN and "3 deadline misses" in misses.message
    slow = _diag(_cmd(Status.OK), rate=6.0)
    assert slow.level == diagnostics.WARN and "6.0 Hz" in slow.message


def test_diagnostic_values_name_rate_solve_time_misses_age_and_device():
    values = dict(_diag(_cmd(Status.OK, age=math.nan), rate=9.87).values)
    for key in ("rate achieved (Hz)", "solve time p50 (s)", "deadline misses", "image age (s)"):
        assert key in values
    assert values["rate achieved (Hz)"] == "9.87"
    assert values["device"] == "cpu" and values["status"] == "OK"
    assert values["image age (s)"] == "n/a" and values["solve time p50 (s)"] == "n/a"
    assert all(isinstance(v, str) for v in values.values())


def test_plan_stamp_is_the_camera_image_stamp():
    assert plan_stamp(_cmd(Status.OK, age=0.25)) == pytest.approx(9.75)
    assert plan_stamp(_cmd(Status.NO_IMAGE, age=math.nan)) == 10.0


def test_a_real_tick_gives_what_the_helpers_expect():
    """A runtime tick on the analytic world feeds plan_stamp and diagnostic consistently."""
    model = PointWallModel()
    runtime = PlannerRuntime(
        model, {"budget": "iterations", "iterations": 2, "cold_start_iterations": 5, "horizon": 6}
    )
    render = model.render(torch.tensor([[-0.5, 0.2], [0.5, -0.2]]), 32)
    images = (render.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    runtime.on_goal(images[1])
    runtime.on_image(images[0], stamp=1.0)
    cmd = runtime.tick(1.1)
    assert cmd.status is Status.OK and cmd.plan is not None
    assert plan_stamp(cmd) == pytest.approx(1.0)
    diag = diagnostics.diagnostic(
        cmd,
        runtime.stats.summary(),
        rate=10.0,
        control_rate=runtime.params["control_rate"],
        new_misses=0,
        device=str(runtime.device),
        planner=runtime.params["planner"],
    )
    assert dict(diag.values)["iterations mean"] == "5"
