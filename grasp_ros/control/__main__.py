"""``python -m grasp_ros.control > my_params.yaml``: every parameter at its default, described."""

from grasp_ros.control.params import to_yaml

print(to_yaml(), end="")
