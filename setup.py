"""pip install for the ROS-free core, the shipped models and the command-line tools.

Inside a ROS 2 workspace the package is built by colcon through CMakeLists.txt instead; both
read the same source tree.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="grasp_ros",
    version="0.1.0",
    description="GRASP world-model planning (Psenka et al., 2026) as a ROS 2 package",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["grasp_ros", "grasp_ros.*"]),
    package_data={"grasp_ros.models": ["checkpoints/*.pt", "checkpoints/*.md"]},
    data_files=[
        ("share/grasp_ros/msg", sorted(str(p) for p in (HERE / "msg").glob("*.msg"))),
        ("share/grasp_ros/config", sorted(str(p) for p in (HERE / "config").glob("*.yaml"))),
    ],
    install_requires=[
        # Any torch >= 2.2 works; the Makefile installs the CPU build first so pip keeps it.
        "torch>=2.2",
        "numpy>=1.23",
        "opencv-python-headless>=4.6",
        # rosbags and mcap: grasp_ros.io uses modules they do not export (rosbags' QoS parser,
        # mcap's stream reader internals), so a new major version is checked before it is allowed.
        "rosbags>=0.11,<0.12",
        "mcap>=1.2,<2",
        "matplotlib>=3.5",
        "pillow>=9",
        "tqdm>=4.60",
        "pyyaml>=5.4",
        # pymunk: the Push-T world's physics (grasp_ros.envs.pusht); 6.6-7.x share the API used.
        "pymunk>=6.6,<8",
    ],
    # ruff pinned: `make lint` checks formatting too, and a new ruff may format differently.
    extras_require={"test": ["pytest>=7", "ruff==0.17.6"]},
    entry_points={
        "console_scripts": [
            "grasp-ros-demo = grasp_ros.tools.demo:main",
            "grasp-ros-train = grasp_ros.research.train:main",
            "grasp-ros-replay = grasp_ros.tools.replay:main",
            "grasp-ros-record-sim = grasp_ros.tools.record_sim:main",
            "grasp-ros-bench = grasp_ros.research.bench:main",
            "grasp-ros-closed-loop = grasp_ros.research.closed_loop:main",
        ]
    },
)
