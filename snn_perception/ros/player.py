"""Everything rclpy that ROS-mode replay needs, so that ``snn_perception.replay`` never imports ROS.

:func:`open_session` gives a private rclpy context holding the target perception nodes (started
here, or already running elsewhere) and a player node that publishes frames on their ``~/image``
(or ``~/image/compressed``), spun by a :class:`PerceptionExecutor` on a thread. On it the replay
sets ``timesteps``, warms the nodes up, publishes frames (and ``/clock``) and records the answers
(:class:`snn_perception.ros.recorder.Recorder`). Frames arrive as CDR bytes, so the bag library
stays on the replay side; scoring and the report stay there too.

Failures are :class:`PlayerError` with the reason a user can act on (the replay turns them into
its own error, exit code 2). This module imports nothing from replay, offline or commands.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image

from snn_perception.msg import EnergyTelemetry
from snn_perception.ros import node_inputs
from snn_perception.ros.executor import PerceptionExecutor
from snn_perception.ros.recorder import Recorder, SerializedWriter
from snn_perception.runtime.stamps import header_ns, split_ns

#: how long to wait for the nodes to subscribe (and for their output publishers)
READY_TIMEOUT_S = 120.0


class PlayerError(RuntimeError):
    """The nodes cannot be played to (a node failed to configure, a service timed out, …)."""


def node_class(task: str) -> type:
    """The lifecycle node class for ``task``; imported here, so an install without one still plays
    the other (ImportError when it is missing)."""
    if task == "dehaze":
        from snn_perception.ros.dehaze_node import DehazeNode

        return DehazeNode
    from snn_perception.ros.segment_node import SegmentNode

    return SegmentNode


def node_available(task: str) -> bool:
    """Whether the node class for ``task`` exists in this install."""
    try:
        node_class(task)
    except ImportError:
        return False
    return True


def ready() -> tuple[bool, str]:
    """Whether the nodes can be started here (and why not); rclpy and the messages imported already."""
    if not node_available("dehaze"):
        return False, "the ROS nodes are not available (snn_perception.ros.dehaze_node is missing)"
    return True, ""


def to_ros(raw: bytes, compressed: bool) -> Image | CompressedImage:
    """CDR bytes of a ``sensor_msgs`` Image (or CompressedImage) → the rclpy message."""
    return deserialize_message(raw, CompressedImage if compressed else Image)


class ClockPublisher:
    """Publishes ``/clock`` (rosgraph_msgs/Clock) with the bag's time, never going backwards.

    Paced playback: bag time = first stamp + elapsed wall time × ``rate`` (one reference for the
    whole pass, as ``ros2 bag play --clock`` does), published ``hz`` times a second and with every
    frame. Lock-step playback (``rate=None``): each frame's stamp, published with the frame.
    """

    def __init__(self, node: Node, rate: float | None, hz: float = 50.0) -> None:
        self.pub = node.create_publisher(
            Clock, "/clock", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        )
        self.rate, self.period = rate, 1.0 / hz
        self.lock = threading.Lock()
        self.anchor: tuple[int, int] | None = None  # (bag ns, monotonic ns) of the first frame
        self.last = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True) if rate is not None else None
        if self.thread is not None:
            self.thread.start()

    def _now(self) -> int | None:
        if self.anchor is None or self.rate is None:
            return None
        return self.anchor[0] + int((time.monotonic_ns() - self.anchor[1]) * self.rate)

    def _send(self, bag_ns: int) -> None:
        # under the lock: the clock thread and the player never interleave a smaller value
        self.last = max(self.last, bag_ns)
        sec, nanosec = split_ns(self.last)
        stamp = Time(sec=sec, nanosec=nanosec)
        self.pub.publish(Clock(clock=stamp))

    def publish(self, bag_ns: int) -> None:
        """The frame with stamp ``bag_ns`` is about to be sent."""
        with self.lock:
            if self.anchor is None:
                self.anchor = (bag_ns, time.monotonic_ns())
            self._send(max(bag_ns, self._now() or 0))

    def _loop(self) -> None:
        while not self.stop.wait(self.period):
            with self.lock:
                now = self._now()
                if now is not None:
                    self._send(now)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=2.0)


class NodeWatch:
    """Why a target node will never serve, so a wait ends at once with the reason, not a timeout.

    In-process nodes say it themselves (``autostart_error``: the configure error); external nodes
    through ``/diagnostics`` (their state and last error).
    """

    def __init__(self, player: Node, targets: dict[str, str], started: list[Any]) -> None:
        self.player, self.targets, self.started = player, targets, started
        self.lock = threading.Lock()
        self.status: dict[str, tuple[str, str]] = {}  # node → (state, last error)
        self.sub = player.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        nodes = set(self.targets.values())
        for st in msg.status:
            node = str(st.name).split(": ")[0]
            if node in nodes:
                values = {kv.key: kv.value for kv in st.values}
                with self.lock:
                    self.status[node] = (values.get("state", ""), values.get("last error", ""))

    def failure(self) -> str | None:
        """'<node>: <configure error>' for every node that failed to configure, or None."""
        errors = [f"{n.get_name()}: {n.autostart_error}" for n in self.started if n.autostart_error]
        with self.lock:
            errors += [
                f"{node}: {error}"
                for node, (state, error) in self.status.items()
                if state in ("unconfigured", "finalized") and error.startswith("configure failed")
            ]
        return "; ".join(errors) or None

    def hint(self) -> str:
        """What the nodes report, for a timeout message."""
        if self.started:
            return ""
        parts = []
        with self.lock:
            for node in self.targets.values():
                if node not in self.status:
                    parts.append(f"no /diagnostics from {node} (is it running?)")
                else:
                    state, error = self.status[node]
                    parts.append(f"{node} is {state}" + (f" (last error: {error})" if error else ""))
        return "; ".join(parts)

    def close(self) -> None:
        self.player.destroy_subscription(self.sub)


def wait_until(pred: Callable[[], bool], timeout: float, what: str, watch: NodeWatch | None = None) -> None:
    """Poll ``pred``; a node's known failure ends the wait at once, a timeout names ``what``."""
    deadline = time.monotonic() + timeout
    while not pred():
        failure = watch.failure() if watch is not None else None
        if failure:
            raise PlayerError(failure)
        if time.monotonic() > deadline:
            hint = watch.hint() if watch is not None else ""
            hint = f"; {hint}" if hint else ""
            raise PlayerError(f"timed out after {timeout:.0f} s waiting for {what}{hint}")
        time.sleep(0.05)


