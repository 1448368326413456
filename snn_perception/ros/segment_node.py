"""``segment_node``: a Spiking-UNet (or any segment model of the engine) on a camera topic.

Outputs, as Isaac ROS segmentation does, are plain images with the input header: ``~/mask``
(``mono8`` class ids), and, computed only while someone subscribes, ``~/mask_color`` (``rgb8``,
one colour per class) and ``~/overlay`` (``rgb8``, the input blended with the colours by
``overlay_alpha``). Class *i*'s colour is ``class_colors[i]`` when given, else the weights'
metadata's, else a fixed palette's.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from snn_perception.ros.base_node import PerceptionNode, image_msg
from snn_perception.ros.executor import run_node
from snn_perception.ros.parameters import parse_colors
from snn_perception.runtime.engine import EngineResult
from snn_perception.runtime.image_codec import encode_image
from snn_perception.runtime.legend import overlay

#: used for classes the weights give no colour to (Pascal VOC's palette order, easy to tell apart)
_FALLBACK = [
    (0, 0, 0),
    (128, 0, 0),
    (0, 128, 0),
    (128, 128, 0),
    (0, 0, 128),
    (128, 0, 128),
    (0, 128, 128),
    (128, 128, 128),
    (64, 0, 0),
    (192, 0, 0),
    (64, 128, 0),
    (192, 128, 0),
    (64, 0, 128),
]


def palette(colors: list[tuple[int, int, int]]) -> np.ndarray:
    """A 256×3 lookup table: the given colours first, then the fallback palette, then grey."""
    lut = np.full((256, 3), 128, np.uint8)
    merged = list(colors) + _FALLBACK[len(colors) :]
    lut[: len(merged)] = np.array(merged, np.uint8)
    return lut


class SegmentNode(PerceptionNode):
    task = "segment"
    default_name = "segment_node"

    def __init__(self, node_name: str | None = None, **kwargs: Any) -> None:
        self._mask_pub = self._color_pub = self._overlay_pub = None
        super().__init__(node_name, **kwargs)

    def create_outputs(self, qos: QoSProfile) -> None:
        self._mask_pub = self.create_lifecycle_publisher(Image, "~/mask", qos)
        self._color_pub = self.create_lifecycle_publisher(Image, "~/mask_color", qos)
        self._overlay_pub = self.create_lifecycle_publisher(Image, "~/overlay", qos)

    def destroy_outputs(self) -> None:
        for name in ("_mask_pub", "_color_pub", "_overlay_pub"):
            pub = getattr(self, name)
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
                setattr(self, name, None)

    def validate_for_model(self, name: str, value: Any) -> str | None:
        engine = self.engine
        if name != "class_colors" or engine is None or not engine.info.num_classes:
            return None
        n = engine.info.num_classes
        if len(value) > n:
            return (
                f"class_colors: {len(value)} colours for a model with {n} classes; give at most {n} "
                "(#RRGGBB in class-id order; classes without one keep the weights' colours)"
            )
        return None

    def _lut(self) -> np.ndarray:
        engine = self.engine
        weights_colors = list(engine.info.class_colors) if engine is not None else []
        given = parse_colors(self.params.class_colors)
        return palette(given + weights_colors[len(given) :])

    def publish_outputs(self, header: Any, rgb: np.ndarray, result: EngineResult, out_encoding: str) -> None:
        ids = result.output
        h, w = ids.shape
        data, step = encode_image(ids, "mono8")
        self._mask_pub.publish(image_msg(header, data, h, w, "mono8", step))
        want_color = self._color_pub.get_subscription_count() > 0
        want_overlay = self._overlay_pub.get_subscription_count() > 0
        if not (want_color or want_overlay):
            return
        color = self._lut()[ids]
        if want_color:
            data, step = encode_image(color, "rgb8")
            self._color_pub.publish(image_msg(header, data, h, w, "rgb8", step))
        if want_overlay:
            blend = overlay(rgb, color, float(self.params.overlay_alpha))
            data, step = encode_image(blend, "rgb8")
            self._overlay_pub.publish(image_msg(header, data, h, w, "rgb8", step))


def main(args: list[str] | None = None) -> int:
    return run_node(SegmentNode, args)


if __name__ == "__main__":
    sys.exit(main())
