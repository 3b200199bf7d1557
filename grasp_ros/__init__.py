"""grasp_ros: world-model planning with GRASP for ROS 2.

The subpackages ``planning``, ``models``, ``envs``, ``control``, ``io`` and ``tools`` are
ROS-free (torch/numpy only); only ``grasp_ros.nodes`` imports rclpy.
"""

from pkgutil import extend_path

# The generated half of the package (grasp_ros.msg and its type-support libraries) may sit in
# another directory of sys.path than these sources: a colcon install keeps both in one, but
# `make test` builds the messages into build/ros/ and runs the sources from the checkout.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