def start_nodes(params: dict[str, dict[str, Any]], namespace: str, context: rclpy.Context) -> list[Any]:
    """The real lifecycle nodes, one per task of ``params`` (task → parameter overrides, plain values)."""
    return [
        node_class(task)(
            namespace=namespace,
            context=context,
            parameter_overrides=[Parameter(name, value=value) for name, value in overrides.items()],
        )
        for task, overrides in params.items()
    ]


class Session:
    """The player node and its publishers to the target nodes (task → fully qualified name)."""

    def __init__(
        self,
        player: Node,
        targets: dict[str, str],
        compressed: bool,
        ready_timeout_s: float,
        inputs: dict[str, str] | None = None,
    ) -> None:
        """``inputs``: task → the topic its node reads (default ``<node>/image[/compressed]``); a
        task left out is fed by another target (the segmenter reading the dehazer's output)."""
        self.player, self.targets = player, targets
        self.compressed, self.ready_timeout_s = compressed, ready_timeout_s
        self.clock = player.get_clock()
        self._params: dict[str, AsyncParameterClient] = {}
        suffix = "image/compressed" if compressed else "image"
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        msg_cls = CompressedImage if compressed else Image
        if inputs is None:
            inputs = {task: f"{fq}/{suffix}" for task, fq in targets.items()}
        self.pubs: dict[str, Publisher] = {
            task: player.create_publisher(msg_cls, topic, qos) for task, topic in inputs.items()
        }

    def wait_for_subscribers(self, watch: NodeWatch) -> None:
        """Until every node subscribes to its input (they are active), or one failed to configure."""
        topics = ", ".join(p.topic_name for p in self.pubs.values())
        wait_until(
            lambda: all(p.get_subscription_count() > 0 for p in self.pubs.values()),
            self.ready_timeout_s,
            f"the nodes to subscribe to {topics} (are they active?)",
            watch,
        )

    def qos_for(self, topic: str) -> QoSProfile:
        """A subscription QoS matching ``topic``'s publishers (best-effort ones get sensor-data QoS)."""
        wait_until(
            lambda: self.player.count_publishers(topic) > 0, self.ready_timeout_s, f"a publisher on {topic}"
        )
        infos = self.player.get_publishers_info_by_topic(topic)
        if not all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos):
            return qos_profile_sensor_data
        return QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

    def set_timesteps(self, t: int) -> None:
        """Set the hot ``timesteps`` parameter of every target node through its parameter service."""
        self.set_parameters(timesteps=int(t))

    def set_parameters(self, **values: Any) -> None:
        """Set hot parameters (e.g. ``timesteps``, ``latency_budget_ms``) of every target node."""
        for fq in self.targets.values():
            client = self._params.get(fq)
            if client is None:  # rclpy's own client, kept for the session (one per node)
                client = self._params[fq] = AsyncParameterClient(self.player, fq)
            if not client.wait_for_services(timeout_sec=10.0):
                raise PlayerError(f"node {fq} offers no set_parameters service")
            fut = client.set_parameters([Parameter(k, value=v) for k, v in values.items()])
            deadline = time.monotonic() + 10.0  # the executor thread completes the future
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not fut.done():
                raise PlayerError(f"setting {_kv(values)} on {fq} timed out")
            for res in fut.result().results:
                if not res.successful:
                    raise PlayerError(f"node {fq} refused {_kv(values)}: {res.reason}")

    def warm_up(self, encode: Callable[[int], bytes], frames: int = 2) -> None:
        """Send a few unrecorded frames lock-step before a timed pass, so the pass does not pay for the
        kernel set-up of a new T or a new frame size (its first frames would otherwise be slow and
        push later ones into drops). ``encode``: header stamp → the frame's CDR bytes. Their outputs
        carry stamps no bag frame has and are never scored."""
        seen: set[tuple[str, int]] = set()
        lock = threading.Lock()
        subs = []
        for task, fq in self.targets.items():

            def cb(msg: EnergyTelemetry, task: str = task) -> None:
                with lock:
                    seen.add((task, header_ns(msg.header)))

            subs.append(self.player.create_subscription(EnergyTelemetry, f"{fq}/telemetry", cb, 10))
        try:
            for _ in range(frames):
                stamp = self.now_ns()
                msg = self.message(encode(stamp))

                def answered(stamp: int = stamp) -> bool:
                    with lock:
                        return all((t, stamp) in seen for t in self.targets)

                deadline = time.monotonic() + 60.0
                while not answered() and time.monotonic() < deadline:
                    self.publish(msg)  # resent every 5 s: a frame can be lost before matching
                    resend = min(deadline, time.monotonic() + 5.0)
                    while not answered() and time.monotonic() < resend:
                        time.sleep(0.01)
        finally:
            for sub in subs:
                self.player.destroy_subscription(sub)

    def now_ns(self) -> int:
        """The player's ROS time (wall time, or ``/clock`` under ``use_sim_time``) in nanoseconds."""
        return self.clock.now().nanoseconds

    def message(self, raw: bytes) -> Image | CompressedImage:
        """A frame's CDR bytes → the message the nodes subscribe to."""
        return to_ros(raw, self.compressed)

    def publish(self, msg: Image | CompressedImage) -> None:
        """Send one frame to every target node."""
        for pub in self.pubs.values():
            pub.publish(msg)

    def recorder(self, writer: SerializedWriter) -> Recorder:
        """Start recording every node's output and telemetry into ``writer``'s bag."""
        return Recorder(self.player, self.targets, writer, self.qos_for)

    def clock_publisher(self, rate: float | None) -> ClockPublisher:
        """``/clock`` with the bag's time (see :class:`ClockPublisher`)."""
        return ClockPublisher(self.player, rate)


