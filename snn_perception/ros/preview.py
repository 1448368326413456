"""``bringup --preview DIR``: the nodes' latest outputs as JPEG files, for people without ROS tools.

A small node subscribes (sensor-data QoS) to the images the perception nodes publish, keeps only
the newest message of each, and every ``period_s`` writes them as ``DIR/<node>_<output>.jpg``
(written to a temporary name, then renamed: a viewer that reloads the file never sees half of
one) with the status line in ``DIR/status.txt``. Subscribing to ``~/overlay`` makes the segment
node draw overlays (it draws them only while someone listens): that costs a little CPU.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from snn_perception.runtime.image_codec import decode_image


class PreviewWriter(Node):
    """Writes the newest image of each topic in ``topics`` (file stem → topic) every ``period_s``."""

    def __init__(self, folder: Path, topics: dict[str, str], period_s: float = 1.0, **kwargs) -> None:
        super().__init__("preview_writer", **kwargs)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.status = ""
        self._latest: dict[str, Image] = {}
        self._lock = threading.Lock()
        for stem, topic in topics.items():
            self.create_subscription(Image, topic, self._keeper(stem), qos_profile_sensor_data)
        self.create_timer(period_s, self.write)

    def _keeper(self, stem: str):
        def keep(msg: Image) -> None:
            with self._lock:
                self._latest[stem] = msg

        return keep

    def write(self) -> list[Path]:
        """Write what arrived since the last call (and ``status.txt``); returns the files written."""
        with self._lock:
            latest, self._latest = self._latest, {}
        written = []
        for stem, msg in latest.items():
            try:
                rgb = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
            except ValueError as exc:
                self.get_logger().warning(f"preview: {stem}: {exc}", throttle_duration_sec=10.0)
                continue
            written.append(self._replace(f"{stem}.jpg", cv2.imencode(".jpg", rgb[..., ::-1])[1].tobytes()))
        if self.status:
            written.append(self._replace("status.txt", (self.status + "\n").encode()))
        return written

    def _replace(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path
