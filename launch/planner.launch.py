"""Launch the GRASP planner, its trajectory visualiser and, optionally, the simulator and rviz.

    ros2 launch grasp_ros planner.launch.py sim:=true rviz:=true
    ros2 launch grasp_ros planner.launch.py model:=/path/to/model.pt image:=/camera/color/image_raw
    ros2 launch grasp_ros planner.launch.py use_sim_time:=true     # with `ros2 bag play --clock`
    ros2 launch grasp_ros planner.launch.py sim:=true use_sim_time:=true   # on the sim's /clock

``model``, ``device``, ``world_scale`` and ``plan_latents`` are passed after ``params_file``,
so they override the file's values. ``autostart`` (default true) brings the lifecycle planner
node to active without a manager. With ``sim:=true`` the planner's ``image`` is the simulator's
``camera/image_raw``, and with ``use_sim_time:=true`` too the simulator publishes ``/clock``.
``use_sim_time`` goes to every node.
"""

from launch.actions import DeclareLaunchArgument, SetLaunchConfiguration
from launch.conditions import IfCondition
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "grasp_ros"


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arg = LaunchConfiguration
    use_sim_time = ParameterValue(arg("use_sim_time"), value_type=bool)
    model = ParameterValue(arg("model"), value_type=str)
    world_scale = ParameterValue(arg("world_scale"), value_type=float)
    remap_action = ("action", arg("action"))
    remap_goal = ("goal_image", arg("goal_image"))
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([share, "config", "planner.yaml"]),
                description="planner parameters (ROS 2 YAML); every parameter with its default "
                "is in config/planner.yaml",
            ),
            DeclareLaunchArgument(
                "model",
                default_value="wall",
                description="world model: 'wall', 'maze', 'pusht' or 'wall-patch' (shipped), a "
                "checkpoint or TorchScript path, or package.module:factory; overrides params_file",
            ),
            DeclareLaunchArgument(
                "device",
                default_value="auto",
                description="torch device: auto, cpu, cuda or cuda:N; overrides params_file",
            ),
            DeclareLaunchArgument(
                "autostart",
                default_value="true",
                description="bring planner_node (a lifecycle node) to active by itself; false "
                "leaves it unconfigured for a lifecycle manager or `ros2 lifecycle set`",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="every node runs on /clock: from `ros2 bag play --clock`, or with "
                "sim:=true from sim_node, which then publishes it",
            ),
            DeclareLaunchArgument(
                "world_scale",
                default_value="0.0",
                description="metres per world unit (the model's project() and the simulator's "
                "arena): plan positions, sim/pose and /tf in REP-103 metres; 0: each world's "
                "own (wall, maze 0.05; pusht 0.001)",
            ),
            DeclareLaunchArgument(
                "plan_latents",
                default_value="false",
                description="put the latent states in the plan message (the decoded virtual "
                "states image needs them; megabytes a tick for patch-token models)",
            ),
            DeclareLaunchArgument(
                "sim",
                default_value="false",
                description="also start sim_node (a reference world publishing camera/image_raw "
                "and the goal) and plan on its camera",
            ),
            DeclareLaunchArgument(
                "env",
                default_value="wall",
                description="reference world for sim:=true: wall, maze or pusht (match the model)",
            ),
            DeclareLaunchArgument(
                "rviz", default_value="false", description="start rviz2 with config/grasp.rviz"
            ),
            DeclareLaunchArgument(
                "namespace", default_value="", description="namespace for all nodes and topics"
            ),
            DeclareLaunchArgument(
                "image",
                default_value="image",
                description="camera topic the planner subscribes to (camera/image_raw with sim)",
            ),
            DeclareLaunchArgument(
                "goal_image", default_value="goal_image", description="goal image topic"
            ),
            DeclareLaunchArgument(
                "action", default_value="action", description="topic the actions are published on"
            ),
            SetLaunchConfiguration("image", "camera/image_raw", condition=IfCondition(arg("sim"))),
            Node(
                package=PACKAGE,
                executable="planner_node",
                name="planner_node",
                namespace=arg("namespace"),
                output="screen",
                parameters=[
                    arg("params_file"),
                    {
                        "model": model,
                        "device": ParameterValue(arg("device"), value_type=str),
                        "autostart": ParameterValue(arg("autostart"), value_type=bool),
                        "world_scale": world_scale,
                        "plan_latents": ParameterValue(arg("plan_latents"), value_type=bool),
                        "use_sim_time": use_sim_time,
                    },
                ],
                remappings=[("image", arg("image")), remap_goal, remap_action],
            ),
            Node(
                package=PACKAGE,
                executable="trajectory_visualizer",
                name="trajectory_visualizer",
                namespace=arg("namespace"),
                output="screen",
                parameters=[{"model": model, "use_sim_time": use_sim_time}],
            ),
            Node(
                package=PACKAGE,
                executable="sim_node",
                name="sim_node",
                namespace=arg("namespace"),
                output="screen",
                parameters=[
                    {
                        "env": ParameterValue(arg("env"), value_type=str),
                        "world_scale": world_scale,
                        "publish_clock": use_sim_time,
                        "use_sim_time": use_sim_time,
                    }
                ],
                remappings=[remap_goal, remap_action],
                condition=IfCondition(arg("sim")),
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                namespace=arg("namespace"),
                arguments=["-d", PathJoinSubstitution([share, "config", "grasp.rviz"])],
                parameters=[{"use_sim_time": use_sim_time}],
                condition=IfCondition(arg("rviz")),
            ),
        ]
    )
