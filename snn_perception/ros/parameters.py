"""ROS parameters of the perception nodes: one table of specs, one dataclass, one validator.

Every parameter carries a :class:`ParameterDescriptor` (description, range, read-only) so
rqt_reconfigure shows sliders and rclpy itself refuses out-of-range and wrong-type values; the
checks a range cannot express (a weights name that must exist, an enum of strings, colour lists)
are done by :func:`validate`, which the node calls from its set-parameters callback so a bad value
is refused by the set call with a reason. *Hot* parameters apply at the next frame; *cold* ones
at the next configure (or through ``~/load_model``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from snn_perception.models.timesteps import MAX_TIMESTEPS
from snn_perception.ros.params_file import NodeSchema
from snn_perception.runtime.grading import GRADINGS
from snn_perception.runtime.image_codec import DEFAULT_MAX_PIXELS
from snn_perception.runtime.memory import DEFAULT_MAX_MODEL_PIXELS

DEVICES = ("cpu", "cuda", "auto")
TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("best_effort", "reliable")
_HEX = re.compile(r"^#?[0-9a-fA-F]{6}$")


@dataclass
class NodeParams:
    """The node's parameters, one field per ROS parameter (see :data:`SPECS` for meanings)."""

    weights: str = ""
    device: str = "auto"
    timesteps: int = 0
    input_width: int = 0
    input_height: int = 0
    max_input_pixels: int = DEFAULT_MAX_PIXELS
    max_model_pixels: int = DEFAULT_MAX_MODEL_PIXELS
    input_transport: str = "raw"
    qos_reliability: str = "best_effort"
    qos_depth: int = 1
    publish_stats: bool = True
    count_ops: bool = True
    latency_budget_ms: float = 0.0
    energy_budget_mj: float = 0.0
    autostart: bool = True
    # dehaze only
    strength: float = 1.0
    grading: str = "pixels"
    # segment only
    overlay_alpha: float = 0.5
    class_colors: list[str] = field(default_factory=list)

    @property
    def input_hw(self) -> tuple[int, int] | None:
        return (self.input_height, self.input_width) if self.input_width and self.input_height else None


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    hot: bool
    read_only: bool = False
    int_range: tuple[int, int, int] | None = None  # from, to, step
    float_range: tuple[float, float, float] | None = None
    constraints: str = ""
    task: str = ""  # '' = every node, else only nodes of this task
    #: set at start-up only: a later set of the same value is accepted (so `ros2 param load` of
    #: config/perception.yaml works), another value is refused with a reason; read_only would refuse both
    startup_only: bool = False


