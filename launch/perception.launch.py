"""Launch the snn_perception lifecycle nodes on a camera topic.

    ros2 launch snn_perception perception.launch.py camera_topic:=/camera/image_raw
    ros2 launch snn_perception perception.launch.py source:=/data/dive.mp4 start_segment:=false

``dehaze_node`` reads the camera; ``segment_node`` reads the dehazer's ``~/enhanced`` output
(``segment_input:=enhanced``, the default) or the camera (``segment_input:=camera``). Both are
``LifecycleNode``s; with ``autostart:=true`` they configure and activate themselves, otherwise this
file drives them to active through lifecycle events (configure, then activate on reaching
inactive). ``source`` starts an ``image_source_node`` (video, image folder or camera index).
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.conditions import UnlessCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription

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
    ("rate_hz", "10.0", "Rate of the image source."),
    ("autostart", "true", "Nodes configure and activate themselves; false = this launch file drives them."),
    ("use_sim_time", "false", "Use /clock (bag replay)."),
    (
        "params_file",
        PathJoinSubstitution([FindPackageShare("snn_perception"), "config", "perception.yaml"]),
        "Parameter YAML for every node (launch arguments override it).",
    ),
    ("log_level", "info", "Logging level of the nodes."),
]


def _nodes(context):
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    ns = arg("namespace").strip("/")
    prefix = f"/{ns}" if ns else ""
    camera = arg("camera_topic")
    camera = camera if camera.startswith("/") else f"{prefix}/{camera}"
    params_file = arg("params_file")
    common = {
        "device": arg("device"),
        "timesteps": int(arg("timesteps")),
        "input_transport": arg("input_transport"),
        "autostart": arg("autostart").lower() == "true",
        "use_sim_time": arg("use_sim_time").lower() == "true",
    }
    ros_args = ["--log-level", arg("log_level")]
    start_dehaze = arg("start_dehaze").lower() == "true"
    actions = []
    lifecycle_nodes = []

    def remap(target: str) -> list[tuple[str, str]]:
        return [("~/image", target), ("~/image/compressed", f"{target}/compressed")]

    if start_dehaze:
        params = dict(common)
        if arg("dehaze_weights"):
            params["weights"] = arg("dehaze_weights")
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
    if arg("start_segment").lower() == "true":
        params = dict(common)
        if arg("segment_weights"):
            params["weights"] = arg("segment_weights")
        target = camera
        if arg("segment_input") == "enhanced" and start_dehaze:
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
    if arg("source"):
        actions.append(
            Node(
                package="snn_perception",
                executable="image_source_node",
                name="image_source_node",
                namespace=ns,
                parameters=[
                    params_file,
                    {
                        "source": arg("source"),
                        "rate_hz": float(arg("rate_hz")),
                        "transport": arg("input_transport"),
                        "use_sim_time": common["use_sim_time"],
                    },
                ],
                remappings=[("~/image", camera), ("~/image/compressed", f"{camera}/compressed")],
                output="screen",
            )
        )
    actions += lifecycle_nodes
    # autostart:=false: drive each node to active from here (configure now, activate once configured)
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
                ),
                condition=UnlessCondition(LaunchConfiguration("autostart")),
            )
        )
        actions.append(
            EmitEvent(
                event=ChangeState(
                    lifecycle_node_matcher=matches_action(node),
                    transition_id=Transition.TRANSITION_CONFIGURE,
                ),
                condition=UnlessCondition(LaunchConfiguration("autostart")),
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, default, text in ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
