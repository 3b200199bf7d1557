"""Research tooling, apart from what runs on the robot: training, the benchmark, fidelity.

Nothing in planning, models, envs, control, io, nodes or viz imports from here; these modules
stand beside the product and use it (console scripts ``grasp-ros-train`` and
``grasp-ros-bench``; ``python -m grasp_ros.research.gpu_bench`` for the GPU measurement).
"""
