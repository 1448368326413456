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

This module is the orchestration: the sweep over T, the pacing of one pass, matching outputs to
inputs and scoring them. Everything that touches rclpy or a message package lives in
:mod:`snn_perception.ros.player` (and :mod:`snn_perception.ros.recorder`), imported inside the
functions: ``replay`` must import without ROS (``test/unit/test_layering.py``) and reaches ROS
only through ``snn_perception.ros`` (``test/unit/test_import_layers.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snn_perception.replay import bag_io
from snn_perception.replay.common import (
    ReplayConfig,
    ReplayError,
    ReplayResult,
    RunResult,
    Sample,
    Setting,
    Topics,
    check_weights,
    load_by_stamp,
    resolve_topics,
    score_dehaze,
    score_segment,
)
from snn_perception.replay.report import RECORDED_DIR
from snn_perception.runtime.legend import colorize, overlay
from snn_perception.runtime.stamps import header_ns

if TYPE_CHECKING:
    from snn_perception.ros.player import Session


def ros_mode_ready() -> tuple[bool, str]:
    """Whether rclpy, our interfaces and the node classes can be imported here (and why not)."""
    try:
        from snn_perception.ros import player
    except ImportError as exc:
        mod = exc.name or "snn_perception.ros.player"
        return False, f"{mod} cannot be imported ({exc}); source install/setup.bash or run `make setup`"
    return player.ready()


@dataclass
class _Frame:
    """One bag frame as played: its bag stamp, the header stamp it was sent with (0 = not sent)
    and the wall time it was published at (for latency)."""

    index: int
    bag_stamp: int
    sent_ns: int = 0
    wall_ns: int = 0


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
    from snn_perception.ros import player

    tasks = _tasks(config, external, player.node_available)
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

    params: dict[str, dict[str, Any]] | None = None  # in-process nodes: started with these
    targets: dict[str, str] | None = None  # external nodes: their names
    if nodes == "inprocess":
        first_t = config.timesteps[0] if config.timesteps else None
        params = {task: _node_params(config, task, compressed, first_t) for task in tasks}
    else:
        targets = {task: external[task] for task in tasks}
    try:
        with player.open_session(compressed, params=params, external=targets) as ros:
            result.models = {task: _model_entry(models[task], fq) for task, fq in ros.targets.items()}
            (config.out / RECORDED_DIR).mkdir(parents=True, exist_ok=True)
            images = bag_io.iter_images(config.bag, topics.image)
            first = next((item.rgb for item in images if item.rgb is not None), None)
            images.close()  # the warm-up frame: the bag's first decodable one
            for i, setting in enumerate(config.settings()):
                t = setting.timesteps
                if setting.latency_budget_ms:  # the models pick T per frame within the budget
                    ros.set_parameters(timesteps=0, latency_budget_ms=float(setting.latency_budget_ms))
                elif config.latency_budgets and t is not None:
                    ros.set_parameters(timesteps=int(t), latency_budget_ms=0.0)
                elif t is not None and (i > 0 or nodes != "inprocess"):
                    ros.set_timesteps(t)
                if first is not None:
                    ros.warm_up(_encoder(first, "warmup", compressed))
                run = _play(config, topics, ros, setting, refs, masks, compressed, result.models)
                result.runs.append(run)
                if run.interrupted:
                    result.interrupted = True
                    break
    except player.PlayerError as exc:  # a node failed, a service timed out: input error, exit code 2
        raise ReplayError(str(exc)) from exc
    return result


def _node_params(config: ReplayConfig, task: str, compressed: bool, timesteps: int | None) -> dict[str, Any]:
    """The parameter overrides an in-process node starts with (autostarting to active)."""
    weights = config.dehaze_weights if task == "dehaze" else config.segment_weights
    params: dict[str, Any] = {
        "input_transport": "compressed" if compressed else "raw",
        "count_ops": bool(config.count_ops),
        "device": config.device,
        "autostart": True,
    }
    if config.clock:
        params["use_sim_time"] = True
    if weights is not None:
        params["weights"] = str(weights)
    if timesteps is not None:
        params["timesteps"] = int(timesteps)
    params["max_model_pixels"] = int(config.max_model_pixels)
    if config.input_hw is not None:
        params["input_height"] = int(config.input_hw[0])
        params["input_width"] = int(config.input_hw[1])
    return params


def _tasks(
    config: ReplayConfig, external: dict[str, str] | None, node_available: Callable[[str], bool]
) -> list[str]:
    """The tasks to replay: the external nodes given, else the enabled ones this install has."""
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
        raise ReplayError(
            "no model to run: dehaze is off (--no-dehaze) and no segmenter is on (--no-segment, or none is "
            "shipped: give --segment-weights)"
        )
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
    config: ReplayConfig,
    topics: Topics,
    ros: Session,
    setting: Setting,
    refs: dict[int, np.ndarray],
    masks: dict[int, np.ndarray],
    compressed: bool,
    models: dict[str, Any],
) -> RunResult:
    """One pass over the bag at one setting: publish every frame (paced or lock-step), record, score."""
    label = setting.label
    run = RunResult(label=label, timesteps=setting.timesteps, latency_budget_ms=setting.latency_budget_ms)
    rec = ros.recorder(bag_io.BagWriter(config.out / RECORDED_DIR / label.replace("=", ""), "mcap"))
    frames: list[_Frame] = []
    undecodable: dict[int, str] = {}
    sim = ros.clock_publisher(config.rate) if config.clock else None
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
                stamp = ros.now_ns()
            msg = ros.message(_frame_cdr(item.rgb, stamp, item.frame_id or "camera", compressed))
            frame.sent_ns = stamp
            frame.wall_ns = time.time_ns()  # the recorder logs receive times on the same clock
            ros.publish(msg)
            if config.rate is None:  # lock-step: wait for every node's answer (or give up after 30 s)
                rec.wait_for(frame.sent_ns, 30.0)
        if sim is not None:
            sim.close()  # bag time ends with the bag, as with `ros2 bag play --clock`
        rec.drain([f.sent_ns for f in frames if f.sent_ns])
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        if bar is not None:
            bar.close()
        run.wall_s = time.perf_counter() - wall0
        if sim is not None:
            sim.close()
        rec.close()
    _rows(run, frames, undecodable, refs, masks, config, models, rec.path, rec.outputs, rec.telemetry, topics)
    return run


