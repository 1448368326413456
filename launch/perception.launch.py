"""Launch the snn_perception lifecycle nodes on a camera topic.

    ros2 launch snn_perception perception.launch.py camera_topic:=/camera/image_raw
    ros2 launch snn_perception perception.launch.py source:=/data/dive.mp4 start_segment:=false

``dehaze_node`` reads the camera; ``segment_node`` reads the dehazer's ``~/enhanced`` output
(``segment_input:=enhanced``, the default) or the camera (``segment_input:=camera``). Both are
``LifecycleNode``s; with ``autostart`` true (the default) they configure and activate themselves,
otherwise this file drives them to active once through lifecycle events (configure, then activate
on first reaching inactive; later transitions are left to you, e.g. ``ros2 lifecycle set``).
``source`` starts an ``image_source_node`` (video, image folder or camera index).

``params_file`` gives every node its parameters; an argument given on the command line overrides
it, one left empty (``timesteps``, ``device``, ``autostart``, …) passes nothing, so the file's
value holds. Every argument and the file's values for the nodes that start are checked before a
node starts (``snn_perception.ros.launch_args``): a bad one ends the launch with one line saying
what is accepted; a parameter name no node reads is warned about.
"""

import os

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription
from snn_perception.ros.launch_args import parse, weights_help
from snn_perception.ros.launcher_watch import LAUNCH_PID_ENV

ARGUMENTS = [
    ("namespace", "", "Namespace of every node."),
    (
        "camera_topic",
        "camera/image_raw",
        "Camera image topic (relative to the namespace unless it starts with /); "
        "with input_transport:=compressed the nodes read <camera_topic>/compressed.",
    ),
    (
        "input_transport",
        "",
        "raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage, jpeg/png); "
        "empty = params_file's (else raw).",
    ),
    (
        "device",
        "",
        "cpu, cuda or auto (cuda falls back to cpu with a warning); empty = params_file's (else auto).",
    ),
    ("dehaze_weights", "", weights_help("dehaze")),
    ("segment_weights", "", weights_help("segment")),
    (
        "timesteps",
        "",
        "Simulation timesteps T for both models (0 = each model's default; hot, 0..64); "
        "empty = params_file's (else 0).",
    ),
    ("start_dehaze", "true", "Start dehaze_node."),
    ("start_segment", "true", "Start segment_node."),
    ("segment_input", "enhanced", "What segment_node reads: enhanced (dehaze_node output) or camera."),
    (
        "source",
        "",
        "Video file, image folder or camera index: start an image_source_node publishing it "
        "(empty = params_file's image_source_node source, else no source).",
    ),
    ("rate_hz", "", "Rate of the image source, 0.1..240 Hz; empty = params_file's (else 10)."),
    (
        "autostart",
        "",
        "Nodes configure and activate themselves; false = this launch file drives them to active once "
        "(configure, then activate), after which lifecycle transitions are yours (ros2 lifecycle set); "
        "empty = params_file's (else true).",
    ),
    ("use_sim_time", "", "Use /clock (bag replay); empty = params_file's (else false)."),
    (
        "params_file",
        PathJoinSubstitution([FindPackageShare("snn_perception"), "config", "perception.yaml"]),
        "Parameter YAML for every node; the arguments given override it, the ones left empty do not. "
        "Checked before any node starts (values a node would refuse end the launch; unknown names warn).",
    ),
    ("log_level", "info", "Logging level of the nodes: debug, info, warn, error or fatal."),
]


def _nodes(context):
    a = parse({name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS})
    for warning in a.warnings:
        get_logger("launch").warning(f"params_file {a.params_file}: {warning}")
    ns = a.namespace
    prefix = f"/{ns}" if ns else ""
    camera = a.camera_topic if a.camera_topic.startswith("/") else f"{prefix}/{a.camera_topic}"
    params_file = a.params_file
    ros_args = ["--log-level", a.log_level]
    actions = []
    lifecycle_nodes = {}
    # ros2 launch leaves its nodes running when it gets SIGTERM: each node ends when this process does
    watched = {LAUNCH_PID_ENV: str(os.getpid())}

    def remap(target: str) -> list[tuple[str, str]]:
        return [("~/image", target), ("~/image/compressed", f"{target}/compressed")]

    for name in ("dehaze_node", "segment_node"):
        if name not in a.nodes:
            continue
        target = camera
        if name == "segment_node" and a.segment_input == "enhanced" and "dehaze_node" in a.nodes:
            target = f"{prefix}/dehaze_node/enhanced"
        lifecycle_nodes[name] = LifecycleNode(
            package="snn_perception",
            executable=name,
            name=name,
            namespace=ns,
            parameters=[params_file, a.nodes[name]],
            remappings=remap(target),
            ros_arguments=ros_args,
            additional_env=watched,
            output="screen",
        )
    if "image_source_node" in a.nodes:
        actions.append(
            Node(
                package="snn_perception",
                executable="image_source_node",
                name="image_source_node",
                namespace=ns,
                parameters=[params_file, a.nodes["image_source_node"]],
                remappings=[("~/image", camera), ("~/image/compressed", f"{camera}/compressed")],
                additional_env=watched,
                output="screen",
            )
        )
    actions += lifecycle_nodes.values()
    # a node with autostart false (argument, else params_file) is driven to active from here, once
    # (configure now, activate when first configured). handle_once: a later manual cleanup +
    # configure must not be followed by an activate.
    for name, node in lifecycle_nodes.items():
        if a.node_autostart[name]:
            continue
        actions.append(
            RegisterEventHandler(
                OnStateTransition(
                    target_lifecycle_node=node,
                    start_state="configuring",
                    goal_state="inactive",
                    entities=[
                        EmitEvent(
                            event=ChangeState(
                                lifecycle_node_matcher=matches_action(node),
                                transition_id=Transition.TRANSITION_ACTIVATE,
                            )
                        )
                    ],
                    handle_once=True,
                )
            )
        )
        actions.append(
            EmitEvent(
                event=ChangeState(
                    lifecycle_node_matcher=matches_action(node),
                    transition_id=Transition.TRANSITION_CONFIGURE,
                )
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, default, text in ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
