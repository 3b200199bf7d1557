# The environment that runs this checkout's nodes on the ROS 2 Jazzy wheels of `make test`.
# Source it from the checkout's root, after `make test` or `make ros-build` built build/ros:
#
#   . test/ros/jazzy/env.sh
#   python scripts/planner_node --ros-args -p model:=wall
#
# The wheels install into the venv prefix, so the venv is an ament prefix like /opt/ros/jazzy;
# the package built from this checkout is a second one. The sources come first on PYTHONPATH,
# the generated grasp_ros.msg is found beside them in the build (grasp_ros/__init__.py).
_grasp_venv=$(pwd)/.venv
_grasp_ros=$(pwd)/build/ros/install
_grasp_py=$("$_grasp_venv/bin/python" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')
export AMENT_PREFIX_PATH="$_grasp_ros:$_grasp_venv"
export CMAKE_PREFIX_PATH="$_grasp_ros:$_grasp_venv"
export LD_LIBRARY_PATH="$_grasp_ros/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$(pwd):$_grasp_ros/lib/$_grasp_py/site-packages"
export PATH="$_grasp_venv/bin:$PATH"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# Discovery and traffic stay on this machine.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
unset _grasp_venv _grasp_ros _grasp_py