@contextmanager
def open_session(
    compressed: bool,
    params: dict[str, dict[str, Any]] | None = None,
    external: dict[str, str] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[Session]:
    """A session whose target nodes subscribe to their input; everything torn down on exit.

    ``params`` (task → parameter overrides): start those nodes here, in a private namespace;
    else ``external`` (task → fully qualified node name): nodes already running. rclpy installs no
    SIGINT handler here: Ctrl-C must raise KeyboardInterrupt so the caller writes a partial report.
    """
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    executor = PerceptionExecutor(num_threads=4, context=context)
    started: list[Any] = []
    player, spinner = None, None
    try:
        if params is not None:
            started = start_nodes(params, f"/snn_replay_{os.getpid()}", context)
            targets = {task: n.get_fully_qualified_name() for task, n in zip(params, started, strict=True)}
        else:
            targets = dict(external or {})
        for n in started:
            executor.add_node(n)
        player = rclpy.create_node(f"snn_replay_player_{os.getpid()}", context=context)
        executor.add_node(player)
        watch = NodeWatch(player, targets, started)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        inputs = None  # in-process nodes read their own ~/image
        if params is None:  # running nodes read what they were remapped to (ros2 launch)
            try:
                inputs = node_inputs.discover(player, targets, compressed, ready_timeout_s, watch.failure)
            except node_inputs.InputError as exc:
                raise PlayerError(str(exc)) from None
        session = Session(player, targets, compressed, ready_timeout_s, inputs)
        session.wait_for_subscribers(watch)
        watch.close()
        yield session
    finally:
        executor.shutdown(timeout_sec=5.0)
        for n in [*started, *([player] if player is not None else [])]:
            try:
                n.destroy_node()
            except Exception:
                pass
        rclpy.try_shutdown(context=context)
        if spinner is not None:  # a spin thread still in rcl at interpreter exit aborts the process
            spinner.join(timeout=5.0)


def _kv(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
