"""launch/planner.launch.py and config/grasp.rviz, read as source: no ROS needed.

The launch file is parsed with ``ast`` (its imports need `launch`, which PyPI does not have);
test/ros/full_ros/test_launch_file.py builds it where `launch` is installed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from grasp_ros.control.params import SCHEMA
from grasp_ros.envs import ENVS
from grasp_ros.io import sim_topics
from grasp_ros.viz import trajectory_markers

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "planner.launch.py"
RVIZ = ROOT / "config" / "grasp.rviz"
TREE = ast.parse(LAUNCH.read_text())

EXPECTED_DEFAULTS = {
    "model": SCHEMA["model"].default,
    "device": SCHEMA["device"].default,
    "autostart": "true",
    "use_sim_time": "false",
    "world_scale": str(SCHEMA["world_scale"].default),
    "plan_latents": "false",
    "sim": "false",
    "env": "wall",
    "rviz": "false",
    "namespace": "",
    "image": "image",
    "goal_image": "goal_image",
    "action": "action",
}


def _calls(name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(TREE)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == name
    ]


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _arguments() -> dict[str, ast.Call]:
    return {ast.literal_eval(c.args[0]): c for c in _calls("DeclareLaunchArgument")}


def _strings(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_every_launch_argument_is_declared_with_its_default_and_a_description():
    args = _arguments()
    assert set(args) == {"params_file", *EXPECTED_DEFAULTS}
    for name, expected in EXPECTED_DEFAULTS.items():
        assert ast.literal_eval(_kw(args[name], "default_value")) == expected, name
    for name, call in args.items():
        assert _strings(_kw(call, "description")), f"{name} has no description"
    assert EXPECTED_DEFAULTS["env"] in ENVS


def test_params_file_defaults_to_the_shipped_planner_yaml():
    default = _kw(_arguments()["params_file"], "default_value")
    assert isinstance(default, ast.Call) and default.func.id == "PathJoinSubstitution"
    assert _strings(default) == ["config", "planner.yaml"]
    assert (ROOT / "config" / "planner.yaml").is_file()
    shares = _calls("FindPackageShare")
    assert shares and all(ast.unparse(c.args[0]) == "PACKAGE" for c in shares)
    package = re.search(r"<name>(\w+)</name>", (ROOT / "package.xml").read_text()).group(1)
    assert f'PACKAGE = "{package}"' in LAUNCH.read_text()


def test_use_sim_time_reaches_every_node_and_makes_the_simulator_publish_clock():
    nodes = {ast.literal_eval(_kw(c, "executable")): c for c in _calls("Node")}
    for name, node in nodes.items():
        assert "use_sim_time" in _strings(_kw(node, "parameters")), name
    sim = ast.unparse(_kw(nodes["sim_node"], "parameters"))
    assert "'publish_clock': use_sim_time" in sim and "'use_sim_time': use_sim_time" in sim


def test_launch_configurations_used_are_declared():
    used = {ast.literal_eval(c.args[0]) for c in _calls("arg") + _calls("LaunchConfiguration")}
    used |= {ast.literal_eval(c.args[0]) for c in _calls("SetLaunchConfiguration")}
    assert used <= set(_arguments()), used - set(_arguments())


def test_nodes_are_the_installed_executables_with_the_topic_remaps():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    nodes = {ast.literal_eval(_kw(c, "executable")): c for c in _calls("Node")}
    assert set(nodes) == {"planner_node", "trajectory_visualizer", "sim_node", "rviz2"}
    for name in ("planner_node", "trajectory_visualizer", "sim_node"):
        assert (ROOT / "scripts" / name).is_file() and f"scripts/{name}" in cmake
        assert ast.literal_eval(_kw(nodes[name], "name")) == name
    remapped = {ast.literal_eval(t.elts[0]) for t in ast.walk(TREE) if _is_remap(t)}
    assert {"image", "goal_image", "action"} <= remapped
    sim_image = _calls("SetLaunchConfiguration")[0]
    assert [ast.literal_eval(a) for a in sim_image.args] == ["image", sim_topics.CAMERA_TOPIC]
    assert "sim" in _strings(_kw(sim_image, "condition"))
    assert _strings(_kw(nodes["rviz2"], "arguments")) == ["-d", "config", "grasp.rviz"]


def _is_remap(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Tuple)
        and len(node.elts) == 2
        and isinstance(node.elts[0], ast.Constant)
        and isinstance(node.elts[1], ast.Call)
        and getattr(node.elts[1].func, "id", "") == "arg"
    )


# -- rviz ---------------------------------------------------------------------------------------
def _displays() -> list[dict]:
    return yaml.safe_load(RVIZ.read_text())["Visualization Manager"]["Displays"]


def _visualizer_topics() -> set[str]:
    source = (ROOT / "grasp_ros" / "nodes" / "trajectory_visualizer.py").read_text()
    return {f"trajectory_visualizer/{t}" for t in re.findall(r'"~/(\w+)"', source)}


def test_rviz_shows_the_camera_goal_plan_path_mosaic_and_pose():
    config = yaml.safe_load(RVIZ.read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == SCHEMA["frame_id"].default
    topics = {d["Topic"]["Value"]: d for d in _displays() if "Topic" in d}
    expected = {
        sim_topics.CAMERA_TOPIC,
        sim_topics.GOAL_TOPIC,
        sim_topics.POSE_TOPIC,
        sim_topics.MARKERS_TOPIC,
        *_visualizer_topics(),
    }
    assert len(_visualizer_topics()) == 3
    assert set(topics) == expected
    assert topics[sim_topics.GOAL_TOPIC]["Topic"]["Durability Policy"] == "Transient Local"
    classes = {d["Class"] for d in _displays()}
    assert {
        "rviz_default_plugins/Image",
        "rviz_default_plugins/MarkerArray",
        "rviz_default_plugins/Path",
        "rviz_default_plugins/TF",
    } <= classes


def test_rviz_marker_namespaces_are_those_the_visualiser_draws():
    import numpy as np

    states = np.zeros((3, 3))
    drawn = {
        m.ns for m in trajectory_markers(states, states, size=1, planner="g", cost=0, iterations=0)
    }
    markers = next(d for d in _displays() if d["Class"] == "rviz_default_plugins/MarkerArray")
    assert set(markers["Namespaces"]) == drawn
    # The simulator's ground truth, in both kinds of world (Push-T's block, a point's goal).
    from grasp_ros.envs import make_env
    from grasp_ros.viz import world_markers

    world = set()
    for name in ("wall", "pusht"):
        env = make_env(name)
        world |= {m.ns for m in world_markers(env, env.state, env.state)}
    sim = next(
        d for d in _displays() if d.get("Topic", {}).get("Value") == sim_topics.MARKERS_TOPIC
    )
    assert set(sim["Namespaces"]) == world
