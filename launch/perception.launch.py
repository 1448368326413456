"""Launch the snn_perception lifecycle nodes on a camera topic.

    ros2 launch snn_perception perception.launch.py camera_topic:=/camera/image_raw
    ros2 launch snn_perception perception.launch.py source:=/data/dive.mp4 start_segment:=false

``dehaze_node`` reads the camera; ``segment_node`` reads the dehazer's ``~/enhanced`` output
(``segment_input:=enhanced``, the default) or the camera (``segment_input:=camera``). Both are
``LifecycleNode``s; with ``autostart:=true`` they configure and activate themselves, otherwise this
file drives them to active once through lifecycle events (configure, then activate on first
reaching inactive; later transitions are left to you, e.g. ``ros2 lifecycle set``). ``source``
starts an ``image_source_node`` (video, image folder or camera index). Every argument is checked
before a node starts (``snn_perception.ros.launch_args``): a bad one ends the launch with one line
saying what is accepted.
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription
from snn_perception.ros.launch_args import parse

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
        "raw",
        "raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage, jpeg/png).",
    ),
    ("device", "auto", "cpu, cuda or auto (cuda falls back to cpu with a warning)."),
    ("dehaze_weights", "", "Dehaze model name or checkpoint path; empty = the shipped default."),
    ("segment_weights", "", "Segmentation model name or checkpoint path; empty = the shipped default."),
    ("timesteps", "0", "Simulation timesteps T for both models (0 = each model's default; hot, 0..64)."),
    ("start_dehaze", "true", "Start dehaze_node."),
    ("start_segment", "true", "Start segment_node."),
    ("segment_input", "enhanced", "What segment_node reads: enhanced (dehaze_node output) or camera."),
    ("source", "", "Video file, image folder or camera index: start an image_source_node publishing it."),
    ("rate_hz", "10.0", "Rate of the image source, 0.1..240 Hz."),
    (
        "autostart",
        "true",
        "Nodes configure and activate themselves; false = this launch file drives them to active once "
        "(configure, then activate), after which lifecycle transitions are yours (ros2 lifecycle set).",
    ),
    ("use_sim_time", "false", "Use /clock (bag replay)."),
    (
        "params_file",
        PathJoinSubstitution([FindPackageShare("snn_perception"), "config", "perception.yaml"]),
        "Parameter YAML for every node (launch arguments override it).",
    ),
    ("log_level", "info", "Logging level of the nodes: debug, info, warn, error or fatal."),
]


def _nodes(context):
    a = parse({name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS})
    ns = a.namespace
    prefix = f"/{ns}" if ns else ""
    camera = a.camera_topic if a.camera_topic.startswith("/") else f"{prefix}/{a.camera_topic}"
    params_file = a.params_file
    common = {
        "device": a.device,
        "timesteps": a.timesteps,
        "input_transport": a.input_transport,
        "autostart": a.autostart,
        "use_sim_time": a.use_sim_time,
    }
    ros_args = ["--log-level", a.log_level]
    start_dehaze = a.start_dehaze
    actions = []
    lifecycle_nodes = []

    def remap(target: str) -> list[tuple[str, str]]:
        return [("~/image", target), ("~/image/compressed", f"{target}/compressed")]

    if start_dehaze:
        params = dict(common)
        if a.dehaze_weights:
            params["weights"] = a.dehaze_weights
        lifecycle_nodes.append(
            LifecycleNode(
                package="snn_perception",
                executable="dehaze_node",
                name="dehaze_node",
                namespace=ns,
                parameters=[params_file, params],
                remappings=remap(camera),
                ros_arguments=ros_args,
                output="screen",
            )
        )
    if a.start_segment:
        params = dict(common)
        if a.segment_weights:
            params["weights"] = a.segment_weights
        target = camera
        if a.segment_input == "enhanced" and start_dehaze:
            target = f"{prefix}/dehaze_node/enhanced"
            params["input_transport"] = "raw"  # the dehazer publishes sensor_msgs/Image
        lifecycle_nodes.append(
            LifecycleNode(
                package="snn_perception",
                executable="segment_node",
                name="segment_node",
                namespace=ns,
                parameters=[params_file, params],
                remappings=remap(target),
                ros_arguments=ros_args,
                output="screen",
            )
        )
    if a.source:
        actions.append(
            Node(
                package="snn_perception",
                executable="image_source_node",
                name="image_source_node",
                namespace=ns,
                parameters=[
                    params_file,
                    {
                        "source": a.source,
                        "rate_hz": a.rate_hz,
                        "transport": a.input_transport,
                        "use_sim_time": a.use_sim_time,
                    },
                ],
                remappings=[("~/image", camera), ("~/image/compressed", f"{camera}/compressed")],
                output="screen",
            )
        )
    actions += lifecycle_nodes
    if a.autostart:
        return actions
    # autostart:=false: drive each node to active from here, once (configure now, activate when first
    # configured). handle_once: a later manual cleanup + configure must not be followed by an activate.
    for node in lifecycle_nodes:
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
