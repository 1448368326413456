"""ROS replay: play a bag into the real lifecycle nodes and score what they publish.

The nodes are started in this process (``nodes='inprocess'``, the default) in a private namespace,
or already running (``nodes='external'``, named by their fully qualified names). A player node
publishes the bag's frames on each node's ``~/image`` (or ``~/image/compressed``), paced by the
bag's stamps scaled by ``rate``; with ``rate=None`` it sends the next frame as soon as every node
has answered the previous one (lock-step: no drops, latency = the nodes' own). Each frame is
re-stamped with the publish time (so the nodes' own end-to-end latencies are meaningful) and
outputs are matched to inputs by that header stamp. With ``clock`` the frames keep their bag
stamps instead and ``/clock`` carries the bag's time (advancing at ``rate`` between frames), as
``ros2 bag play --clock`` does; in-process nodes then run with ``use_sim_time``. Latency is
always measured on the wall clock (publish → receive). Every output and telemetry message is recorded
into an MCAP bag per run under ``<out>/recorded/``.

rclpy and the message packages are imported inside the functions: this module is part of the
ROS-free ``replay`` package and must import without ROS (see ``test/unit/test_layering.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snn_perception.replay import bag_io
from snn_perception.replay.common import (
    ReplayConfig,
    ReplayError,
    ReplayResult,
    RunResult,
    Sample,
    check_weights,
    colorize,
    load_by_stamp,
    overlay,
    resolve_topics,
    score_dehaze,
    score_segment,
)
from snn_perception.replay.report import RECORDED_DIR

#: where the node classes live: task → (module, class name)
NODE_CLASSES: dict[str, tuple[str, str]] = {
    "dehaze": ("snn_perception.ros.dehaze_node", "DehazeNode"),
    "segment": ("snn_perception.ros.segment_node", "SegmentNode"),
}
NODE_NAMES = {"dehaze": "dehaze_node", "segment": "segment_node"}
READY_TIMEOUT_S = 120.0


def ros_mode_ready() -> tuple[bool, str]:
    """Whether rclpy, our interfaces and the node classes can be imported here (and why not)."""
    for mod in ("rclpy", "sensor_msgs.msg", "snn_perception.msg"):
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            return False, f"{mod} cannot be imported ({exc}); source install/setup.bash or run `make setup`"
    if not node_available("dehaze"):
        return False, f"the ROS nodes are not available ({NODE_CLASSES['dehaze'][0]} is missing)"
    return True, ""


def node_available(task: str) -> bool:
    """Whether the node class for ``task`` exists in this install."""
    module, cls = NODE_CLASSES[task]
    try:
        return importlib.util.find_spec(module) is not None and hasattr(importlib.import_module(module), cls)
    except ImportError:
        return False


@dataclass
class _Frame:
    """One bag frame as played: its bag stamp, the header stamp it was sent with (0 = not sent)
    and the wall time it was published at (for latency)."""

    index: int
    bag_stamp: int
    sent_ns: int = 0
    wall_ns: int = 0


class _ClockPublisher:
    """Publishes ``/clock`` (rosgraph_msgs/Clock) with the bag's time, never going backwards.

    Paced playback: bag time = first stamp + elapsed wall time × ``rate`` (one reference for the
    whole pass, as ``ros2 bag play --clock`` does), published ``hz`` times a second and with every
    frame. Lock-step playback (``rate=None``): each frame's stamp, published with the frame.
    """

    def __init__(self, node, rate: float | None, hz: float = 50.0) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock

        self._msg = Clock
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
        from builtin_interfaces.msg import Time

        # under the lock: the clock thread and the player never interleave a smaller value
        self.last = max(self.last, bag_ns)
        stamp = Time(sec=self.last // 1_000_000_000, nanosec=self.last % 1_000_000_000)
        self.pub.publish(self._msg(clock=stamp))

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


class _Recorder:
    """Writes every output and telemetry message to an MCAP bag (log time = receive time) and
    remembers which (task, kind, header stamp) arrived, for lock-step pacing and draining."""

    def __init__(self, node, targets: dict[str, str], bag_path: Path, qos_for) -> None:
        from rclpy.serialization import serialize_message
        from sensor_msgs.msg import Image

        from snn_perception.msg import EnergyTelemetry

        self._ser = serialize_message
        self.path = bag_path
        self.lock = threading.Lock()
        self.seen: set[tuple[str, str, int]] = set()
        self.event = threading.Event()
        self.topics: dict[str, tuple[str, str]] = {}  # topic → (task, 'out' | 'tel')
        self.writer = bag_io.BagWriter(bag_path, "mcap")
        self.writer.__enter__()
        self._open = True
        self.subs = []
        for task, fq in targets.items():
            out_topic = f"{fq}/enhanced" if task == "dehaze" else f"{fq}/mask"
            tel_topic = f"{fq}/telemetry"
            self.topics[out_topic] = (task, "out")
            self.topics[tel_topic] = (task, "tel")
            self.writer.add_topic(out_topic, bag_io.IMAGE_TYPE)
            self.writer.add_topic(tel_topic, bag_io.TELEMETRY_TYPE)
            self.subs.append(
                node.create_subscription(Image, out_topic, self._callback(out_topic), qos_for(out_topic))
            )
            self.subs.append(
                node.create_subscription(
                    EnergyTelemetry, tel_topic, self._callback(tel_topic), qos_for(tel_topic)
                )
            )
        self.node = node

    def _callback(self, topic: str):
        task, kind = self.topics[topic]
        conn = self.writer._connections[topic]

        def cb(msg) -> None:
            now = time.time_ns()
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            data = self._ser(msg)
            with self.lock:
                if not self._open:
                    return
                self.writer._writer.write(conn, now, data)
                self.writer.counts[topic] += 1
                self.seen.add((task, kind, stamp))
            self.event.set()

        return cb

    def complete(self, stamp: int, tasks) -> bool:
        with self.lock:
            return all((t, k, stamp) in self.seen for t in tasks for k in ("out", "tel"))

    def close(self) -> None:
        for sub in self.subs:
            self.node.destroy_subscription(sub)
        with self.lock:
            self._open = False
            self.writer.__exit__(None, None, None)


def _import_node_class(task: str):
    module, cls = NODE_CLASSES[task]
    return getattr(importlib.import_module(module), cls)


def _start_nodes(
    config: ReplayConfig, tasks: list[str], namespace: str, context, compressed: bool, timesteps: int | None
) -> list[Any]:
    """The real lifecycle nodes, configured from ``config``, autostarting to active."""
    from rclpy.parameter import Parameter

    nodes = []
    for task in tasks:
        weights = config.dehaze_weights if task == "dehaze" else config.segment_weights
        params = [
            Parameter("input_transport", value="compressed" if compressed else "raw"),
            Parameter("count_ops", value=bool(config.count_ops)),
            Parameter("device", value=config.device),
            Parameter("autostart", value=True),
        ]
        if config.clock:
            params.append(Parameter("use_sim_time", value=True))
        if weights is not None:
            params.append(Parameter("weights", value=str(weights)))
        if timesteps is not None:
            params.append(Parameter("timesteps", value=int(timesteps)))
        if config.input_hw is not None:
            params += [
                Parameter("input_height", value=int(config.input_hw[0])),
                Parameter("input_width", value=int(config.input_hw[1])),
            ]
        cls = _import_node_class(task)
        nodes.append(cls(namespace=namespace, context=context, parameter_overrides=params))
    return nodes


def _set_timesteps(node, targets: dict[str, str], t: int) -> None:
    """Set the hot ``timesteps`` parameter of every target node through its parameter service."""
    from rcl_interfaces.msg import Parameter as ParamMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    for fq in targets.values():
        client = node.create_client(SetParameters, f"{fq}/set_parameters")
        try:
            if not client.wait_for_service(timeout_sec=10.0):
                raise ReplayError(f"node {fq} offers no set_parameters service")
            req = SetParameters.Request()
            req.parameters = [
                ParamMsg(
                    name="timesteps",
                    value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=int(t)),
                )
            ]
            fut = client.call_async(req)
            deadline = time.monotonic() + 10.0
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not fut.done():
                raise ReplayError(f"setting timesteps={t} on {fq} timed out")
            res = fut.result().results[0]
            if not res.successful:
                raise ReplayError(f"node {fq} refused timesteps={t}: {res.reason}")
        finally:
            node.destroy_client(client)


def _warm_up(player, pubs, targets: dict[str, str], rgb, compressed: bool, frames: int = 2) -> None:
    """Send a few unrecorded frames lock-step before a timed pass, so the pass does not pay for the
    kernel set-up of a new T or a new frame size (its first frames would otherwise be slow and
    push later ones into drops). Their outputs carry stamps no bag frame has and are never scored."""
    from snn_perception.msg import EnergyTelemetry

    seen: set[tuple[str, int]] = set()
    lock = threading.Lock()
    subs = []
    for task, fq in targets.items():

        def cb(msg, task=task) -> None:
            with lock:
                seen.add((task, _stamp(msg.header)))

        subs.append(player.create_subscription(EnergyTelemetry, f"{fq}/telemetry", cb, 10))
    try:
        for _ in range(frames):
            stamp = player.get_clock().now().nanoseconds
            msg = _frame_msg(rgb, stamp, "warmup", compressed)

            def answered(stamp=stamp) -> bool:
                with lock:
                    return all((t, stamp) in seen for t in targets)

            deadline = time.monotonic() + 60.0
            while not answered() and time.monotonic() < deadline:
                for pub in pubs.values():  # resent every 5 s: a frame can be lost before matching
                    pub.publish(msg)
                resend = min(deadline, time.monotonic() + 5.0)
                while not answered() and time.monotonic() < resend:
                    time.sleep(0.01)
    finally:
        for sub in subs:
            player.destroy_subscription(sub)


class _NodeWatch:
    """Why a target node will never serve, so a wait ends at once with the reason, not a timeout.

    In-process nodes say it themselves (``autostart_error``: the configure error); external nodes
    through ``/diagnostics`` (their state and last error).
    """

    def __init__(self, player, targets: dict[str, str], started: list[Any]) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.player, self.targets, self.started = player, targets, started
        self.lock = threading.Lock()
        self.status: dict[str, tuple[str, str]] = {}  # node → (state, last error)
        self.sub = player.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_diagnostics(self, msg) -> None:
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


def _wait(pred, timeout: float, what: str, watch: _NodeWatch | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        failure = watch.failure() if watch is not None else None
        if failure:
            raise ReplayError(failure)
        if time.monotonic() > deadline:
            hint = watch.hint() if watch is not None else ""
            hint = f"; {hint}" if hint else ""
            raise ReplayError(f"timed out after {timeout:.0f} s waiting for {what}{hint}")
        time.sleep(0.05)


def run_ros(
    config: ReplayConfig, nodes: str = "inprocess", external: dict[str, str] | None = None
) -> ReplayResult:
    """Replay through the ROS nodes; rows and report as in offline mode.

    Every weights argument is loaded and checked first, then the bag's topics, and only then are
    nodes started: bad input is refused with its reason, never by a timeout.
    """
    checked = {
        task: check_weights(task, weights)
        for task, enabled, weights in (
            ("dehaze", config.run_dehaze, config.dehaze_weights),
            ("segment", config.run_segment, config.segment_weights),
        )
        if enabled and weights is not None
    }
    ok, why = ros_mode_ready()
    if not ok:
        raise ReplayError(f"--mode ros is unavailable: {why}; use --mode offline")
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CompressedImage, Image

    from snn_perception.ros.executor import PerceptionExecutor

    tasks = _tasks(config, external)
    models = {task: checked.get(task) or _default_model_info(config, task) for task in tasks}
    topics = resolve_topics(config)
    if topics.frames == 0:
        raise ReplayError(f"topic {topics.image!r} in {topics.info.path} holds no messages")
    compressed = topics.info.topics[topics.image].msgtype == bag_io.COMPRESSED_TYPE
    refs = load_by_stamp(config.bag, topics.reference)
    masks = load_by_stamp(config.bag, topics.mask, gray=True)
    result = ReplayResult(config=config, topics=topics, runs=[])
    if "segment" not in tasks:
        why = "segmentation turned off" if not config.run_segment else "no segmentation model available"
        result.notes.append(f"{why}: dehaze only")
    if topics.reference is None:
        result.notes.append("no reference topic: quality is no-reference only (UIQM, UCIQE)")

    context = rclpy.Context()
    # no rclpy SIGINT handler: Ctrl-C must raise KeyboardInterrupt here so a partial report is written
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    executor = PerceptionExecutor(num_threads=4, context=context)
    started: list[Any] = []
    namespace = f"/snn_replay_{os.getpid()}"
    try:
        if nodes == "inprocess":
            first_t = config.timesteps[0] if config.timesteps else None
            started = _start_nodes(config, tasks, namespace, context, compressed, first_t)
            targets = {task: f"{namespace}/{NODE_NAMES[task]}" for task in tasks}
        else:
            targets = {task: external[task] for task in tasks}
        for n in started:
            executor.add_node(n)
        player = rclpy.create_node(f"snn_replay_player_{os.getpid()}", context=context)
        executor.add_node(player)
        watch = _NodeWatch(player, targets, started)
        spin = threading.Thread(target=executor.spin, daemon=True)
        spin.start()

        suffix = "image/compressed" if compressed else "image"
        msg_cls = CompressedImage if compressed else Image
        pub_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {
            task: player.create_publisher(msg_cls, f"{fq}/{suffix}", pub_qos) for task, fq in targets.items()
        }
        _wait(
            lambda: all(p.get_subscription_count() > 0 for p in pubs.values()),
            READY_TIMEOUT_S,
            f"the nodes to subscribe to {', '.join(p.topic_name for p in pubs.values())} (are they active?)",
            watch,
        )
        watch.close()

        def qos_for(topic: str):
            _wait(lambda: player.count_publishers(topic) > 0, READY_TIMEOUT_S, f"a publisher on {topic}")
            infos = player.get_publishers_info_by_topic(topic)
            reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
            if not reliable:
                return qos_profile_sensor_data
            return QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

        result.models = {task: _model_entry(models[task], fq) for task, fq in targets.items()}
        (config.out / RECORDED_DIR).mkdir(parents=True, exist_ok=True)
        images = bag_io.iter_images(config.bag, topics.image)
        first = next((item.rgb for item in images if item.rgb is not None), None)
        images.close()  # the warm-up frame: the bag's first decodable one
        for i, t in enumerate(config.timesteps or (None,)):
            if t is not None and (i > 0 or nodes != "inprocess"):
                _set_timesteps(player, targets, t)
            if first is not None:
                _warm_up(player, pubs, targets, first, compressed)
            run = _play(
                config, topics, player, pubs, targets, qos_for, t, refs, masks, compressed, result.models
            )
            result.runs.append(run)
            if run.interrupted:
                result.interrupted = True
                break
    finally:
        executor.shutdown(timeout_sec=5.0)
        for n in started:
            try:
                n.destroy_node()
            except Exception:
                pass
        rclpy.try_shutdown(context=context)
    return result


def _tasks(config: ReplayConfig, external: dict[str, str] | None) -> list[str]:
    if external is not None:
        return [t for t in ("dehaze", "segment") if t in external]
    tasks = ["dehaze"] if config.run_dehaze else []
    if config.run_segment and config.segment_weights is not None and not node_available("segment"):
        raise ReplayError("--segment-weights given, but the segment node is not available in this install")
    if config.run_segment and node_available("segment"):
        if config.segment_weights is not None:
            tasks.append("segment")
        else:
            from snn_perception.runtime import weights as weights_registry
            from snn_perception.runtime.checkpoint import WeightsError

            try:
                weights_registry.default_weights("segment")
                tasks.append("segment")
            except WeightsError:
                pass
    if not tasks:
        raise ReplayError("no model to run: enable dehaze or give segment weights")
    return tasks


def _default_model_info(config: ReplayConfig, task: str) -> Any:
    """The model a node runs when no weights were given: the task's default (checked like the rest)."""
    return check_weights(task, config.dehaze_weights if task == "dehaze" else config.segment_weights)


