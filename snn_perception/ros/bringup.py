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

from snn_perception.ros import launch_args, params_file


@dataclass
class BringupConfig:
    params_file: Path | None = None
    source: str | None = None  # VIDEO | DIR | CAMERA index: start an image_source_node
    nodes: tuple[str, ...] = ("dehaze", "segment")
    namespace: str = ""
    camera_topic: str = "camera/image_raw"
    segment_input: str = "enhanced"  # or 'camera'
    rate_hz: float | None = None  # None: the parameter file's (else the node's default, 10 Hz)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # node name → {param: value}
    status_every_s: float = 5.0  # a one-line status of the perception nodes on stdout; 0 = never
    preview_dir: Path | None = None  # write the newest outputs there as JPEG files (ros/preview.py)


def _params_for(fq: str, pf: params_file.ParamsFile, extra: dict[str, Any]):
    from rclpy.parameter import Parameter

    return [Parameter(k, value=v) for k, v in {**pf.for_node(fq), **extra}.items()]


def _fq(namespace: str, name: str) -> str:
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{name}"


def _topic(namespace: str, topic: str) -> str:
    return topic if topic.startswith("/") else _fq(namespace, topic)


def source_transport(cfg: BringupConfig, pf: params_file.ParamsFile) -> str:
    """The transport the image source must publish: the one the camera-fed nodes read."""

    def value(name: str, key: str) -> Any:
        return {**pf.for_node(_fq(cfg.namespace, name)), **cfg.overrides.get(name, {})}.get(key)

    fed = [n for n in ("dehaze", "segment") if n in cfg.nodes]
    if "dehaze" in fed and cfg.segment_input == "enhanced":
        fed = ["dehaze"]  # the segmenter reads the dehazer's output
    wanted = {f"{n}_node": value(f"{n}_node", "input_transport") or "raw" for n in fed}
    return launch_args.source_transport(wanted, value("image_source_node", "transport"))


def _source_overrides(cfg: BringupConfig) -> dict[str, Any]:
    """What the bring-up gives the image source over the parameter file."""
    given = {
        "source": str(cfg.source),
        **({"rate_hz": float(cfg.rate_hz)} if cfg.rate_hz is not None else {}),
    }
    return {**given, **cfg.overrides.get("image_source_node", {})}


def check_params(cfg: BringupConfig, pf: params_file.ParamsFile) -> list[str]:
    """The warnings about ``pf`` for the nodes this bring-up starts; raises ValueError on bad values."""

    names = [f"{n}_node" for n in cfg.nodes] + (["image_source_node"] if cfg.source is not None else [])
    schemas = {_fq(cfg.namespace, n): launch_args.node_schema(n) for n in names}
    overrides = {_fq(cfg.namespace, n): cfg.overrides.get(n, {}) for n in names}
    if cfg.source is not None:
        overrides[_fq(cfg.namespace, "image_source_node")] = _source_overrides(cfg)
    errors, warnings = params_file.check(pf, schemas, overrides)
    if errors:
        raise ValueError(f"parameter file {pf.path}: " + "; ".join(errors))
    return warnings


def build_nodes(cfg: BringupConfig, context=None) -> list:
    """Create the nodes (not yet spinning); remaps make the wiring explicit."""
    from snn_perception.ros.dehaze_node import DehazeNode
    from snn_perception.ros.image_source_node import ImageSourceNode
    from snn_perception.ros.segment_node import SegmentNode

    pf = params_file.load(cfg.params_file) if cfg.params_file else params_file.EMPTY
    for warning in check_params(cfg, pf):
        print(f"bringup: warning: parameter file {pf.path}: {warning}", file=sys.stderr)
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
        extra = {**_source_overrides(cfg), "transport": source_transport(cfg, pf)}
        nodes.append(
            ImageSourceNode(
                namespace=ns,
                context=context,
                parameter_overrides=_params_for(_fq(cfg.namespace, "image_source_node"), pf, extra),
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
                parameter_overrides=_params_for(_fq(cfg.namespace, name), pf, cfg.overrides.get(name, {})),
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
