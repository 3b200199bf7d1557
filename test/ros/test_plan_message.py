"""The plan message stays small for a DINO-WM-size model unless its latents are asked for.

planner_node plans with 256 x 384 patch-token latents (`patch_sized_model`: the shape of
DINO-WM's, cheap dynamics) and publishes ``plan`` to the test: by default the message holds
actions, positions, costs and metadata only, a few kB on the wire; with ``plan_latents`` set
live it carries both latent sequences, (T + 1) x 256 x 384 floats each. Sizes are CDR bytes as
rclpy serialises the message for DDS. (bench/results/plan-message-size.md has the figures for
the shipped models and at T = 30.)
"""

from __future__ import annotations

from launcher import require_ros
from scenes import PLANNER, image_msg, rgb

require_ros()

from grasp_ros.msg import VirtualTrajectory  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from grasp_ros.nodes import ros  # noqa: E402

HORIZON = 5
#: Few and cheap iterations: a tick plans over [population, T, 256, 384] tensors on a CPU.
PATCH = {
    **PLANNER,
    "model": "patch_sized_model:PatchSizedModel",
    "control_rate": 2.0,
    "horizon": HORIZON,
    "iterations": 1,
    "cold_start_iterations": 2,
    "grasp.population": 2,
    "grasp.init_samples": 2,
    "grasp.reseed": 0,
}
#: The default message: T actions of 2, 2 (T + 1) points, a header and a few numbers.
LEAN_BYTES = 2048


def test_the_default_plan_of_a_patch_token_model_is_small(probe, launcher):
    plans = probe.collect(VirtualTrajectory, "plan", 10)
    start, goal = rgb((-0.5, 0.2), (0.5, -0.2))
    camera = probe.node.create_publisher(Image, "image", ros.CAMERA_QOS)
    goal_pub = probe.node.create_publisher(Image, "goal_image", ros.LATCHED_QOS)
    goal_pub.publish(image_msg(goal, 0.0))
    now = lambda: probe.node.get_clock().now().nanoseconds * 1e-9  # noqa: E731
    probe.node.create_timer(0.1, lambda: camera.publish(image_msg(start, now())))
    launcher.start("planner_node", name="planner_node", params=PATCH)
    assert probe.spin_until(lambda: plans, 120.0), "no plan"

    lean = plans[-1][1]
    assert list(lean.latent_shape) == [256, 384] and lean.horizon == HORIZON
    assert len(lean.virtual_states) == len(lean.rollout) == 0
    assert len(lean.actions) == 2 * HORIZON and len(lean.positions) == HORIZON + 1
    size = len(serialize_message(lean))
    assert size < LEAN_BYTES, f"the default plan message is {size} bytes"

    request = SetParameters.Request(
        parameters=[Parameter("plan_latents", value=True).to_parameter_msg()]
    )
    (result,) = probe.call(SetParameters, "planner_node/set_parameters", request).results
    assert result.successful, result.reason
    since = len(plans)
    full = lambda: [m for _, m in plans[since:] if len(m.virtual_states)]  # noqa: E731
    assert probe.spin_until(full, 60.0), "no plan with latents after plan_latents was set"
    latents = (HORIZON + 1) * 256 * 384
    msg = full()[0]
    assert len(msg.virtual_states) == len(msg.rollout) == latents
    assert len(serialize_message(msg)) > 2 * 4 * latents