def _model_entry(info: Any, node: str) -> dict[str, Any]:
    """What a node runs, as the report lists it (read from the weights file the node loads)."""
    return {
        "node": node,
        "arch": info.arch,
        "variant": info.variant,
        "weights_id": info.weights_id,
        "weights_path": info.weights_path,
        "default_timesteps": info.default_timesteps,
        "class_names": list(info.class_names),
        "class_colors": [list(c) for c in info.class_colors],
        "num_classes": info.num_classes,
    }


def _play(
    config, topics, player, pubs, targets, qos_for, timesteps, refs, masks, compressed, models
) -> RunResult:
    label = f"T={timesteps}" if timesteps is not None else "default"
    run = RunResult(label=label, timesteps=timesteps)
    rec = _Recorder(player, targets, config.out / RECORDED_DIR / label.replace("=", ""), qos_for)
    frames: list[_Frame] = []
    undecodable: dict[int, str] = {}
    clock = player.get_clock()
    sim = _ClockPublisher(player, config.rate) if config.clock else None
    last_stamp = 0
    wall0 = time.perf_counter()
    start_ns = stamp0 = None
    bar = None
    if config.progress:
        from tqdm import tqdm

        bar = tqdm(
            total=topics.frames, desc=f"replay (ros) {label}", unit="frame", leave=False, dynamic_ncols=True
        )
    try:
        for item in bag_io.iter_images(config.bag, topics.image):
            frame = _Frame(index=item.index, bag_stamp=item.stamp_ns)
            frames.append(frame)
            if bar is not None:
                bar.update(1)
            if item.rgb is None:
                undecodable[item.index] = item.error or "undecodable"
                continue
            if config.rate is not None:
                if stamp0 is None:
                    stamp0, start_ns = item.stamp_ns, time.monotonic_ns()
                delay = (start_ns + (item.stamp_ns - stamp0) / config.rate - time.monotonic_ns()) / 1e9
                if delay > 0:
                    time.sleep(delay)
            if sim is not None:  # bag time; strictly increasing, as outputs are matched by stamp
                stamp = last_stamp = max(item.stamp_ns, last_stamp + 1)
                sim.publish(stamp)
            else:
                stamp = clock.now().nanoseconds
            msg = _frame_msg(item.rgb, stamp, item.frame_id or "camera", compressed)
            frame.sent_ns = stamp
            frame.wall_ns = time.time_ns()  # the recorder logs receive times on the same clock
            for pub in pubs.values():
                pub.publish(msg)
            if config.rate is None:  # lock-step: wait for every node's answer (or give up after 30 s)
                _wait_for(rec, lambda f=frame: rec.complete(f.sent_ns, targets), 30.0)
        if sim is not None:
            sim.close()  # bag time ends with the bag, as with `ros2 bag play --clock`
        _drain(rec, frames, targets)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        if bar is not None:
            bar.close()
        run.wall_s = time.perf_counter() - wall0
        if sim is not None:
            sim.close()
        rec.close()
    _rows(run, frames, undecodable, refs, masks, config, models, rec.path, targets, topics)
    return run


