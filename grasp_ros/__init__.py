"""grasp_ros: world-model planning with GRASP for ROS 2.

The subpackages ``planning``, ``models``, ``envs``, ``control``, ``io`` and ``tools`` are
ROS-free (torch/numpy only); only ``grasp_ros.nodes`` imports rclpy.
"""

__version__ = "0.1.0"
