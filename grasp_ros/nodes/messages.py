"""rclpy messages from the plain values the ROS-free modules compute.

Every field value comes from `grasp_ros.control` (outputs, cmd_vel, diagnostics) or
`grasp_ros.viz`, the functions the offline tools write bags with, so a live topic and a recorded
one carry the same numbers. Generated message classes check types strictly (a ``float32`` field
takes a Python ``float``, a ``float32[]`` an ``array.array('f')``), hence the conversions here.

Camera images go through cv_bridge where it is installed, else through `grasp_ros.io.images`,
which follows cv_bridge's conversion rules exactly (PyPI has no cv_bridge for ROS 2).
"""

from __future__ import annotations

import array
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseStamped, Twist
from nav_msgs.msg import Path
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from grasp_ros.control.diagnostics import Diagnostic
from grasp_ros.io import images
from grasp_ros.msg import ActionCommand, PlannerStatus, VirtualTrajectory
from grasp_ros.viz import MarkerSpec

try:
    from cv_bridge import CvBridge
except ImportError:
    CvBridge = None

#: How a camera image becomes RGB: cv_bridge where installed, else its rules in io.images.
_BRIDGE = CvBridge() if CvBridge is not None else None
#: What a camera image that cannot become RGB raises (CvBridgeError is a TypeError).
IMAGE_ERRORS = (TypeError, ValueError, RuntimeError)

_MARKER_TYPES = {
    "line_strip": Marker.LINE_STRIP,
    "sphere_list": Marker.SPHERE_LIST,
    "sphere": Marker.SPHERE,
    "text": Marker.TEXT_VIEW_FACING,
}


def image_to_rgb(msg: Image) -> np.ndarray:
    """RGB ``uint8 [H, W, 3]`` from a sensor_msgs/Image; one of IMAGE_ERRORS when impossible."""
    if _BRIDGE is not None:
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8")
    return images.raw_image_to_rgb(msg)


def image_msg(rgb: np.ndarray, hdr: Header) -> Image:
    """sensor_msgs/Image (rgb8) from an RGB ``uint8 [H, W, 3]`` array."""
    if _BRIDGE is not None:
        return _BRIDGE.cv2_to_imgmsg(rgb, encoding="rgb8", header=hdr)
    fields = images.rgb_to_image_fields(rgb)
    data = array.array("B", fields.pop("data").tobytes())
    return Image(header=hdr, data=data, **fields)


def time_msg(seconds: float) -> TimeMsg:
    """builtin_interfaces/Time for float seconds (clamped at 0)."""
    return Time(nanoseconds=max(0, round(seconds * 1e9))).to_msg()


def header(stamp: TimeMsg, frame_id: str = "") -> Header:
    return Header(stamp=stamp, frame_id=frame_id)


def f32(values: Any) -> array.array:
    """A ``float32[]`` field value from any array-like."""
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return out


def points(xyz: np.ndarray | None) -> list[Point]:
    """geometry_msgs/Point list from ``[N, 3]`` (or ``[N, 2]``, z = 0) positions."""
    if xyz is None:
        return []
    p = np.asarray(xyz, dtype=np.float64).reshape(len(xyz), -1)
    return [Point(x=r[0], y=r[1], z=r[2] if len(r) > 2 else 0.0) for r in p.tolist()]


def action_msg(fields: Mapping[str, Any], hdr: Header) -> ActionCommand:
    """grasp_ros/ActionCommand from `grasp_ros.control.outputs.action_fields`."""
    return ActionCommand(
        header=hdr,
        action=f32(fields["action"]),
        dt=float(fields["dt"]),
        step_index=int(fields["step_index"]),
        chunk=f32(fields["chunk"]),
    )


def status_msg(fields: Mapping[str, Any], hdr: Header) -> PlannerStatus:
    """grasp_ros/PlannerStatus from `grasp_ros.control.outputs.status_fields`."""
    return PlannerStatus(
        header=hdr,
        status=int(fields["status"]),
        message=str(fields["message"]),
        tick=int(fields["tick"]),
        solve_time=float(fields["solve_time"]),
        iterations=int(fields["iterations"]),
        cost=float(fields["cost"]),
        deadline_misses=int(fields["deadline_misses"]),
        image_age=float(fields["image_age"]),
    )


def trajectory_msg(fields: Mapping[str, Any], hdr: Header) -> VirtualTrajectory:
    """grasp_ros/VirtualTrajectory from `grasp_ros.control.outputs.trajectory_fields`."""
    return VirtualTrajectory(
        header=hdr,
        planner=str(fields["planner"]),
        horizon=len(fields["actions"]),
        latent_shape=array.array("I", [int(d) for d in fields["latent_shape"]]),
        action_dim=int(fields["action_dim"]),
        virtual_states=f32(fields["virtual_states"]),
        rollout=f32(fields["rollout"]),
        actions=f32(fields["actions"]),
        positions=points(fields["positions"]),
        rollout_positions=points(fields["rollout_positions"]),
        cost=float(fields["cost"]),
        iterations=int(fields["iterations"]),
        solve_time=float(fields["solve_time"]),
        warm_started=bool(fields["warm_started"]),
    )


def twist_msg(values: Mapping[str, float]) -> Twist:
    """geometry_msgs/Twist from `grasp_ros.control.cmd_vel.twist_from_action`."""
    twist = Twist()
    twist.linear.x, twist.linear.y = values["linear_x"], values["linear_y"]
    twist.angular.z = values["angular_z"]
    return twist


def diagnostic_array(
    diag: Diagnostic, stamp: TimeMsg, name: str, hardware_id: str
) -> DiagnosticArray:
    """diagnostic_msgs/DiagnosticArray holding one status (``level`` is a ``byte`` field)."""
    levels = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)
    status = DiagnosticStatus(
        level=levels[diag.level],
        name=name,
        message=diag.message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in diag.values],
    )
    return DiagnosticArray(header=header(stamp), status=[status])


def marker_array(specs: Iterable[MarkerSpec], hdr: Header) -> MarkerArray:
    """visualization_msgs/MarkerArray from `grasp_ros.viz.trajectory_markers`."""
    markers = []
    for spec in specs:
        m = Marker(header=hdr, ns=spec.ns, id=spec.marker_id, type=_MARKER_TYPES[spec.kind])
        m.action = Marker.ADD
        m.pose.orientation.w = 1.0
        m.scale.x, m.scale.y, m.scale.z = (float(s) for s in spec.scale)
        colors = [ColorRGBA(r=c[0], g=c[1], b=c[2], a=c[3]) for c in spec.colors.tolist()]
        m.color = colors[0]
        if spec.kind in ("line_strip", "sphere_list"):
            m.points = points(spec.points)
            if len(colors) == len(spec.points):
                m.colors = colors
        else:
            m.pose.position = points(spec.points[:1])[0]
            m.text = spec.text
        markers.append(m)
    return MarkerArray(markers=markers)


def path_msg(xyz: np.ndarray, hdr: Header) -> Path:
    """nav_msgs/Path through ``[N, 3]`` positions, orientation left at identity."""
    return Path(header=hdr, poses=[pose_stamped(p, hdr) for p in xyz])


def pose_stamped(xyz: np.ndarray, hdr: Header, yaw: float = 0.0) -> PoseStamped:
    """A PoseStamped at ``xyz``, turned by ``yaw`` about z."""
    pose = Pose()
    pose.position = points(np.asarray(xyz)[None])[0]
    pose.orientation.z, pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return PoseStamped(header=hdr, pose=pose)
