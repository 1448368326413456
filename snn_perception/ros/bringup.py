"""The perception nodes in one process, for machines without ``ros2 launch``.

Same nodes, names, parameters and topics as ``launch/perception.launch.py``: an optional image
source, ``dehaze_node`` on the camera topic, ``segment_node`` on the dehazer's output (or on the
camera), all on one multi-threaded executor. Ctrl-C deactivates and frees every node, then exits.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class BringupConfig:
    params_file: Path | None = None
    source: str | None = None  # VIDEO | DIR | CAMERA index: start an image_source_node
    nodes: tuple[str, ...] = ("dehaze", "segment")
    namespace: str = ""
    camera_topic: str = "camera/image_raw"
    segment_input: str = "enhanced"  # or 'camera'
    rate_hz: float = 10.0
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # node name → {param: value}
    status_every_s: float = 5.0  # a one-line status of the perception nodes on stdout; 0 = never
    preview_dir: Path | None = None  # write the newest outputs there as JPEG files (ros/preview.py)


def load_params_file(path: Path) -> dict[str, dict[str, Any]]:
    """A ROS 2 parameter YAML → {node name or '/**': {param: value}}.

    Keys may be plain node names, namespaced names (``/rov/dehaze_node``) or wildcards (``/**``);
    namespaced names are reduced to the node name, as the nodes here share one namespace.
    """
    expected = "expected a ROS 2 parameter YAML (node name: {ros__parameters: {...}})"
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ValueError(f"parameter file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise ValueError(
            f"parameter file {path} is not a text file (not UTF-8, e.g. an image or other binary); {expected}"
        ) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"parameter file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(
            f"parameter file {path}: expected a ROS 2 parameter YAML (node name: {{ros__parameters: "
            f"{{...}}}}), got a {type(data).__name__}"
        )
    out: dict[str, dict[str, Any]] = {}
    for key, body in data.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ValueError(f"parameter file {path}: entry {key!r} has no 'ros__parameters'")
        name = key if key in ("/**", "**") else key.rstrip("/").split("/")[-1]
        out.setdefault("/**" if name == "**" else name, {}).update(body["ros__parameters"] or {})
    return out


def _params_for(name: str, table: dict[str, dict[str, Any]], extra: dict[str, Any]):
    from rclpy.parameter import Parameter

    merged = {**table.get("/**", {}), **table.get(name, {}), **extra}
    return [Parameter(k, value=v) for k, v in merged.items()]


def _fq(namespace: str, name: str) -> str:
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{name}"


def _topic(namespace: str, topic: str) -> str:
    return topic if topic.startswith("/") else _fq(namespace, topic)


def source_transport(cfg: BringupConfig, table: dict[str, dict[str, Any]]) -> str:
    """The transport the image source must publish: the one the camera-fed nodes read.

    A source publishing raw frames to a node that reads ``/compressed`` would leave it idle with
    no error, so a disagreement is refused with what to change.
    """

    def value(name: str, key: str) -> Any:
        merged = {**table.get("/**", {}), **table.get(name, {}), **cfg.overrides.get(name, {})}
        return merged.get(key)

    fed = [n for n in ("dehaze", "segment") if n in cfg.nodes]
    if "dehaze" in fed and cfg.segment_input == "enhanced":
        fed = ["dehaze"]  # the segmenter reads the dehazer's output
    wanted = {f"{n}_node": value(f"{n}_node", "input_transport") or "raw" for n in fed}
    if len(set(wanted.values())) > 1:
        got = ", ".join(f"{k} reads {v}" for k, v in wanted.items())
        raise ValueError(f"one image source feeds both nodes but {got}: give them the same input_transport")
    transport = next(iter(wanted.values()), "raw")
    explicit = value("image_source_node", "transport")
    if explicit is not None and explicit != transport:
        raise ValueError(
            f"image_source_node transport {explicit!r} but {', '.join(wanted)} read(s) {transport!r} "
            "frames: set the same value (or leave the source's transport unset to follow the nodes)"
        )
    return transport


def build_nodes(cfg: BringupConfig, context=None) -> list:
    """Create the nodes (not yet spinning); remaps make the wiring explicit."""
    from snn_perception.ros.dehaze_node import DehazeNode
    from snn_perception.ros.image_source_node import ImageSourceNode
    from snn_perception.ros.segment_node import SegmentNode

    table = load_params_file(cfg.params_file) if cfg.params_file else {}
    camera = _topic(cfg.namespace, cfg.camera_topic)
    ns = cfg.namespace or None
    nodes = []

    def remaps(name: str, target: str) -> list[str]:
        fq = _fq(cfg.namespace, name)
        return [
            "--ros-args",
            "-r",
            f"{fq}/image:={target}",
            "-r",
            f"{fq}/image/compressed:={target}/compressed",
        ]

    if cfg.source is not None:
        extra = {
            "source": str(cfg.source),
            "rate_hz": float(cfg.rate_hz),
            "transport": source_transport(cfg, table),
            **cfg.overrides.get("image_source_node", {}),
        }
        nodes.append(
            ImageSourceNode(
                namespace=ns,
                context=context,
                parameter_overrides=_params_for("image_source_node", table, extra),
                cli_args=[
                    "--ros-args",
                    "-r",
                    f"{_fq(cfg.namespace, 'image_source_node')}/image:={camera}",
                    "-r",
                    f"{_fq(cfg.namespace, 'image_source_node')}/image/compressed:={camera}/compressed",
                ],
            )
        )
    for task, cls in (("dehaze", DehazeNode), ("segment", SegmentNode)):
        if task not in cfg.nodes:
            continue
        name = cls.default_name
        target = camera
        if task == "segment" and cfg.segment_input == "enhanced" and "dehaze" in cfg.nodes:
            target = f"{_fq(cfg.namespace, 'dehaze_node')}/enhanced"
        nodes.append(
            cls(
                namespace=ns,
                context=context,
                parameter_overrides=_params_for(name, table, cfg.overrides.get(name, {})),
                cli_args=remaps(name, target),
            )
        )
    return nodes


def _preview(cfg: BringupConfig, nodes: list):
    """The preview writer for the perception nodes' image outputs (enhanced, segmentation overlay)."""
    from snn_perception.ros.preview import PreviewWriter

    outputs = {"dehaze_node": ("enhanced",), "segment_node": ("overlay",)}
    topics = {
        f"{n.get_name()}_{out}": f"{_fq(cfg.namespace, n.get_name())}/{out}"
        for n in nodes
        for out in outputs.get(n.get_name(), ())
    }
    return PreviewWriter(cfg.preview_dir, topics, namespace=cfg.namespace or None)


def status_of(nodes: list) -> str:
    """The perception nodes' status lines joined (the image source has no counters)."""
    from snn_perception.ros.diagnostics import status_line

    parts = [status_line(n.get_name(), n._state, n.counters) for n in nodes if hasattr(n, "counters")]
    return " | ".join(parts) or "no perception node"


def run(cfg: BringupConfig, args: list[str] | None = None) -> int:
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.exceptions import NameValidationException, ParameterException
    from rclpy.executors import ExternalShutdownException

    from snn_perception.ros.executor import (
        PerceptionExecutor,
        finish,
        interrupted,
        quiet_interrupts,
        start_executor,
    )
    from snn_perception.ros.image_source_node import FrameSourceError

    quiet_interrupts()  # Ctrl-C ends the spin through rclpy's shutdown; a second one cannot cut teardown
    rclpy.init(args=args)
    if interrupted():
        return finish(0)
    try:
        nodes = build_nodes(cfg)
    except (FrameSourceError, ValueError, ParameterException, NameValidationException, RCLError) as exc:
        if not rclpy.ok():
            return finish(0)  # interrupted while starting: the context was shut down under a constructor
        # a missing source, bad parameter values or types, bad node/topic names or ROS arguments
        print(f"bringup: {exc}", file=sys.stderr)
        return finish(2)
    preview = _preview(cfg, nodes) if cfg.preview_dir is not None else None
    if preview is not None:
        nodes.append(preview)
    executor = start_executor(lambda: PerceptionExecutor(num_threads=4))
    if executor is not None:  # None: a Ctrl-C came first, so no spin, but the same teardown below
        for n in nodes:
            executor.add_node(n)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    failed: list[str] = []
    next_status = time.monotonic() + cfg.status_every_s
    try:
        while executor is not None and rclpy.ok() and not failed:
            executor.spin_once(timeout_sec=0.2)
            if cfg.status_every_s > 0 and time.monotonic() >= next_status:
                next_status += cfg.status_every_s
                line = status_of(nodes)
                print("status: " + line, flush=True)
                if preview is not None:
                    preview.status = line
            # a node that cannot configure at start-up (missing or wrong weights) ends the bring-up:
            # nothing would ever fix it in this process
            failed = [
                f"{n.get_name()}: {n.autostart_error}" for n in nodes if getattr(n, "autostart_error", None)
            ]
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for n in nodes:
            if hasattr(n, "teardown"):
                n.teardown()
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        for n in nodes:
            n.destroy_node()
        finish(0)
    if failed:
        print("bringup: start-up failed: " + "; ".join(failed), file=sys.stderr)
        return 2
    return 0
