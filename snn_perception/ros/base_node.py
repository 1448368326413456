"""The lifecycle base shared by the dehaze and segment nodes: frames in, model, telemetry out.

What lives here and not in the subclasses: parameters (declared with descriptors, validated on
set), the image subscription (sensor-data QoS, depth 1, raw or compressed), a one-frame slot that
a worker thread drains so only the newest frame is processed and overwritten ones are counted,
the engine and its hot swap (``~/load_model``), telemetry from :class:`FrameStats`, and
``/diagnostics`` at 1 Hz. A subclass says which task it runs and what it publishes.

Threads: the executor only receives frames and serves services; inference runs in the worker, so
lifecycle, parameter and load-model services answer while a frame is being processed.
"""

from __future__ import annotations

import gc
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from snn_perception.models.timesteps import MAX_TIMESTEPS
from snn_perception.msg import EnergyTelemetry
from snn_perception.ros import parameters, params_file
from snn_perception.ros.diagnostics import BudgetStats, FrameCounters, diagnostic_values
from snn_perception.ros.param_types import ClearTypeRefusals
from snn_perception.ros.telemetry import describe, telemetry_msg, timesteps_in_use
from snn_perception.runtime.budget import Budget
from snn_perception.runtime.engine import Engine, EngineConfig, EngineResult
from snn_perception.runtime.image_codec import (
    ImageDecodeError,
    decode_compressed,
    decode_image,
    output_encoding,
)
from snn_perception.runtime.stamps import header_ns
from snn_perception.runtime.weights import WeightsError, default_weights, name_for
from snn_perception.srv import LoadModel

_UNSUPPORTED_SEQ = (0, 2**64 - 1)
_MAX_PUBLISHERS_TRACKED = 64  # sequence numbers are per publisher; forget the oldest beyond this


@dataclass
class Frame:
    """A received message waiting for the worker."""

    msg: Any
    compressed: bool
    t_recv: float  # perf_counter at reception


