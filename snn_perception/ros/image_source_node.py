"""``image_source_node``: frames from a video file, an image folder or a camera index, at a set rate.

So the pipeline can be tried without a camera driver. Each frame gets a proper header (stamp from
the node clock, so ``use_sim_time`` works; ``frame_id`` from a parameter) and is published on
``~/image`` (``rgb8``/``bgr8``) or ``~/image/compressed`` (jpeg/png).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from snn_perception.ros import params_file
from snn_perception.ros.param_types import ClearTypeRefusals, refusal
from snn_perception.runtime.image_codec import (
    IMAGE_SUFFIXES,
    ImageDecodeError,
    encode_compressed,
    encode_image,
    open_video,
    read_image_file,
)

#: the values each string parameter accepts (also checked when changed at run time)
CHOICES = {"transport": ("raw", "compressed"), "encoding": ("rgb8", "bgr8"), "format": ("jpeg", "png")}
RATE_RANGE_HZ = (0.1, 240.0)  # publishing rate limits (the launch file checks rate_hz against them too)
SIZE_MAX = 8192  # largest width/height to resize to
#: every parameter and its default (its type: a parameter file giving another type is refused)
DEFAULTS: dict[str, Any] = {
    "source": "",
    "rate_hz": 10.0,
    "frame_id": "camera_optical_frame",
    "loop": True,
    "transport": "raw",
    "encoding": "rgb8",
    "format": "jpeg",
    "width": 0,
    "height": 0,
}


def check_choice(name: str, value: object) -> str | None:
    """Why ``value`` is refused for parameter ``name`` (None = accepted)."""
    accepted = CHOICES.get(name)
    if accepted is not None and value not in accepted:
        return f"{name} {value!r} is not one of: {', '.join(accepted)}"
    return None


def check_value(name: str, value: Any) -> str | None:
    """Why the node refuses ``value`` (of the right type) at start-up (None = accepted)."""
    if name == "source":
        return _check_source(value)
    if name == "rate_hz" and not RATE_RANGE_HZ[0] <= value <= RATE_RANGE_HZ[1]:  # also refuses nan
        return f"rate_hz {value} is out of range {RATE_RANGE_HZ[0]}..{RATE_RANGE_HZ[1]:g} Hz"
    if name in ("width", "height") and not 0 <= value <= SIZE_MAX:
        return f"{name} {value} is out of range 0..{SIZE_MAX}"
    return check_choice(name, value)


def _check_source(value: Any) -> str | None:
    """A path or camera index; a camera index may come as an integer (``-p source:=0``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f"source {value!r}: give a folder, a video file or a camera index (0, 1, ...)"
    if isinstance(value, int) and value < 0:
        return f"source {value}: a camera index is 0 or more"
    text = str(value).strip()
    if text and not text.isdigit() and not Path(text).expanduser().exists():
        return f"source {value!r}: no such file or folder (give a video, an image folder or a camera index)"
    return None


def schema() -> params_file.NodeSchema:
    """What the node reads from a parameter file."""
    from snn_perception.ros import parameters  # the perception nodes' names (a /** entry sets them)

    siblings = parameters.package_names() - DEFAULTS.keys()
    return params_file.NodeSchema(DEFAULTS, check_value, dynamic=frozenset({"source"}), siblings=siblings)


def output_size(h: int, w: int, width: int, height: int) -> tuple[int, int]:
    """(height, width) to publish: 0 keeps the native size; one side alone keeps the aspect ratio."""
    if width and height:
        return height, width
    if width:
        return max(1, round(h * width / w)), width
    if height:
        return height, max(1, round(w * height / h))
    return h, w


class FrameSourceError(RuntimeError):
    """The source cannot be opened; the message says what was given and what is accepted."""


class FrameSource:
    """Frames as RGB uint8 from a folder of images, a video file, or a camera index (``"0"``)."""

    def __init__(self, source: str, loop: bool = True) -> None:
        self.source, self.loop = source, loop
        self._files: list[Path] = []
        self._index = 0
        #: image files left out of the stream (name → why): damaged or truncated
        self.skipped: dict[str, str] = {}
        self._cap = None
        path = Path(source).expanduser()
        if source.isdigit():
            self._cap = cv2.VideoCapture(int(source))
            self.kind = "camera"
        elif path.is_dir():
            self._files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise FrameSourceError(
                    f"source {source!r}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            self.kind = "folder"
        elif path.is_file():
            self._cap = open_video(path)
            self.kind = "video"
        else:
            raise FrameSourceError(
                f"source {source!r}: not a folder, a video file or a camera index (e.g. 0)"
            )
        if self._cap is not None and not self._cap.isOpened():
            raise FrameSourceError(f"source {source!r}: OpenCV cannot open this {self.kind}")

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end (when not looping)."""
        if self._files:
            for _ in range(len(self._files) + 1):  # bounded: a folder of damaged files ends the stream
                if self._index >= len(self._files):
                    if not self.loop:
                        return None
                    self._index = 0
                path = self._files[self._index]
                self._index += 1
                try:  # the package's one image-file reader: truncated and damaged files are refused
                    return read_image_file(path)
                except ImageDecodeError as exc:
                    self.skipped[path.name] = str(exc)
            return None
        ok, bgr = self._cap.read()
        if not ok and self.kind == "video" and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


def _desc(text: str, **kw: Any) -> ParameterDescriptor:
    return ParameterDescriptor(description=text, **kw)


class ImageSourceNode(ClearTypeRefusals, Node):
    def __init__(self, node_name: str = "image_source_node", **kwargs: Any) -> None:
        self._source: FrameSource | None = None  # destroy_node may run on a half-built node
        super().__init__(node_name, **kwargs)
        p = {
            "source": self.declare_parameter(
                "source",
                DEFAULTS["source"],
                # dynamic: `-p source:=0` (a camera index) arrives as an integer, a path as a string
                _desc(
                    "Folder of images, video file, or camera index (e.g. 0).",
                    read_only=True,
                    dynamic_typing=True,
                ),
            ),
            "rate_hz": self.declare_parameter(
                "rate_hz",
                DEFAULTS["rate_hz"],
                _desc(
                    "Publishing rate.",
                    floating_point_range=[
                        FloatingPointRange(from_value=RATE_RANGE_HZ[0], to_value=RATE_RANGE_HZ[1], step=0.0)
                    ],
                    read_only=True,
                ),
            ),
            "frame_id": self.declare_parameter("frame_id", DEFAULTS["frame_id"], _desc("Header frame_id.")),
            "loop": self.declare_parameter(
                "loop", DEFAULTS["loop"], _desc("Start again at the end of a folder or video.")
            ),
            "transport": self.declare_parameter(
                "transport",
                DEFAULTS["transport"],
                _desc(
                    "raw (~/image) or compressed (~/image/compressed).",
                    additional_constraints="one of: raw, compressed",
                    read_only=True,
                ),
            ),
            "encoding": self.declare_parameter(
                "encoding",
                DEFAULTS["encoding"],
                _desc("Raw encoding.", additional_constraints="one of: rgb8, bgr8"),
            ),
            "format": self.declare_parameter(
                "format",
                DEFAULTS["format"],
                _desc("Compressed format.", additional_constraints="one of: jpeg, png"),
            ),
            "width": self.declare_parameter(
                "width",
                DEFAULTS["width"],
                _desc(
                    "Resize to this width (0 = native, or keep the aspect ratio when height is set).",
                    integer_range=[IntegerRange(from_value=0, to_value=SIZE_MAX, step=1)],
                ),
            ),
            "height": self.declare_parameter(
                "height",
                DEFAULTS["height"],
                _desc(
                    "Resize to this height (0 = native, or keep the aspect ratio when width is set).",
                    integer_range=[IntegerRange(from_value=0, to_value=SIZE_MAX, step=1)],
                ),
            ),
        }
        self._p = {k: v.value for k, v in p.items()}
        self._p["source"] = str(self._p["source"]).strip()
        for warning in params_file.misspelt(getattr(self, "_parameter_overrides", {}), schema()):
            self.get_logger().warning(warning)
        reasons = [r for r in (check_choice(k, self._p[k]) for k in CHOICES) if r]
        if reasons:
            raise FrameSourceError("; ".join(reasons))
        self.add_on_set_parameters_callback(self._validate_parameters)
        if not self._p["source"]:
            raise FrameSourceError(
                "parameter 'source' is empty: give a folder, a video file or a camera index"
            )
        self._source = FrameSource(self._p["source"], loop=self._p["loop"])
        compressed = self._p["transport"] == "compressed"
        self._pub = self.create_publisher(
            CompressedImage if compressed else Image,
            "~/image/compressed" if compressed else "~/image",
            qos_profile_sensor_data,
        )
        self.published = 0
        self._timer = self.create_timer(1.0 / float(self._p["rate_hz"]), self._tick)
        self.get_logger().info(
            f"publishing {self._source.kind} {self._p['source']!r} at {self._p['rate_hz']} Hz "
            f"on {self._pub.topic_name}"
        )

    def _validate_parameters(self, params: list) -> SetParametersResult:
        for p in params:
            reason = check_choice(p.name, p.value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _tick(self) -> None:
        known = len(self._source.skipped)
        rgb = self._source.read()
        for name in list(self._source.skipped)[known:]:
            self.get_logger().warning(f"skipped {name}: {self._source.skipped[name]}")
        if rgb is None:
            self.get_logger().info(f"end of {self._p['source']!r} after {self.published} frames")
            self._timer.cancel()
            return
        w, h = int(self.get_parameter("width").value), int(self.get_parameter("height").value)
        out_h, out_w = output_size(rgb.shape[0], rgb.shape[1], w, h)
        if (out_h, out_w) != rgb.shape[:2]:
            rgb = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA)
        stamp = self.get_clock().now().to_msg()
        frame_id = self.get_parameter("frame_id").value
        if self._p["transport"] == "compressed":
            msg = CompressedImage()
            msg.format = self.get_parameter("format").value
            msg.data = encode_compressed(rgb, msg.format)
        else:
            msg = Image()
            enc = self.get_parameter("encoding").value
            data, step = encode_image(rgb, enc)
            msg.height, msg.width, msg.encoding, msg.step = rgb.shape[0], rgb.shape[1], enc, step
            msg.data = data
        msg.header.stamp = stamp
        msg.header.frame_id = frame_id
        self._pub.publish(msg)
        self.published += 1

    def destroy_node(self) -> None:
        if self._source is not None:
            self._source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    import rclpy

    from snn_perception.ros.executor import (
        PerceptionExecutor,
        finish,
        interrupted,
        quiet_interrupts,
        spin_until_shutdown,
    )

    quiet_interrupts()  # a second Ctrl-C (terminal, then ros2 launch) must not cut the teardown
    rclpy.init(args=args)
    if interrupted():
        return finish(0)
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    try:
        node = ImageSourceNode()
    except (FrameSourceError, InvalidParameterTypeException, InvalidParameterValueException) as exc:
        # a bad source, or a -p or parameter-file value
        print(f"image_source_node: {refusal(exc)}", file=sys.stderr)
        return finish(2)
    except Exception:
        if rclpy.ok():
            raise
        return finish(0)  # interrupted while starting: the context was shut down under the constructor
    # ours, not rclpy.spin's executor: it treats a Ctrl-C that lands mid-wait as the shutdown it is
    spin_until_shutdown(node, lambda: PerceptionExecutor(num_threads=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
