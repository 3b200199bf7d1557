"""trajectory_visualizer: a plan (grasp_ros/VirtualTrajectory) drawn for rviz.

Publishes ``~/virtual_trajectory`` (MarkerArray: the virtual states as a strip and spheres by
time step, the serial rollout, the goal, a cost label; `grasp_ros.viz.trajectory_markers`),
``~/rollout_path`` (nav_msgs/Path of the rollout) and, given a ``model`` with ``decode()``,
``~/virtual_states_image`` (the decoded virtual states as one mosaic). The model is loaded only
when a plan carrying latents meets a subscriber to that image, so a default launch (lean plans)
never spends the memory and seconds a world model costs. Positions are those in
the message (REP-103 metres in the plan's frame); a plan without them (a model with no
``project()``) is drawn in the principal axes of its latents, fitted online, which needs the
planner's ``plan_latents``, as the decoded image does (plans carry no latents by default). It
runs apart from the planner, and does nothing at all while nobody subscribes, so visualisation
never slows the control loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nav_msgs.msg import Path
from rclpy.node import Node
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from grasp_ros.control.node_params import VISUALIZER_SCHEMA
from grasp_ros.models import has_decoder, load_world_model
from grasp_ros.msg import VirtualTrajectory
from grasp_ros.nodes import messages as M
from grasp_ros.nodes import ros
from grasp_ros.viz import OnlinePCA, decode_mosaic, trajectory_markers


class TrajectoryVisualizer(Node):
    """Plan in, markers, path and decoded states out (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("trajectory_visualizer")
        self.params = ros.declare(self, VISUALIZER_SCHEMA.values())
        self._decoder: Any = None
        self._decoder_loaded = False
        self._pca = OnlinePCA()
        self._markers_pub = self.create_publisher(MarkerArray, "~/virtual_trajectory", 10)
        self._path_pub = self.create_publisher(Path, "~/rollout_path", 10)
        self._image_pub = self.create_publisher(Image, "~/virtual_states_image", 1)
        self.create_subscription(VirtualTrajectory, "plan", self._on_plan, 10)
        ros.on_set_parameters(self, VISUALIZER_SCHEMA, self.params.update)

    def _on_plan(self, msg: VirtualTrajectory) -> None:
        want_image = bool(self.params["model"]) and self._image_pub.get_subscription_count() > 0
        want_markers = self._markers_pub.get_subscription_count() > 0
        if not (want_image or want_markers or self._path_pub.get_subscription_count() > 0):
            return
        try:
            states, rollout = self._latents(msg)
            states_xyz, rollout_xyz = self._positions(msg, states, rollout)
        except ValueError as exc:
            self.get_logger().warning(f"cannot draw a plan: {exc}", throttle_duration_sec=5.0)
            return
        hdr = M.header(msg.header.stamp, self.params["frame_id"] or msg.header.frame_id)
        scale = self.params["scale"]
        if want_markers:
            markers = trajectory_markers(
                states_xyz * scale,
                rollout_xyz * scale,
                size=self.params["marker_size"],
                planner=msg.planner,
                cost=msg.cost,
                iterations=msg.iterations,
            )
            self._markers_pub.publish(M.marker_array(markers, hdr))
        if self._path_pub.get_subscription_count() > 0:
            self._path_pub.publish(M.path_msg(rollout_xyz * scale, hdr))
        if want_image and states is None:
            self.get_logger().warning(
                "no virtual_states_image: the plans carry no latents (set the planner's "
                "plan_latents to true)",
                throttle_duration_sec=30.0,
            )
        elif want_image and self._model() is not None:
            self._publish_mosaic(states, hdr)

    def _model(self) -> Any:
        """The decoding world model, loaded on first use (None when it has no ``decode()``)."""
        if not self._decoder_loaded:
            self._decoder_loaded = True
            model = load_world_model(self.params["model"], device=self.params["device"])
            if has_decoder(model):
                self._decoder = model
            else:
                self.get_logger().warning(
                    f"model {self.params['model']!r} has no decode(): no virtual_states_image"
                )
        return self._decoder

    def _publish_mosaic(self, states: np.ndarray, hdr: Any) -> None:
        try:
            mosaic = decode_mosaic(
                self._decoder,
                states,
                columns=self.params["mosaic_columns"],
                max_tiles=self.params["mosaic_max_tiles"],
            )
        except ValueError as exc:
            self.get_logger().warning(f"no virtual_states_image: {exc}", throttle_duration_sec=10.0)
            return
        self._image_pub.publish(M.image_msg(mosaic, hdr))

    @staticmethod
    def _latents(msg: VirtualTrajectory) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The plan's latents ``[T+1, *latent_shape]`` twice, or None twice for a lean plan."""
        if len(msg.virtual_states) == 0 and len(msg.rollout) == 0:
            return None, None
        shape = (msg.horizon + 1, *(int(d) for d in msg.latent_shape))
        try:
            states = np.asarray(msg.virtual_states, dtype=np.float32).reshape(shape)
            rollout = np.asarray(msg.rollout, dtype=np.float32).reshape(shape)
        except ValueError as exc:
            raise ValueError(f"its latents do not fit horizon + 1 and latent_shape: {exc}") from exc
        return states, rollout

    def _positions(
        self, msg: VirtualTrajectory, states: np.ndarray | None, rollout: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        points = msg.horizon + 1
        if len(msg.positions) == points and len(msg.rollout_positions) == points:
            return _xyz(msg.positions), _xyz(msg.rollout_positions)
        if states is None:
            raise ValueError(
                "it has neither positions nor latents (set the planner's plan_latents to draw "
                "it in the principal axes of its latents)"
            )
        self._pca.update(np.concatenate([states, rollout]))
        return self._pca.project(states), self._pca.project(rollout)


def _xyz(points: Any) -> np.ndarray:
    return np.array([[p.x, p.y, p.z] for p in points], dtype=np.float64)


def main(args: list[str] | None = None) -> int:
    return ros.run(TrajectoryVisualizer, "trajectory_visualizer", args)


if __name__ == "__main__":
    raise SystemExit(main())
