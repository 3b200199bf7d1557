"""The simulator's side of the topic contract: names, frames and messages, without ROS.

The simulator (``grasp-ros-record-sim`` in bags, the sim node live) publishes the camera, the
goal, and ground truth that a real robot would not have: the agent's pose, the pose of what
the task is about (``sim/object_pose``: the agent again in a point world, Push-T's block), the
task, and the actions the agent actually executed. The replay tool reads the same topics back
to score a recorded run. Both ends build and parse the messages here, so they cannot drift
apart.

Executed actions travel on ``sim/executed_action``, never on ``action``, so a replayed
simulator bag never clashes with the planner's own ``action`` topic.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from grasp_ros.envs import Task, World
from grasp_ros.io import frames
from grasp_ros.io.messages import make_header, typestore

CAMERA_TOPIC = "camera/image_raw"
GOAL_TOPIC = "goal_image"
POSE_TOPIC = "sim/pose"
OBJECT_POSE_TOPIC = "sim/object_pose"
MARKERS_TOPIC = "sim/markers"  # rviz only, never recorded
TASK_TOPIC = "sim/task"
EXECUTED_ACTION_TOPIC = "sim/executed_action"
#: Published once and latched (transient local): a subscriber that starts late still gets them.
LATCHED_TOPICS = frozenset({GOAL_TOPIC, TASK_TOPIC})
CAMERA_FRAME = "camera"
MAP_FRAME = "map"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
STRING = "std_msgs/msg/String"


@dataclass(frozen=True)
class SimTask:
    """What ``sim/task`` holds: enough to rebuild the world and judge success offline."""

    env: str
    seed: int | None
    horizon: int
    start_state: np.ndarray
    goal_state: np.ndarray
    optimal_steps: int
    image_size: int
    #: Metres per world unit of the pose topics, which are then REP-103 map coordinates
    #: (`grasp_ros.io.frames`: the live sim_node); None: world units (the offline tools' bags).
    world_scale: float | None = None

    def world_pose(self, pose: np.ndarray) -> np.ndarray:
        """A pose topic's ``[x, y]`` or ``[x, y, yaw]`` in the world's own units and axes."""
        pose = np.asarray(pose, dtype=np.float64)
        if self.world_scale is None:
            return pose
        xy = frames.from_map(pose[:2], self.world_scale)
        return np.concatenate([xy, -pose[2:]])

    def make_env(self) -> World:
        """The reference world this task was drawn in, at the recorded image size."""
        from grasp_ros.envs import make_env

        return make_env(self.env, image_size=self.image_size)


def task_json(env: World, task: Task, world_scale: float | None = None) -> str:
    """The JSON text published on ``sim/task`` for ``task`` drawn in ``env`` (``world_scale``:
    the pose topics are map metres, see :attr:`SimTask.world_scale`)."""
    data = {
        "env": env.name,
        "seed": task.seed,
        "horizon": int(task.horizon),
        "start_state": [float(v) for v in task.start_state],
        "goal_state": [float(v) for v in task.goal_state],
        "optimal_steps": int(task.optimal_steps),
        "image_size": int(env.image_size),
    }
    if world_scale is not None:
        data["world_scale"] = float(world_scale)
    return json.dumps(data)


def parse_task(text: str) -> SimTask:
    """The task in a ``sim/task`` message's text; ValueError names what is missing or wrong."""
    from grasp_ros.envs import ENVS

    try:
        data = json.loads(text)
        if data["env"] not in ENVS:
            raise ValueError(f"unknown env {data['env']!r}, not one of {sorted(ENVS)}")
        return SimTask(
            env=str(data["env"]),
            seed=None if data.get("seed") is None else int(data["seed"]),
            horizon=int(data["horizon"]),
            start_state=np.asarray(data["start_state"], dtype=np.float64),
            goal_state=np.asarray(data["goal_state"], dtype=np.float64),
            optimal_steps=int(data["optimal_steps"]),
            image_size=int(data.get("image_size", 64)),
            world_scale=None if data.get("world_scale") is None else float(data["world_scale"]),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{TASK_TOPIC} does not hold a task in JSON: {exc}") from exc


def task_msg(env: World, task: Task) -> Any:
    """A std_msgs/String for ``sim/task``."""
    return typestore().types[STRING](data=task_json(env, task))


def pose_msg(state: np.ndarray, stamp_sec: float, frame_id: str = MAP_FRAME) -> Any:
    """A geometry_msgs/PoseStamped at the agent's ``x, y`` (env state units), z = 0, no turn."""
    x, y = (float(v) for v in np.asarray(state, dtype=np.float64)[:2])
    return planar_pose_msg(np.array([x, y, 0.0]), stamp_sec, frame_id)


def planar_pose_msg(pose: np.ndarray, stamp_sec: float, frame_id: str = MAP_FRAME) -> Any:
    """A geometry_msgs/PoseStamped for a planar pose ``(x, y, yaw)`` (``World.object_pose``)."""
    types = typestore().types
    x, y, yaw = (float(v) for v in np.asarray(pose, dtype=np.float64)[:3])
    pose_ = types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=x, y=y, z=0.0),
        orientation=types["geometry_msgs/msg/Quaternion"](
            x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)
        ),
    )
    return types[POSE_STAMPED](header=make_header(stamp_sec, frame_id), pose=pose_)


def pose_xy(msg: Any) -> np.ndarray:
    """``[x, y]`` of a PoseStamped (rosbags or rclpy object)."""
    return np.array([msg.pose.position.x, msg.pose.position.y], dtype=np.float64)


def planar_pose(msg: Any) -> np.ndarray:
    """``[x, y, yaw]`` of a PoseStamped turned about z only (as :func:`planar_pose_msg`)."""
    q = msg.pose.orientation
    yaw = 2 * math.atan2(q.z, q.w)
    return np.array([msg.pose.position.x, msg.pose.position.y, yaw], dtype=np.float64)
