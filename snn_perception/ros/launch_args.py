"""The arguments of ``perception.launch.py``, parsed and checked before any node starts.

Why: ``ros2 launch`` passes every argument as text. Unchecked, ``timesteps:=abc`` ended the launch
with a bare ``invalid literal for int()`` and ``timesteps:=100`` started nodes that exited at once;
here each bad value is refused with one line naming the argument, the value and what is accepted.
The ranges and choices are the nodes' own (:mod:`parameters`, the image source's), so the launch
file and the nodes cannot disagree. Light on purpose: no torch import in the launch process.

An argument left empty passes nothing, so the ``params_file`` value (else the node's default)
holds: with every argument defaulted, ``timesteps: 8`` in a user's file used to be overwritten by
the argument's default. The file is read here too (:mod:`params_file`): values a node would refuse
end the launch in the same line, unknown names are warned about, and the wiring (which nodes the
launch drives to active, which transport the image source publishes) follows what each node gets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from snn_perception.ros import image_source_node, parameters, params_file
from snn_perception.ros.image_source_node import RATE_RANGE_HZ

SEGMENT_INPUTS = ("enhanced", "camera")
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
_TRUE, _FALSE = ("true", "1"), ("false", "0")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NAMESPACE = re.compile(rf"^/?({_NAME}(/{_NAME})*)?/?$")
_TOPIC = re.compile(rf"^/?{_NAME}(/{_NAME})*$")


def weights_help(task: str) -> str:
    """The ``<task>_weights`` argument's help: the names this install can load, and what empty means."""
    from snn_perception.runtime.weights import DEFAULTS

    names = ", ".join(parameters.task_weights(task))
    return (
        f"{task.capitalize()} model name ({names}) or checkpoint path; "
        f"empty = params_file's (else {DEFAULTS[task][0]})."
    )


class LaunchArgumentError(ValueError):
    """One or more launch arguments are refused; the message names each and what is accepted."""


NODES = ("dehaze_node", "segment_node")
SOURCE_NODE = "image_source_node"
_OR_EMPTY = " (or leave it empty for the parameter file's value)"


@dataclass(frozen=True)
class LaunchArgs:
    """The launch arguments as the nodes take them (see the launch file for their meanings).

    ``None``: the argument was left empty, so the parameter file's value (else the node's default)
    applies. ``nodes`` holds what the launch passes each node over the file, ``node_autostart`` whether
    each lifecycle node configures itself, ``source`` the image source to start ('' = none).
    """

    namespace: str
    camera_topic: str
    input_transport: str | None
    device: str | None
    dehaze_weights: str
    segment_weights: str
    timesteps: int | None
    start_dehaze: bool
    start_segment: bool
    segment_input: str
    source: str
    rate_hz: float | None
    autostart: bool | None
    use_sim_time: bool | None
    params_file: str
    log_level: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    node_autostart: dict[str, bool] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def fq(self, name: str) -> str:
        return f"/{self.namespace}/{name}" if self.namespace else f"/{name}"


#: the fields that are launch arguments (the others are derived from them and the parameter file)
ARGUMENT_NAMES = tuple(
    n for n in LaunchArgs.__dataclass_fields__ if n not in ("nodes", "node_autostart", "warnings")
)


def _timesteps_range() -> tuple[int, int]:
    spec = next(s for s in parameters.SPECS if s.name == "timesteps")
    assert spec.int_range is not None
    return spec.int_range[0], spec.int_range[1]


def node_schema(name: str) -> params_file.NodeSchema:
    """What node ``name`` (dehaze_node, segment_node or image_source_node) reads from a parameter file."""
    return (
        image_source_node.schema() if name == SOURCE_NODE else parameters.schema(name.removesuffix("_node"))
    )


def source_transport(wanted: dict[str, str], explicit: str | None) -> str:
    """The transport the image source must publish: the one its camera-fed nodes read.

    ``wanted``: {node: input_transport} of the nodes reading the camera; ``explicit``: the source's
    own ``transport`` when set. A source publishing raw frames to a node that reads ``/compressed``
    would leave it idle with no error, so a disagreement is refused with what to change.
    """
    if len(set(wanted.values())) > 1:
        got = ", ".join(f"{k} reads {v}" for k, v in wanted.items())
        raise ValueError(f"one image source feeds both nodes but {got}: give them the same input_transport")
    transport = next(iter(wanted.values()), "raw")
    if explicit is not None and explicit != transport:
        raise ValueError(
            f"image_source_node transport {explicit!r} but {', '.join(wanted)} read(s) {transport!r} "
            "frames: set the same value (or leave the source's transport unset to follow the nodes)"
        )
    return transport


