"""``snn-perception bringup``: the perception nodes in one process (no ``ros2 launch`` needed).

Examples::

    snn-perception bringup --params config/perception.yaml --source ../shared/data/lsui_pairs/raw
    snn-perception bringup --nodes dehaze --camera-topic /camera/image_raw
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snn_perception.commands import add_device_argument, add_examples, weights_help
from snn_perception.models.timesteps import MAX_TIMESTEPS

EXAMPLES = (
    "snn-perception bringup --params config/perception.yaml --source dive.mp4 --preview preview/",
    "snn-perception bringup --source 0 --rate 15 --nodes dehaze  # camera 0, dehazer only",
    "snn-perception bringup --camera-topic /rov/camera/image_raw --namespace perception --timesteps 2",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument(
        "--params",
        type=Path,
        default=None,
        help="ROS 2 parameter YAML, e.g. config/perception.yaml (default: none, the nodes' defaults)",
    )
    parser.add_argument(
        "--source",
        default=None,
        help="VIDEO file, image DIR or CAMERA index: also start an image_source_node",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="image source rate in Hz (default: the --params file's rate_hz, else 10)",
    )
    parser.add_argument(
        "--nodes", default="dehaze,segment", help="comma-separated: dehaze, segment (default both)"
    )
    parser.add_argument("--namespace", default="", help="namespace for every node (default none)")
    parser.add_argument(
        "--camera-topic", default="camera/image_raw", help="camera image topic (relative to ns)"
    )
    parser.add_argument(
        "--segment-input",
        choices=("enhanced", "camera"),
        default="enhanced",
        help="segment the dehazer's output (default) or the raw camera",
    )
    parser.add_argument(
        "--input-transport",
        choices=("raw", "compressed"),
        default=None,
        help="override input_transport of both nodes (and the transport of the --source node)",
    )
    add_device_argument(parser, default=None, what="override the nodes' device (default: their parameters')")
    parser.add_argument(
        "--dehaze-weights", default=None, help=weights_help("dehaze", "override the dehaze weights")
    )
    parser.add_argument(
        "--segment-weights", default=None, help=weights_help("segment", "override the segment weights")
    )
    parser.add_argument(
        "--timesteps", type=int, default=None, help="override timesteps, 0..64 (0 = each model's default)"
    )
    parser.add_argument(
        "--preview",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the newest enhanced image and segmentation overlay to DIR as JPEG files every second "
        "(and the status line to DIR/status.txt): a look at the outputs without ROS tools",
    )
    parser.add_argument(
        "--status-every",
        type=float,
        default=5.0,
        metavar="S",
        help="print a one-line status (fps, latency, done and dropped per node) every S seconds; "
        "0 = never (default 5)",
    )


def _refuse(message: str) -> int:
    """One line with the prefix every verb uses; exit code 2."""
    print(f"snn-perception bringup: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        # what the nodes need from ROS, without their torch import (~1.5 s): bad arguments are
        # refused at once; the nodes themselves are imported when they start
        import diagnostic_msgs.msg  # noqa: F401
        import rclpy.lifecycle  # noqa: F401
        import sensor_msgs.msg  # noqa: F401

        import snn_perception.msg
        import snn_perception.srv  # noqa: F401
        from snn_perception.ros.bringup import BringupConfig
        from snn_perception.ros.bringup import run as run_bringup
    except ImportError as exc:  # no rclpy, or our messages not built / not sourced
        return _refuse(
            f"ROS 2 is not available here ({exc}); run `make setup` and "
            "`source install/setup.bash` (or build the package with colcon and source the workspace)"
        )

    nodes = tuple(n.strip() for n in args.nodes.split(",") if n.strip())
    bad = [n for n in nodes if n not in ("dehaze", "segment")]
    if bad or not nodes:
        return _refuse(f"--nodes {args.nodes!r}: accepted names are dehaze and segment")
    if args.params is not None and not args.params.is_file():
        return _refuse(f"--params {args.params}: no such file")
    from rclpy.exceptions import NameValidationException
    from rclpy.validate_namespace import validate_namespace
    from rclpy.validate_topic_name import validate_topic_name

    try:
        if args.namespace.strip("/"):
            validate_namespace("/" + args.namespace.strip("/"))
        validate_topic_name(args.camera_topic)
    except NameValidationException as exc:
        return _refuse(f"--namespace/--camera-topic: {exc}")
    from snn_perception.ros.parameters import validate

    for flag, value, task in (
        ("--dehaze-weights", args.dehaze_weights, "dehaze"),
        ("--segment-weights", args.segment_weights, "segment"),
    ):
        reason = value and validate("weights", value, task)
        if reason:
            return _refuse(f"{flag} {value}: {reason}")
    if args.rate is not None and not 0.1 <= args.rate <= 240:  # also refuses nan
        return _refuse(f"--rate {args.rate}: must be in 0.1..240 Hz")
    if not (args.status_every == 0 or 0.5 <= args.status_every <= 3600):  # also refuses nan
        return _refuse(f"--status-every {args.status_every}: must be 0 (never) or 0.5..3600 s")
    if args.preview is not None and args.preview.exists() and not args.preview.is_dir():
        return _refuse(f"--preview {args.preview}: is a file; give a folder (created if missing)")
    common: dict = {}
    if args.input_transport:
        common["input_transport"] = args.input_transport
    if args.device:
        common["device"] = args.device
    if args.timesteps is not None:
        if not 0 <= args.timesteps <= MAX_TIMESTEPS:
            accepted = f"0..{MAX_TIMESTEPS} (0 = each model's default)"
            return _refuse(f"--timesteps {args.timesteps}: must be in {accepted}")
        common["timesteps"] = args.timesteps
    overrides = {"dehaze_node": dict(common), "segment_node": dict(common)}
    if args.dehaze_weights:
        overrides["dehaze_node"]["weights"] = args.dehaze_weights
    if args.segment_weights:
        overrides["segment_node"]["weights"] = args.segment_weights
    if args.input_transport:
        overrides["image_source_node"] = {"transport": args.input_transport}
    if args.segment_input == "enhanced" and "dehaze" in nodes and "segment" in nodes:
        overrides["segment_node"]["input_transport"] = "raw"  # the dehazer publishes raw images
    cfg = BringupConfig(
        params_file=args.params,
        source=args.source,
        nodes=nodes,
        namespace=args.namespace,
        camera_topic=args.camera_topic,
        segment_input=args.segment_input,
        rate_hz=args.rate,
        overrides=overrides,
        status_every_s=args.status_every,
        preview_dir=args.preview,
    )
    return run_bringup(cfg)