class PerceptionNode(ClearTypeRefusals, LifecycleNode):
    """Lifecycle node running one ``runtime.engine`` model on a camera topic."""

    task: str = ""
    default_name: str = ""

    def __init__(self, node_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(node_name or self.default_name, **kwargs)
        self.params = parameters.declare(self, self.task)
        # rclpy keeps every value given on the command line or in a parameter file here, declared or not
        for warning in params_file.misspelt(
            getattr(self, "_parameter_overrides", {}), parameters.schema(self.task)
        ):
            self.get_logger().warning(warning)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self.counters = FrameCounters()
        self.budget_stats = BudgetStats()
        self._engine: Engine | None = None
        self._state = "unconfigured"
        self._slot: Frame | None = None
        self._slot_cv = threading.Condition()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._sub = None
        self._last_seq: dict[bytes | None, int] = {}  # publisher gid → its last sequence number
        self._last_input_hw: tuple[int, int] | None = None  # a hot-swapped model warms up at this size
        self._telemetry_pub = None
        self._load_lock = threading.Lock()
        # frames and services in their own groups: a long load_model never delays frames or lifecycle
        self._frame_group = MutuallyExclusiveCallbackGroup()
        self._service_group = ReentrantCallbackGroup()
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(
            1.0, self._publish_diagnostics, callback_group=self._service_group
        )
        self._load_srv = self.create_service(
            LoadModel, "~/load_model", self._on_load_model, callback_group=self._service_group
        )
        self._autostart_timer = None
        self.autostart_error: str | None = None  # why the automatic configure failed, if it did
        if self.params.autostart:
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # -- subclass hooks ----------------------------------------------------------------------

    def create_outputs(self, qos: QoSProfile) -> None:
        """Create the task's lifecycle publishers."""
        raise NotImplementedError

    def destroy_outputs(self) -> None:
        raise NotImplementedError

    def publish_outputs(self, header: Any, rgb: np.ndarray, result: EngineResult, out_encoding: str) -> None:
        raise NotImplementedError

    def validate_for_model(self, name: str, value: Any) -> str | None:
        """Why ``value`` does not fit the loaded model (None = fine); checks that need the model."""
        return None

    # -- parameters --------------------------------------------------------------------------

    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            reason = (
                parameters.validate(p.name, p.value, self.task)
                or parameters.check_change(p.name, getattr(self.params, p.name, p.value), p.value)
                or self.validate_for_model(p.name, p.value)
            )
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list[Parameter]) -> None:
        cold = []
        for p in params:
            if p.name in parameters.FIELD_NAMES:
                value = p.value
                setattr(self.params, p.name, list(value) if isinstance(value, (list, tuple)) else value)
                spec = next((s for s in parameters.SPECS if s.name == p.name), None)
                if spec is not None and not spec.hot:
                    cold.append(p.name)
        if cold and self._state != "unconfigured" and not self._load_lock.locked():
            self.get_logger().info(
                f"{', '.join(cold)} changed: applies at the next configure/activate (or use ~/load_model)"
            )

    # -- lifecycle ---------------------------------------------------------------------------

    def _autostart(self) -> None:
        if self._autostart_timer is not None:
            self._autostart_timer.cancel()
            self.destroy_timer(self._autostart_timer)
            self._autostart_timer = None
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()
        else:  # stays unconfigured (a lifecycle manager may fix it); bringup exits on this
            self.autostart_error = self.counters.last_error or "configure failed"

    def _fail(self, message: str) -> TransitionCallbackReturn:
        self.get_logger().error(message)
        self.counters.last_error = message
        self.counters.last_error_time = time.monotonic()
        return TransitionCallbackReturn.FAILURE

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.params = parameters.read(self, self.task)
        reasons = parameters.check_all(self.params, self.task)
        if reasons:
            return self._fail("configure failed: " + "; ".join(reasons))
        try:
            engine = self.load_engine(self.params.weights)
        except Exception as exc:
            return self._fail(
                f"configure failed: cannot load weights {self.params.weights or '(default)'!r}: {exc}"
            )
        self._engine = engine
        outputs_qos = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
        )
        self.create_outputs(outputs_qos)
        self._telemetry_pub = self.create_lifecycle_publisher(EnergyTelemetry, "~/telemetry", 10)
        info = engine.info
        self.get_logger().info(
            f"configured: {describe(info, self.params.timesteps)} weights "
            f"{self._weights_name(self.params.weights)} ({info.weights_id}) on {engine.device}"
        )
        self._state = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ret = super().on_activate(state)  # enables the lifecycle publishers
        self.counters.reset()
        self.budget_stats.reset()
        self._last_seq.clear()
        self._stop.clear()
        p = self.params
        qos = QoSProfile(
            depth=p.qos_depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE
            if p.qos_reliability == "reliable"
            else ReliabilityPolicy.BEST_EFFORT,
        )
        compressed = p.input_transport == "compressed"
        self._sub = self.create_subscription(
            CompressedImage if compressed else Image,
            "~/image/compressed" if compressed else "~/image",
            lambda msg, info: self._on_frame(msg, info, compressed),
            qos,
            callback_group=self._frame_group,
        )
        self._worker = threading.Thread(target=self._work, name=f"{self.get_name()}_worker", daemon=True)
        self._worker.start()
        self._state = "active"
        self.get_logger().info(f"active: listening on {self._sub.topic_name}")
        return ret

    def _stop_processing(self) -> None:
        if self._sub is not None:
            self.destroy_subscription(self._sub)
            self._sub = None
        self._stop.set()
        with self._slot_cv:
            self._slot = None
            self._slot_cv.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            self._worker = None

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._state = "inactive"
        self.get_logger().info("inactive: incoming frames are ignored until activate")
        return super().on_deactivate(state)

    def _release(self) -> None:
        if self._telemetry_pub is not None:
            self.destroy_lifecycle_publisher(self._telemetry_pub)
            self._telemetry_pub = None
        self.destroy_outputs()
        self._engine = None
        gc.collect()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._load_lock:  # a load_model in flight finishes first, then its model is released too
            self._release()
            self._state = "unconfigured"
        self.get_logger().info("unconfigured: model released (configure loads the weights parameter)")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        self.get_logger().info("finalized: model released; the process runs on until it is stopped")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def teardown(self) -> None:
        """Stop the worker and free the model, whatever the state (shutdown, Ctrl-C)."""
        self._stop_processing()
        with self._load_lock:
            if self._engine is not None or self._telemetry_pub is not None:
                self._release()
            self._state = "finalized"

    # -- model -------------------------------------------------------------------------------

    def load_engine(self, weights: str, warmup_hw: tuple[int, int] | None = None) -> Engine:
        """Load and warm up ``weights`` ('' = the task's default) with the current parameters."""
        p = self.params
        config = EngineConfig(device=p.device, count_ops=p.count_ops, input_hw=p.input_hw)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            engine = Engine.load(weights or None, config, task=self.task)
        for w in caught:
            self.get_logger().warning(str(w.message))
        engine.warmup(hw=warmup_hw)
        return engine

    def _weights_name(self, weights: str) -> str:
        """What an operator typed, or the default's name: the log says which weights, not only a hash."""
        if weights:
            return weights
        try:
            return default_weights(self.task)
        except WeightsError:
            return "(default)"

    @property
    def engine(self) -> Engine | None:
        return self._engine

    def _on_load_model(self, req: LoadModel.Request, resp: LoadModel.Response) -> LoadModel.Response:
        old = self._engine
        if old is None or self._state not in ("inactive", "active"):
            resp.success, resp.message = False, f"{self.get_name()} is {self._state}: configure it first"
            return resp
        if not 0 <= req.timesteps <= MAX_TIMESTEPS:
            resp.success, resp.message = False, f"timesteps {req.timesteps} out of range 0..64 (0 = default)"
            return self._describe(resp, old)
        if req.weights:
            reason = parameters.validate("weights", req.weights, self.task)
        else:
            names = ", ".join(parameters.task_weights(self.task))
            reason = f"weights is empty; give a model name ({names}) or a checkpoint path"
        if reason is not None:
            resp.success, resp.message = False, f"{reason}; still serving {old.info.weights_id}"
            return self._describe(resp, old)
        if not self._load_lock.acquire(blocking=False):
            busy = "another load_model or a lifecycle transition is in progress; try again"
            resp.success, resp.message = False, busy
            return self._describe(resp, old)
        try:
            if self._engine is None or self._state not in ("inactive", "active"):  # cleaned up meanwhile
                resp.success, resp.message = False, f"{self.get_name()} is {self._state}: configure it first"
                return resp
            try:
                new = self.load_engine(req.weights, warmup_hw=self._last_input_hw)
            except Exception as exc:
                msg = f"load_model {req.weights!r} failed, still serving {old.info.weights_id}: {exc}"
                self.counters.last_error, self.counters.last_error_time = msg, time.monotonic()
                self.get_logger().error(msg)
                resp.success, resp.message = False, msg
                return self._describe(resp, old)
            self._engine = new  # the worker picks it up at its next frame
            self.set_parameters(
                [
                    Parameter("weights", value=str(req.weights)),
                    Parameter("timesteps", value=int(req.timesteps)),
                ]
            )
            resp.success = True
            serving = describe(new.info, req.timesteps)
            resp.message = f"now serving {serving} weights {req.weights} ({new.info.weights_id})"
            self.get_logger().info(resp.message)
            return self._describe(resp, new)
        finally:
            self._load_lock.release()

    def _describe(self, resp: LoadModel.Response, engine: Engine) -> LoadModel.Response:
        resp.model_name, resp.model_variant = engine.info.arch, engine.info.variant
        resp.weights_id = engine.info.weights_id
        resp.timesteps = timesteps_in_use(engine.info, self.params.timesteps)
        return resp

    # -- frames ------------------------------------------------------------------------------

    def _on_frame(self, msg: Any, info: dict, compressed: bool) -> None:
        t = time.perf_counter()
        seq = int(info.get("publication_sequence_number") or 0) if info else 0
        gid = info.get("publisher_gid") if info else None
        publisher = bytes(gid["data"]) if isinstance(gid, dict) and gid.get("data") is not None else None
        with self._slot_cv:
            lost = 0
            if seq not in _UNSUPPORTED_SEQ:
                # gaps in one publisher's sequence: frames the middleware dropped before our callback
                # (each publisher numbers its own messages: a camera and a bag replay may share a topic)
                last = self._last_seq.pop(publisher, None)
                if last is not None and last < seq <= last + 100_000:
                    lost = seq - last - 1
                self._last_seq[publisher] = seq  # re-inserted last: the dict is ordered by recent use
                if len(self._last_seq) > _MAX_PUBLISHERS_TRACKED:
                    del self._last_seq[next(iter(self._last_seq))]
            overwritten = 1 if self._slot is not None else 0
            self.counters.add(received=1, overwritten=overwritten, lost=lost)
            self._slot = Frame(msg, compressed, t)
            self._slot_cv.notify()

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._slot_cv:
                if self._slot is None:
                    self._slot_cv.wait(timeout=0.5)
                frame, self._slot = self._slot, None
            if frame is not None and not self._stop.is_set():
                try:
                    self._process(frame)
                except Exception as exc:
                    self._reject("failed", f"processing failed: {type(exc).__name__}: {exc}")

    def _reject(self, kind: str, message: str) -> None:
        self.counters.error(kind, message)
        self.get_logger().error(message, throttle_duration_sec=2.0)

    def _decode(self, frame: Frame) -> tuple[np.ndarray, str]:
        msg, limit = frame.msg, self.params.max_input_pixels
        if frame.compressed:
            rgb = decode_compressed(msg.format, msg.data, limit)
            return rgb, "bgr8" if msg.format.strip().lower().startswith("bgr") else "rgb8"
        rgb = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data, limit)
        return rgb, output_encoding(msg.encoding)

    def _process(self, frame: Frame) -> None:
        t_pick = time.perf_counter()
        cpu0 = time.process_time()
        engine = self._engine
        if engine is None:
            return
        try:
            rgb, out_encoding = self._decode(frame)
        except ImageDecodeError as exc:
            topic = self._sub.topic_name if self._sub is not None else "~/image"
            self._reject("rejected", f"{topic}: frame dropped: {exc}")
            return
        t_decoded = time.perf_counter()
        self._last_input_hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        p = self.params
        budget = None
        if p.latency_budget_ms > 0 or p.energy_budget_mj > 0:  # measured from arrival: queueing counts
            spent = (time.perf_counter() - frame.t_recv) * 1e3
            budget = Budget(latency_ms=p.latency_budget_ms, energy_mj=p.energy_budget_mj, spent_ms=spent)
        result = engine.run(
            rgb,
            timesteps=p.timesteps or None,
            count_ops=p.count_ops,
            budget=budget,
            max_model_pixels=p.max_model_pixels,
        )
        if self._stop.is_set():
            return  # deactivated while this frame ran: publish nothing
        t_out = time.perf_counter()
        self.publish_outputs(frame.msg.header, rgb, result, out_encoding)
        t_pub = time.perf_counter()
        arrival_ms = (t_pub - frame.t_recv) * 1e3
        if budget is not None:  # the deadline counts from arrival to published outputs
            late = budget.latency_ms > 0 and arrival_ms > budget.latency_ms
            result.stats.budget_missed = bool(result.stats.budget_missed or late)
            self.budget_stats.add(result.stats)
        e2e_ms = self._since_stamp_ms(frame.msg.header, fallback_start=frame.t_recv)
        processed = self.counters.done(e2e_ms)
        if p.publish_stats and self._telemetry_pub is not None:
            ms = {
                "queue_wait": (t_pick - frame.t_recv) * 1e3,
                "decode": (t_decoded - t_pick) * 1e3,
                "publish": (t_pub - t_out) * 1e3,
                "e2e": e2e_ms,
                "arrival": arrival_ms,
                "cpu": (time.process_time() - cpu0) * 1e3,
            }
            frames = (processed, self.counters.dropped)
            name = self.get_fully_qualified_name()
            msg = telemetry_msg(frame.msg.header, name, engine.info, result, frames, ms)
            self._telemetry_pub.publish(msg)

    def _since_stamp_ms(self, header: Any, fallback_start: float) -> float:
        """Stamp → now; from reception instead when there is no stamp or it lies in our future."""
        stamp_ns = header_ns(header)
        since_recv_ms = (time.perf_counter() - fallback_start) * 1e3
        if stamp_ns == 0:
            return since_recv_ms
        ms = (self.get_clock().now().nanoseconds - stamp_ns) / 1e6
        if ms < 0:  # the sender's clock runs ahead of ours (or a bag's stamps without use_sim_time)
            self.get_logger().warning(
                f"frame stamp is {-ms:.0f} ms in this node's future: are the clocks synchronised "
                "(or should use_sim_time be set)? latency is measured from reception instead",
                throttle_duration_sec=10.0,
            )
            return since_recv_ms
        return ms

    # -- diagnostics -------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        engine = self._engine
        model = engine.info.label if engine else ""
        t = timesteps_in_use(engine.info, self.params.timesteps) if engine else self.params.timesteps
        topic = self._sub.topic_name if self._sub is not None else ""
        wid, name = (engine.info.weights_id, name_for(engine.info.weights_path)) if engine else ("", "")
        level, summary, values = diagnostic_values(
            self.counters, self._state, model, wid, int(t), topic, weights=name
        )
        values.update(self.budget_stats.values())
        status = DiagnosticStatus(
            level=bytes([level]),
            name=f"{self.get_fully_qualified_name()}: {self.task}",
            message=summary,
            hardware_id=str(engine.device) if engine else "",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)


def image_msg(header: Any, data: bytes, height: int, width: int, encoding: str, step: int) -> Image:
    msg = Image()
    msg.header = header
    msg.height, msg.width, msg.encoding, msg.step = int(height), int(width), encoding, int(step)
    msg.is_bigendian = 0
    msg.data = data
    return msg
