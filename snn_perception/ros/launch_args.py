"""The arguments of ``perception.launch.py``, parsed and checked before any node starts.

Why: ``ros2 launch`` passes every argument as text. Unchecked, ``timesteps:=abc`` ended the launch
with a bare ``invalid literal for int()`` and ``timesteps:=100`` started nodes that exited at once;
here each bad value is refused with one line naming the argument, the value and what is accepted.
The ranges and choices are the nodes' own (:mod:`parameters`, the image source's), so the launch
file and the nodes cannot disagree. Light on purpose: no torch import in the launch process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from snn_perception.ros import parameters
from snn_perception.ros.image_source_node import RATE_RANGE_HZ

SEGMENT_INPUTS = ("enhanced", "camera")
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
_TRUE, _FALSE = ("true", "1"), ("false", "0")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NAMESPACE = re.compile(rf"^/?({_NAME}(/{_NAME})*)?/?$")
_TOPIC = re.compile(rf"^/?{_NAME}(/{_NAME})*$")


class LaunchArgumentError(ValueError):
    """One or more launch arguments are refused; the message names each and what is accepted."""


@dataclass(frozen=True)
class LaunchArgs:
    """The launch arguments as the nodes take them (see the launch file for their meanings)."""

    namespace: str
    camera_topic: str
    input_transport: str
    device: str
    dehaze_weights: str
    segment_weights: str
    timesteps: int
    start_dehaze: bool
    start_segment: bool
    segment_input: str
    source: str
    rate_hz: float
    autostart: bool
    use_sim_time: bool
    params_file: str
    log_level: str


def _timesteps_range() -> tuple[int, int]:
    spec = next(s for s in parameters.SPECS if s.name == "timesteps")
    assert spec.int_range is not None
    return spec.int_range[0], spec.int_range[1]


def parse(raw: Mapping[str, str]) -> LaunchArgs:
    """Typed arguments from their text; raises :class:`LaunchArgumentError` listing every bad one."""
    errors: list[str] = []

    def refuse(name: str, accepted: str) -> None:
        errors.append(f"{name}:={raw[name]!r} is not accepted: {accepted}")

    def flag(name: str) -> bool:
        text = raw[name].strip().lower()
        if text not in _TRUE + _FALSE:
            refuse(name, "give true or false")
        return text in _TRUE

    def choice(name: str, accepted: tuple[str, ...]) -> str:
        if raw[name] not in accepted:
            refuse(name, f"give one of {', '.join(accepted)}")
        return raw[name]

    lo, hi = _timesteps_range()
    timesteps = lo - 1
    try:
        timesteps = int(raw["timesteps"])
    except ValueError:
        pass
    if not lo <= timesteps <= hi:
        refuse("timesteps", f"give an integer {lo}..{hi} (0 = each model's default T)")
    rate = -1.0
    try:
        rate = float(raw["rate_hz"])
    except ValueError:
        pass
    if not RATE_RANGE_HZ[0] <= rate <= RATE_RANGE_HZ[1]:
        refuse("rate_hz", f"give a rate in {RATE_RANGE_HZ[0]}..{RATE_RANGE_HZ[1]:g} Hz")
    if not _NAMESPACE.match(raw["namespace"]):
        refuse("namespace", "give a ROS namespace such as rov or /rov/front (letters, digits, _ and /)")
    if not _TOPIC.match(raw["camera_topic"]):
        refuse("camera_topic", "give a ROS topic name such as camera/image_raw or /rov/camera/image_raw")
    source = raw["source"].strip()
    if source and not source.isdigit() and not Path(source).expanduser().exists():
        refuse("source", "no such file or folder; give a video file, an image folder or a camera index (0)")
    if not Path(raw["params_file"]).expanduser().is_file():
        refuse("params_file", "no such file; give a parameter YAML such as config/perception.yaml")
    log_level = raw["log_level"].strip().lower()
    if log_level not in LOG_LEVELS:
        refuse("log_level", f"give one of {', '.join(LOG_LEVELS)}")
    args = LaunchArgs(
        namespace=raw["namespace"].strip("/"),
        camera_topic=raw["camera_topic"],
        input_transport=choice("input_transport", parameters.TRANSPORTS),
        device=choice("device", parameters.DEVICES),
        dehaze_weights=raw["dehaze_weights"],
        segment_weights=raw["segment_weights"],
        timesteps=timesteps,
        start_dehaze=flag("start_dehaze"),
        start_segment=flag("start_segment"),
        segment_input=choice("segment_input", SEGMENT_INPUTS),
        source=source,
        rate_hz=rate,
        autostart=flag("autostart"),
        use_sim_time=flag("use_sim_time"),
        params_file=raw["params_file"],
        log_level=log_level,
    )
    if errors:
        raise LaunchArgumentError("; ".join(errors))
    return args