SPECS: tuple[Spec, ...] = (
    Spec(
        "weights",
        # {names}: this node's task's names that resolve here, filled in by descriptor()
        "Model name ({names}) or path to a checkpoint; empty = the task's default. "
        "Applies at the next configure, or at once through ~/load_model.",
        hot=False,
        constraints="an available model name or an existing file",
    ),
    Spec(
        "device",
        "Where the model runs; cuda falls back to cpu with a warning.",
        hot=False,
        constraints="one of: cpu, cuda, auto",
    ),
    Spec(
        "timesteps",
        "Simulation timesteps T per frame; 0 = the weights' default. Applies at the next frame.",
        hot=True,
        int_range=(0, MAX_TIMESTEPS, 1),
    ),
    Spec(
        "input_width",
        "Model input width (multiple of 8); 0 = native size. Applies at the next configure.",
        hot=False,
        int_range=(0, 4096, 8),
    ),
    Spec(
        "input_height",
        "Model input height (multiple of 8); 0 = native size. Set with input_width.",
        hot=False,
        int_range=(0, 4096, 8),
    ),
    Spec(
        "max_input_pixels",
        "Larger images are refused with a throttled error (protects memory and latency).",
        hot=True,
        int_range=(1, 100_000_000, 1),
    ),
    Spec(
        "max_model_pixels",
        "With input_width/input_height 0: frames with more pixels run the model at the largest size "
        "of their aspect ratio under this cap, outputs resized back to the frame's size (default "
        "640x480: ~0.26 s per frame at T=4 on 2 cores, ~1.6 s at 1080p); 0 = every frame at its own "
        "size. Applies at the next frame.",
        hot=True,
        int_range=(0, 100_000_000, 1),
    ),
    Spec(
        "input_transport",
        "raw: subscribe ~/image (Image); compressed: ~/image/compressed (jpeg/png). "
        "Applies at the next activate.",
        hot=False,
        constraints="one of: raw, compressed",
    ),
    Spec(
        "qos_reliability",
        "Reliability of the image subscription (sensor data = best_effort). Applies at the next activate.",
        hot=False,
        constraints="one of: best_effort, reliable",
    ),
    Spec(
        "qos_depth",
        "History depth of the image subscription; 1 = only the newest frame. Applies at the next activate.",
        hot=False,
        int_range=(1, 100, 1),
    ),
    Spec("publish_stats", "Publish one ~/telemetry (EnergyTelemetry) per processed frame.", hot=True),
    Spec(
        "count_ops",
        "Count synaptic operations and spike rates for telemetry (costs a few % of latency).",
        hot=True,
    ),
    Spec(
        "latency_budget_ms",
        "Per-frame latency budget from frame arrival (queueing counts), in ms; 0 = off. A spiking model "
        "then runs the most timesteps (up to 'timesteps') that an online cost model predicts will fit, "
        "at least one. Applies at the next frame.",
        hot=True,
        float_range=(0.0, 10000.0, 0.0),
    ),
    Spec(
        "energy_budget_mj",
        "Per-frame energy budget (45 nm estimate, as in ~/telemetry), in mJ; 0 = off. Like "
        "latency_budget_ms, on predicted energy (turns operation counting on). Applies at the next frame.",
        hot=True,
        float_range=(0.0, 10000.0, 0.0),
    ),
    Spec(
        "autostart",
        "Configure and activate at start-up. Set at start-up only (a changed value is refused).",
        hot=False,
        startup_only=True,
    ),
    Spec(
        "strength",
        "How much of the dehazer's output is published: 0 = the input, 1 = the full output (default); "
        "lower it where the colour correction overshoots (white sand or grey scenes turning pink). "
        "Applies at the next frame.",
        hot=True,
        float_range=(0.0, 1.0, 0.0),
        task="dehaze",
    ),
    Spec(
        "grading",
        "pixels: publish the network's output (default); global: publish the input frame graded as "
        "the network graded it (one colour matrix per frame, fitted to its output): keeps the frame's "
        "own detail, so a small max_model_pixels costs no sharpness, but cannot remove haze that "
        "varies across the frame; contrast: global, then local contrast as strong as the frame calls "
        "for (weights with a fitted contrast model; others publish global). Applies at the next frame.",
        hot=True,
        constraints="one of: " + ", ".join(GRADINGS),
        task="dehaze",
    ),
    Spec(
        "overlay_alpha",
        "Opacity of the class colours in ~/overlay.",
        hot=True,
        float_range=(0.0, 1.0, 0.0),
        task="segment",
    ),
    Spec(
        "class_colors",
        "#RRGGBB colours of classes 0, 1, ... for ~/mask_color and ~/overlay; classes without one "
        "(or all, when empty) keep the weights' colours.",
        hot=True,
        constraints="empty, or at most one #RRGGBB string per class of the loaded model",
        task="segment",
    ),
)


def specs_for(task: str) -> list[Spec]:
    return [s for s in SPECS if not s.task or s.task == task]


def descriptor(spec: Spec, task: str = "") -> ParameterDescriptor:
    """``spec`` as rclpy declares it; a ``task`` node's weights description names that task's models."""
    description = spec.description
    if "{names}" in description:
        names = task_weights(task) if task else sorted(_weights_registry().available())
        description = description.format(names=", ".join(names) or "none shipped")
    d = ParameterDescriptor(
        name=spec.name,
        description=description,
        read_only=spec.read_only,
        additional_constraints=spec.constraints,
    )
    default = getattr(NodeParams(), spec.name)
    d.type = _param_type(default)
    if spec.int_range is not None:
        d.integer_range = [
            IntegerRange(from_value=spec.int_range[0], to_value=spec.int_range[1], step=spec.int_range[2])
        ]
    if spec.float_range is not None:
        d.floating_point_range = [
            FloatingPointRange(
                from_value=spec.float_range[0], to_value=spec.float_range[1], step=spec.float_range[2]
            )
        ]
    return d


def _param_type(default: Any) -> int:
    if isinstance(default, bool):
        return ParameterType.PARAMETER_BOOL
    if isinstance(default, int):
        return ParameterType.PARAMETER_INTEGER
    if isinstance(default, float):
        return ParameterType.PARAMETER_DOUBLE
    if isinstance(default, list):
        return ParameterType.PARAMETER_STRING_ARRAY
    return ParameterType.PARAMETER_STRING


def validate(name: str, value: Any, task: str = "") -> str | None:
    """Checks a descriptor cannot express; returns the reason a value is refused, or None.

    With the node's ``task``, a weights name of the other task's model is refused too.
    """
    if name == "weights":
        if value == "":
            return None
        available = _weights_registry().available()
        if value in available or Path(str(value)).expanduser().is_file():
            return _weights_task_error(task, value) if task else None
        names = ", ".join(task_weights(task) if task else sorted(available)) or "none"
        return f"weights {value!r}: no such file or shipped model name (available names: {names})"
    enums = {
        "device": DEVICES,
        "input_transport": TRANSPORTS,
        "qos_reliability": RELIABILITIES,
        "grading": GRADINGS,
    }
    if name in enums and value not in enums[name]:
        return f"{name} {value!r} is not one of: {', '.join(enums[name])}"
    if name == "class_colors":
        bad = [c for c in value if not _HEX.match(str(c))]
        if bad:
            return f"class_colors: {bad} are not #RRGGBB colours"
    return None


