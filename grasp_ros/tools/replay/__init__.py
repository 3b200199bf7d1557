"""grasp-ros-replay: run the planner over a recorded bag, offline, exactly as the node would.

Robotics users test a planner on their own logs before it drives. This tool feeds a bag's
camera and goal images through the same :class:`PlannerRuntime` the node uses, on bag time:

- Ticks run at the configured ``control_rate`` in bag time, from the bag's first message to
  its last. Before each tick every message received up to the tick is fed in bag order; the
  runtime keeps only the newest image and judges its age (header stamp to tick) with its
  watchdog, as the node does with ``ros2 bag play --clock``.
- Deterministic by default: the runtime's fixed-iterations budget never reads the clock, so
  the same bag, parameters and seed give byte-identical actions on any machine.
  ``--realtime-budget`` uses the robot's wall-clock deadline instead.
- The output bag (MCAP) holds every input topic, copied byte for byte with its definition and
  offered QoS (custom types included), plus the planner's ``action``, ``plan`` and
  ``status`` in the package's own message definitions, so Foxglove and ``ros2 bag`` can open
  it; it is written atomically and never over an existing path unless asked. The input is
  only ever read.
- Damaged input is handled, not crashed on: images that do not convert and messages that do
  not deserialise are skipped and counted; a truncated bag is read up to where it breaks (MCAP
  files that rosbags cannot open are scanned record by record) and the report says where
  reading stopped.

Reads rosbag2 directories, single ``.mcap``/``.db3`` files and ROS 1 ``.bag`` files (converted
to ROS 2 on the wire) through :func:`grasp_ros.io.bag_source.open_bag`.
"""

from grasp_ros.tools.replay.cli import main, read_image_file
from grasp_ros.tools.replay.loop import ReplayResult, replay

__all__ = ["ReplayResult", "main", "read_image_file", "replay"]