def _frame_cdr(rgb: np.ndarray, stamp_ns: int, frame_id: str, compressed: bool) -> bytes:
    """One frame as the CDR bytes of the message the nodes subscribe to (JPEG when the bag is
    compressed); the ROS side turns them into the rclpy message (same bytes, no re-encoding)."""
    msg = bag_io.image_message(rgb, stamp_ns, frame_id, "jpeg" if compressed else None)
    mtype = bag_io.COMPRESSED_TYPE if compressed else bag_io.IMAGE_TYPE
    return bytes(bag_io.typestore().serialize_cdr(msg, mtype))


def _encoder(rgb: np.ndarray, frame_id: str, compressed: bool) -> Callable[[int], bytes]:
    """Header stamp → the CDR bytes of ``rgb`` sent with that stamp (for the warm-up frames)."""
    return lambda stamp_ns: _frame_cdr(rgb, stamp_ns, frame_id, compressed)


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
        **({f"{prefix}budget_missed": bool(tel.budget_missed)} if tel.latency_budget_ms > 0 else {}),
    }


def _rows(
    run: RunResult,
    frames: list[_Frame],
    undecodable: dict[int, str],
    refs: dict[int, np.ndarray],
    masks: dict[int, np.ndarray],
    config: ReplayConfig,
    models: dict[str, Any],
    recorded: Path,
    out_topics: dict[str, str],
    tel_topics_by_task: dict[str, str],
    topics: Topics,
) -> None:
    """Match the recorded outputs to the inputs by header stamp and score them.

    ``out_topics`` / ``tel_topics_by_task``: task → the recorded output / telemetry topic.
    Outputs are read back from the recorded bag in recording order, merged with the input bag
    (both in send order), so memory stays bounded by one frame per node.
    """
    telemetry: dict[tuple[str, int], Any] = {}
    tel_topics = {topic: task for task, topic in tel_topics_by_task.items()}
    for topic, _mtype, _log_ns, msg in bag_io.iter_messages(recorded, list(tel_topics)):
        telemetry[(tel_topics[topic], header_ns(msg.header))] = msg
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
        for task in out_topics:
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
