"""Record what the perception nodes publish during a ROS-mode replay, and know when they answered.

Every output image and telemetry message is written, as received (CDR bytes, log time = receive
time), through a bag writer the caller hands in, so this module stays free of any bag library and
of :mod:`snn_perception.replay`. The same callbacks note which (task, kind, header stamp) arrived:
that is what lock-step pacing and the end-of-pass drain wait on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image

from snn_perception.msg import EnergyTelemetry
from snn_perception.runtime.stamps import header_ns

#: the ROS type names the writer registers for the recorded topics
IMAGE_TYPE = "sensor_msgs/msg/Image"
TELEMETRY_TYPE = "snn_perception/msg/EnergyTelemetry"


class SerializedWriter(Protocol):
    """What :class:`Recorder` needs of a bag writer (``replay.bag_io.BagWriter`` is one)."""

    path: Path

    def __enter__(self) -> Any: ...

    def __exit__(self, exc_type: Any, *exc: object) -> None: ...

    def add_topic(self, topic: str, msgtype: str) -> None: ...

    def write_serialized(self, topic: str, data: bytes, log_time_ns: int) -> None: ...


def output_topic(task: str, node: str) -> str:
    """The topic the node ``node`` (fully qualified) publishes its result for ``task`` on."""
    return f"{node}/enhanced" if task == "dehaze" else f"{node}/mask"


class Recorder:
    """Writes every output and telemetry message to the bag of ``writer`` (opened here, closed by
    :meth:`close`) and remembers which (task, kind, header stamp) arrived, for lock-step pacing and
    draining.

    ``targets``: task → fully qualified node name; ``qos_for``: the QoS to subscribe a topic with
    (it matches the publisher's, so a best-effort output is not refused).
    """

    def __init__(
        self,
        node: Node,
        targets: dict[str, str],
        writer: SerializedWriter,
        qos_for: Callable[[str], QoSProfile],
    ) -> None:
        self.node = node
        self.tasks = list(targets)
        self.path = writer.path
        self.lock = threading.Lock()
        self.seen: set[tuple[str, str, int]] = set()
        self.event = threading.Event()
        self.outputs = {task: output_topic(task, fq) for task, fq in targets.items()}
        self.telemetry = {task: f"{fq}/telemetry" for task, fq in targets.items()}
        self.topics: dict[str, tuple[str, str]] = {}  # topic → (task, 'out' | 'tel')
        self.writer = writer
        self.writer.__enter__()
        self._open = True
        self.subs = []
        for task in targets:
            out_topic, tel_topic = self.outputs[task], self.telemetry[task]
            self.topics[out_topic] = (task, "out")
            self.topics[tel_topic] = (task, "tel")
            self.writer.add_topic(out_topic, IMAGE_TYPE)
            self.writer.add_topic(tel_topic, TELEMETRY_TYPE)
            self.subs.append(
                node.create_subscription(Image, out_topic, self._callback(out_topic), qos_for(out_topic))
            )
            self.subs.append(
                node.create_subscription(
                    EnergyTelemetry, tel_topic, self._callback(tel_topic), qos_for(tel_topic)
                )
            )

    def _callback(self, topic: str) -> Callable[[Any], None]:
        task, kind = self.topics[topic]

        def cb(msg: Any) -> None:
            now = time.time_ns()
            stamp = header_ns(msg.header)
            data = serialize_message(msg)
            with self.lock:
                if not self._open:
                    return
                self.writer.write_serialized(topic, data, now)
                self.seen.add((task, kind, stamp))
            self.event.set()

        return cb

    def complete(self, stamp: int) -> bool:
        """Whether every node has sent both its output and its telemetry for the frame ``stamp``."""
        with self.lock:
            return all((t, k, stamp) in self.seen for t in self.tasks for k in ("out", "tel"))

    def wait_for(self, stamp: int, timeout: float) -> None:
        """Wait until the frame ``stamp`` is :meth:`complete`, or ``timeout`` seconds (lock-step)."""
        deadline = time.monotonic() + timeout
        while not self.complete(stamp) and time.monotonic() < deadline:
            self.event.wait(0.05)
            self.event.clear()

    def drain(self, sent: list[int], idle_s: float = 3.0) -> None:
        """Wait until every sent frame has been answered, or nothing new has arrived for ``idle_s``."""
        last_change, seen = time.monotonic(), -1
        while time.monotonic() - last_change < idle_s:
            if all(self.complete(s) for s in sent[-3:]) and all(self.complete(s) for s in sent):
                return
            with self.lock:
                n = len(self.seen)
            if n != seen:
                seen, last_change = n, time.monotonic()
            time.sleep(0.05)

    def close(self) -> None:
        """Stop recording and close the bag (kept, also after an interrupted pass)."""
        for sub in self.subs:
            self.node.destroy_subscription(sub)
        with self.lock:
            self._open = False
            self.writer.__exit__(None, None, None)
