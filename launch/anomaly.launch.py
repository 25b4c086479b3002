"""Start anomaly_node on a camera topic, optionally with rviz2; or on several cameras.

ros2 launch synboost_ros anomaly.launch.py image_topic:=/cam/image_raw rviz:=true
ros2 launch synboost_ros anomaly.launch.py cameras:=/cam_front/image_raw,/cam_rear/image_raw
    [mode:=shared|per_camera]
The nodes get FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds_large_frames.xml unless it is set
(fastdds_profile:=false: never; README "Large frames").
The argument logic lives in synboost_ros.ros.launch_logic (tested without launch_ros).
"""

from __future__ import annotations

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from synboost_ros.ros.launch_logic import (
    EXECUTABLE,
    LAUNCH_ARGUMENTS,
    PACKAGE,
    argument_defaults,
    plan_launch,
)


def _actions(context: LaunchContext, share_dir: str) -> list[Node]:
    values = {arg.name: LaunchConfiguration(arg.name).perform(context) for arg in LAUNCH_ARGUMENTS}
    plan = plan_launch(values, share_dir, context.environment)
    actions = [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            namespace=node.namespace,
            remappings=node.remappings,
            parameters=node.parameters,
            additional_env=node.env,
            output="screen",
        )
        for node in plan.nodes
    ]
    if plan.rviz_config:
        actions.append(
            Node(
                package="rviz2",
                executable="rviz2",
                arguments=["-d", plan.rviz_config],
                parameters=[{"use_sim_time": plan.use_sim_time}],
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    """Declare every argument, then build the nodes from their values."""
    share_dir = get_package_share_directory(PACKAGE)
    defaults = argument_defaults(share_dir)
    declared = [
        DeclareLaunchArgument(
            arg.name, default_value=defaults[arg.name], description=arg.description
        )
        for arg in LAUNCH_ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_actions, args=[share_dir])])
