"""``dehaze_node``: snnTrans-DHZ on a camera topic, publishing ``~/enhanced``.

The enhanced image keeps the input header and its colour family: BGR-ordered input gives
``bgr8``, mono input ``mono8`` (its luminance: a mono camera stays mono), everything else (RGB,
YUV, Bayer, compressed RGB) ``rgb8``. The hot ``strength`` parameter blends output and input; the
hot ``grading`` parameter publishes either the network's pixels, the input graded as it graded, or
that plus local contrast of a per-frame strength (``contrast``: weights with a fitted contrast
model; with other weights it publishes ``global`` and warns).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from snn_perception.ros.base_node import PerceptionNode, image_msg
from snn_perception.ros.executor import run_node
from snn_perception.runtime.engine import EngineResult
from snn_perception.runtime.image_codec import encode_image
from snn_perception.runtime.preprocess import finish_dehaze


class DehazeNode(PerceptionNode):
    task = "dehaze"
    default_name = "dehaze_node"

    def __init__(self, node_name: str | None = None, **kwargs: Any) -> None:
        self._enhanced_pub = None
        super().__init__(node_name, **kwargs)

    def create_outputs(self, qos: QoSProfile) -> None:
        self._enhanced_pub = self.create_lifecycle_publisher(Image, "~/enhanced", qos)

    def destroy_outputs(self) -> None:
        if self._enhanced_pub is not None:
            self.destroy_lifecycle_publisher(self._enhanced_pub)
            self._enhanced_pub = None

    def validate_for_model(self, name: str, value: Any) -> str | None:
        engine = self.engine
        if name == "grading" and value == "contrast" and engine is not None and engine.info.contrast is None:
            return (
                f"grading 'contrast': the loaded weights ({engine.info.weights_path}) carry no contrast "
                "model; use 'global' or 'pixels', or load weights fitted with one (e.g. dhz_v3)"
            )
        return None

    def publish_outputs(self, header: Any, rgb: np.ndarray, result: EngineResult, out_encoding: str) -> None:
        p = self.params
        mono = out_encoding == "mono8"
        engine = self.engine
        contrast = engine.info.contrast if engine is not None else None
        grading = p.grading
        if grading == "contrast" and contrast is None:  # weights swapped (or started) without one
            grading = "global"
            self.get_logger().warning(
                "grading 'contrast': these weights carry no contrast model; publishing 'global'",
                throttle_duration_sec=30.0,
            )
        out = finish_dehaze(result.output, rgb, p.strength, mono, grading, result.stats.model_hw, contrast)
        data, step = encode_image(out, out_encoding)
        self._enhanced_pub.publish(image_msg(header, data, out.shape[0], out.shape[1], out_encoding, step))


def main(args: list[str] | None = None) -> int:
    return run_node(DehazeNode, args)


if __name__ == "__main__":
    sys.exit(main())