def parse(raw: Mapping[str, str]) -> LaunchArgs:
    """Typed arguments from their text; raises :class:`LaunchArgumentError` listing every bad one."""
    errors: list[str] = []

    def refuse(name: str, accepted: str) -> None:
        errors.append(f"{name}:={raw[name]!r} is not accepted: {accepted}")

    def flag(name: str, optional: bool = False) -> bool | None:
        text = raw[name].strip().lower()
        if optional and not text:
            return None
        if text not in _TRUE + _FALSE:
            refuse(name, "give true or false" + (_OR_EMPTY if optional else ""))
        return text in _TRUE

    def choice(name: str, accepted: tuple[str, ...], optional: bool = False) -> str | None:
        if optional and not raw[name]:
            return None
        if raw[name] not in accepted:
            refuse(name, f"give one of {', '.join(accepted)}" + (_OR_EMPTY if optional else ""))
        return raw[name]

    lo, hi = _timesteps_range()
    timesteps: int | None = None
    if raw["timesteps"].strip():
        try:
            timesteps = int(raw["timesteps"])
        except ValueError:
            timesteps = lo - 1
        if not lo <= timesteps <= hi:
            refuse("timesteps", f"give an integer {lo}..{hi} (0 = each model's default T)" + _OR_EMPTY)
    rate: float | None = None
    if raw["rate_hz"].strip():
        try:
            rate = float(raw["rate_hz"])
        except ValueError:
            rate = -1.0
        if not RATE_RANGE_HZ[0] <= rate <= RATE_RANGE_HZ[1]:
            refuse("rate_hz", f"give a rate in {RATE_RANGE_HZ[0]}..{RATE_RANGE_HZ[1]:g} Hz" + _OR_EMPTY)
    if not _NAMESPACE.match(raw["namespace"]):
        refuse("namespace", "give a ROS namespace such as rov or /rov/front (letters, digits, _ and /)")
    if not _TOPIC.match(raw["camera_topic"]):
        refuse("camera_topic", "give a ROS topic name such as camera/image_raw or /rov/camera/image_raw")
    source = raw["source"].strip()
    if reason := image_source_node.check_value("source", source):
        refuse("source", reason)
    for name, task in (("dehaze_weights", "dehaze"), ("segment_weights", "segment")):
        if raw[name] and (reason := parameters.validate("weights", raw[name], task)):
            refuse(name, reason)
    pf = params_file.EMPTY
    if not Path(raw["params_file"]).expanduser().is_file():
        refuse("params_file", "no such file; give a parameter YAML such as config/perception.yaml")
    else:
        try:
            pf = params_file.load(raw["params_file"])
        except params_file.ParamsFileError as exc:
            refuse("params_file", str(exc))
    log_level = raw["log_level"].strip().lower()
    if log_level not in LOG_LEVELS:
        refuse("log_level", f"give one of {', '.join(LOG_LEVELS)}")
    args = LaunchArgs(
        namespace=raw["namespace"].strip("/"),
        camera_topic=raw["camera_topic"],
        input_transport=choice("input_transport", parameters.TRANSPORTS, optional=True),
        device=choice("device", parameters.DEVICES, optional=True),
        dehaze_weights=raw["dehaze_weights"],
        segment_weights=raw["segment_weights"],
        timesteps=timesteps,
        start_dehaze=bool(flag("start_dehaze")),
        start_segment=bool(flag("start_segment")),
        segment_input=choice("segment_input", SEGMENT_INPUTS) or "",
        source=source,
        rate_hz=rate,
        autostart=flag("autostart", optional=True),
        use_sim_time=flag("use_sim_time", optional=True),
        params_file=raw["params_file"],
        log_level=log_level,
    )
    if errors:
        raise LaunchArgumentError("; ".join(errors))
    try:
        return _with_file(args, pf)
    except ValueError as exc:
        raise LaunchArgumentError(f"params_file:={raw['params_file']!r} is not accepted: {exc}") from None


def _with_file(a: LaunchArgs, pf: params_file.ParamsFile) -> LaunchArgs:
    """``a`` with what each node gets: the given arguments over the file's values, checked."""
    given = {
        "device": a.device,
        "timesteps": a.timesteps,
        "input_transport": a.input_transport,
        "autostart": a.autostart,
        "use_sim_time": a.use_sim_time,
    }
    common = {k: v for k, v in given.items() if v is not None}
    nodes: dict[str, dict[str, Any]] = {}
    if a.start_dehaze:
        nodes["dehaze_node"] = {**common, **({"weights": a.dehaze_weights} if a.dehaze_weights else {})}
    if a.start_segment:
        nodes["segment_node"] = {**common, **({"weights": a.segment_weights} if a.segment_weights else {})}
        if a.segment_input == "enhanced" and a.start_dehaze:
            nodes["segment_node"]["input_transport"] = "raw"  # the dehazer publishes sensor_msgs/Image
    effective = {name: {**pf.for_node(a.fq(name)), **over} for name, over in nodes.items()}
    source_file = pf.for_node(a.fq(SOURCE_NODE))  # what the image source gets from the file
    from_file = source_file.get("source")
    source = a.source or ("" if from_file is None else str(from_file).strip())  # 0: camera 0
    if source:
        extra: dict[str, Any] = {k: v for k, v in (("source", a.source), ("rate_hz", a.rate_hz)) if v}
        if a.use_sim_time is not None:
            extra["use_sim_time"] = a.use_sim_time
        nodes[SOURCE_NODE] = extra
    schemas = {a.fq(n): node_schema(n) for n in nodes}
    errors, warnings = params_file.check(pf, schemas, {a.fq(n): over for n, over in nodes.items()})
    if errors:
        raise ValueError("; ".join(errors))
    if source:  # the values are well-typed now: the source publishes what its camera-fed nodes read
        fed = [
            n
            for n in effective
            if not (n == "segment_node" and a.segment_input == "enhanced" and a.start_dehaze)
        ]
        wanted = {n: str(effective[n].get("input_transport", "raw")) for n in fed}
        explicit = a.input_transport or source_file.get("transport")
        nodes[SOURCE_NODE]["transport"] = source_transport(wanted, explicit)
    autostart = {n: effective[n].get("autostart", True) is not False for n in nodes if n in NODES}
    return replace(a, source=source, nodes=nodes, node_autostart=autostart, warnings=tuple(warnings))