def _frame_msg(rgb, stamp_ns: int, frame_id: str, compressed: bool):
    """One frame as the ROS message the nodes subscribe to (JPEG when the bag is compressed)."""
    return _to_ros(bag_io.image_message(rgb, stamp_ns, frame_id, "jpeg" if compressed else None), compressed)


def _to_ros(msg, compressed: bool):
    """A rosbags message → the rclpy message of the same type (same CDR bytes)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage, Image

    mtype = bag_io.COMPRESSED_TYPE if compressed else bag_io.IMAGE_TYPE
    raw = bytes(bag_io.typestore().serialize_cdr(msg, mtype))
    return deserialize_message(raw, CompressedImage if compressed else Image)


def _wait_for(rec: _Recorder, pred, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        rec.event.wait(0.05)
        rec.event.clear()


def _drain(rec: _Recorder, frames: list[_Frame], targets: dict[str, str], idle_s: float = 3.0) -> None:
    """Wait until every sent frame has been answered, or nothing new has arrived for ``idle_s``."""
    last_change, seen = time.monotonic(), -1
    sent = [f.sent_ns for f in frames if f.sent_ns]
    while time.monotonic() - last_change < idle_s:
        if all(rec.complete(s, targets) for s in sent[-3:]) and all(rec.complete(s, targets) for s in sent):
            return
        with rec.lock:
            n = len(rec.seen)
        if n != seen:
            seen, last_change = n, time.monotonic()
        time.sleep(0.05)


def _telemetry_columns(tel, prefix: str) -> dict[str, Any]:
    counted = bool(tel.ops_counted)
    return {
        f"{prefix}timesteps": int(tel.timesteps),
        f"{prefix}weights_id": str(tel.weights_id),  # what the node really ran (external nodes)
        f"{prefix}inference_ms": float(tel.inference_ms),
        f"{prefix}engine_ms": float(tel.preprocess_ms + tel.inference_ms + tel.postprocess_ms),
        f"{prefix}node_end_to_end_ms": float(tel.end_to_end_ms),
        f"{prefix}queue_wait_ms": float(tel.queue_wait_ms),
        f"{prefix}cpu_time_ms": float(tel.cpu_time_ms),
        f"{prefix}synaptic_ops": float(tel.synaptic_ops) if counted else math.nan,
        f"{prefix}analog_macs": float(tel.analog_macs) if counted else math.nan,
        f"{prefix}energy_j": float(tel.energy_j) if counted else math.nan,
        f"{prefix}spike_rate": float(tel.mean_spike_rate) if counted else math.nan,
    }


def _stamp(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _rows(run, frames, undecodable, refs, masks, config, models, recorded: Path, targets, topics) -> None:
    """Match the recorded outputs to the inputs by header stamp and score them.

    Outputs are read back from the recorded bag in recording order, merged with the input bag
    (both in send order), so memory stays bounded by one frame per node.
    """
    out_topics = {
        task: f"{fq}/enhanced" if task == "dehaze" else f"{fq}/mask" for task, fq in targets.items()
    }
    telemetry: dict[tuple[str, int], Any] = {}
    tel_topics = {f"{fq}/telemetry": task for task, fq in targets.items()}
    for topic, _mtype, _log_ns, msg in bag_io.iter_messages(recorded, list(tel_topics)):
        telemetry[(tel_topics[topic], _stamp(msg.header))] = msg
    streams = {task: bag_io.iter_images(recorded, topic) for task, topic in out_topics.items()}
    pending: dict[str, bag_io.BagImage | None] = {task: next(it, None) for task, it in streams.items()}
    by_index = {f.index: f for f in frames}
    sample_idx = (
        set(np.linspace(0, len(frames) - 1, min(config.samples, len(frames))).round().astype(int))
        if config.samples > 0 and frames
        else set()
    )
    t0 = next((f.wall_ns for f in frames if f.wall_ns), 0)
    for item in bag_io.iter_images(config.bag, topics.image):
        f = by_index.get(item.index)
        if f is None:  # interrupted before this frame was played
            break
        row: dict[str, Any] = {
            "index": f.index,
            "stamp_ns": f.bag_stamp,
            "sent_stamp_ns": f.sent_ns,
            "time_s": (f.wall_ns - t0) / 1e9 if f.wall_ns else math.nan,
            "has_reference": f.bag_stamp in refs,
        }
        if f.index in undecodable or item.rgb is None:
            row.update(status="undecodable", error=undecodable.get(f.index, item.error))
            run.rows.append(row)
            continue
        raw = item.rgb
        sample = Sample(index=f.index, raw=raw) if f.index in sample_idx else None
        for task in targets:
            prefix = "" if task == "dehaze" else "seg_"
            out = pending[task]
            while out is not None and out.stamp_ns < f.sent_ns:  # outputs of frames sent earlier (late)
                out = pending[task] = next(streams[task], None)
            if out is None or out.stamp_ns != f.sent_ns or out.rgb is None:
                row[f"{prefix}status"] = "dropped"
                continue
            pending[task] = next(streams[task], None)
            row[f"{prefix}status"] = "ok"
            row[f"{prefix}end_to_end_ms"] = (out.log_time_ns - f.wall_ns) / 1e6
            tel = telemetry.get((task, f.sent_ns))
            if tel is not None:
                row.update(_telemetry_columns(tel, prefix))
            if task == "dehaze":
                row.update(score_dehaze(raw, out.rgb, refs.get(f.bag_stamp), config.nr_metrics))
                if sample is not None:
                    sample.enhanced = out.rgb
            else:
                mask = out.rgb[..., 0]
                info = models[task]
                names = tuple(info.get("class_names", ()))
                n_cls = int(info.get("num_classes") or len(names) or int(mask.max()) + 1)
                seg_row, conf = score_segment(mask, names, n_cls, masks.get(f.bag_stamp))
                row.update(seg_row)
                if conf is not None:
                    run.confusion = conf if run.confusion is None else run.confusion + conf
                if sample is not None:
                    colors = tuple(tuple(c) for c in info.get("class_colors", ()))
                    sample.mask_color = overlay(raw, colorize(mask, colors))
        if sample is not None:
            sample.reference = refs.get(f.bag_stamp)
            run.samples.append(sample)
        run.rows.append(row)
