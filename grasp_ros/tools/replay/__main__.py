"""``python -m grasp_ros.tools.replay``: the same as ``grasp-ros-replay``."""

import sys

from grasp_ros.tools.replay.cli import main

sys.exit(main())