def check_value(name: str, value: Any, task: str = "") -> str | None:
    """Why a ``task`` node refuses ``value`` (of the right type) at start-up: its range, then
    :func:`validate`."""
    spec = next((s for s in SPECS if s.name == name), None)
    bounds = spec and (spec.int_range or spec.float_range)
    if bounds:
        lo, hi, step = bounds
        if not lo <= value <= hi:  # also refuses nan
            return f"{name} {value} is out of range {lo:g}..{hi:g}"
        if spec.int_range is not None and step > 1 and (value - lo) % step:
            return f"{name} {value} is not a multiple of {step}"
    return validate(name, value, task)


def _weights_registry():
    # imported here: only the nodes and the launch-time checks need the registry (torch-free)
    from snn_perception.runtime import weights

    return weights


def _task_names(task: str) -> set[str]:
    """Every weights name of ``task``: shipped files (by their metadata) and external names."""
    registry = _weights_registry()
    external = (n for n in registry.DEFAULTS.get(task, ()) if n in registry.EXTERNAL)
    return {*registry.shipped_for(task), *external}


def task_weights(task: str) -> list[str]:
    """The names a ``task`` node can load now (an external name only where its file is found)."""
    return sorted(_task_names(task) & set(_weights_registry().available()))


def _weights_task_error(task: str, value: Any) -> str | None:
    """Why a shipped or external weights *name* cannot serve a ``task`` node (a path is checked when
    loaded: only a name's task is known without reading the file)."""
    registry = _weights_registry()
    if not isinstance(value, str) or value not in registry.available():
        return None
    owner = next((t for t in registry.DEFAULTS if value in _task_names(t)), task)
    if owner == task:
        return None
    usable = ", ".join(task_weights(task)) or "none"
    return f"weights {value!r} is a {owner} model; {task} weights: {usable} (or a checkpoint path)"


def schema(task: str) -> NodeSchema:
    """What a ``task`` node reads from a parameter file."""
    defaults = NodeParams()
    own = {s.name: getattr(defaults, s.name) for s in specs_for(task)}
    siblings = package_names() - own.keys()
    return NodeSchema(own, lambda name, value: check_value(name, value, task), siblings=siblings)


def package_names() -> frozenset[str]:
    """Every parameter a node of this package reads (the perception nodes', the image source's):
    a ``/**`` entry setting one of them is not a typo for the nodes that do not read it."""
    from snn_perception.ros.image_source_node import DEFAULTS as source_defaults  # cv2, rclpy: lazily

    return frozenset({*(s.name for s in SPECS), *source_defaults})


def check_change(name: str, old: Any, new: Any) -> str | None:
    """Why changing a running node's parameter from ``old`` to ``new`` is refused (None = allowed)."""
    spec = next((s for s in SPECS if s.name == name), None)
    if spec is not None and spec.startup_only and new != old:
        return f"{name} is set at start-up only (now {old!r}); restart the node to change it"
    return None


def parse_colors(colors: list[str]) -> list[tuple[int, int, int]]:
    out = []
    for c in colors:
        h = c.lstrip("#")
        out.append((int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)))
    return out


def declare(node, task: str) -> NodeParams:
    """Declare every parameter of a ``task`` node (overrides from the command line or YAML apply)."""
    from rclpy.parameter import Parameter

    defaults = NodeParams()
    for spec in specs_for(task):
        default = getattr(defaults, spec.name)
        if isinstance(default, list) and not default:
            # rclpy reads an empty list as a byte array: declare the type, then give it an empty
            # string array unless an override set it (an unset parameter breaks GetParameters for
            # every name asked with it: rqt and `ros2 param dump` would see nothing)
            declared = node.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY, descriptor(spec, task))
            if declared.type_ == Parameter.Type.NOT_SET:
                node.set_parameters([Parameter(spec.name, Parameter.Type.STRING_ARRAY, [])])
        else:
            node.declare_parameter(spec.name, default, descriptor(spec, task))
    return read(node, task)


def read(node, task: str) -> NodeParams:
    from rclpy.exceptions import ParameterUninitializedException

    params = NodeParams()
    for spec in specs_for(task):
        try:
            value = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            continue  # keeps the dataclass default
        setattr(params, spec.name, list(value) if isinstance(value, (list, tuple)) else value)
    return params


def check_all(params: NodeParams, task: str) -> list[str]:
    """Every reason the current values are unusable (run at configure: overrides bypass callbacks)."""
    reasons = [r for s in specs_for(task) if (r := validate(s.name, getattr(params, s.name)))]
    if bool(params.input_width) != bool(params.input_height):
        reasons.append(
            f"input_width={params.input_width} and input_height={params.input_height}: set both or neither"
        )
    return reasons


FIELD_NAMES = tuple(f.name for f in fields(NodeParams))
