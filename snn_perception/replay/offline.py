"""Offline replay: the runtime engine on the bag's decoded frames, no ROS.

Pacing is simulated, not slept: with ``rate`` set, frame *i* "arrives" at
``(stamp_i − stamp_0) / rate`` and each model behaves like a node with a depth-1, keep-newest
queue (as the nodes' sensor-data QoS does). When a model finishes a frame it takes the newest
frame that has arrived by then; frames overwritten in between are dropped and never run. The
processing time is the measured decode + engine time of the frames that do run, so the drop
count and the end-to-end latency (arrival → result) are what a node on this machine would see,
computed in a fraction of the bag's duration. ``rate=None`` (as fast as possible) runs every frame.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
    load_by_stamp,
    resolve_topics,
    score_dehaze,
    score_segment,
    stats_columns,
    to_uint8,
)
from snn_perception.runtime.budget import Budget
from snn_perception.runtime.legend import colorize, overlay

log = logging.getLogger(__name__)


@dataclass
class _Queue:
    """A node's depth-1 keep-newest queue on a virtual clock (seconds since the first frame)."""

    busy_until: float = 0.0

    def accepts(self, arrival: float, next_arrival: float | None, paced: bool) -> bool:
        """Whether this frame is the one the worker picks up (the newest arrived when it is free)."""
        if not paced:
            return True
        start = max(self.busy_until, arrival)
        return next_arrival is None or next_arrival > start


def load_engines(config: ReplayConfig) -> dict[str, Any]:
    """task → Engine for the models this replay runs. A missing default segmenter is skipped."""
    from snn_perception.runtime import weights as weights_registry
    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.engine import Engine, EngineConfig

    engines: dict[str, Any] = {}
    ecfg = EngineConfig(
        device=config.device,
        count_ops=config.count_ops,
        input_hw=config.input_hw,
        max_model_pixels=config.max_model_pixels,
    )
    for task, enabled, weights in (
        ("dehaze", config.run_dehaze, config.dehaze_weights),
        ("segment", config.run_segment, config.segment_weights),
    ):
        if not enabled:
            continue
        if weights is None and task == "segment":
            try:
                weights_registry.default_weights("segment")
            except WeightsError:
                continue  # no segmenter shipped yet: dehaze only (the report says so)
        try:
            engine = Engine.load(weights, ecfg, task=task)
        except WeightsError as exc:
            raise ReplayError(f"{task} weights: {exc}") from None
        engines[task] = engine
    if not engines:
        raise ReplayError(
            "no model to run: dehaze is off (--no-dehaze) and no segmenter is on (--no-segment, or none is "
            "shipped: give --segment-weights)"
        )
    return engines


def model_infos(engines: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        task: {
            "arch": e.info.arch,
            "variant": e.info.variant,
            "weights_id": e.info.weights_id,
            "weights_path": e.info.weights_path,
            "default_timesteps": e.info.default_timesteps,
            "class_names": list(e.info.class_names),
            "class_colors": [list(c) for c in e.info.class_colors],
        }
        for task, e in engines.items()
    }


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False, dynamic_ncols=True)


def _sample_indices(total: int, k: int) -> set[int]:
    if total <= 0 or k <= 0:
        return set()
    return {round(i) for i in np.linspace(0, total - 1, min(k, total))}


def _lookahead(it: Iterator[bag_io.BagImage]) -> Iterator[tuple[bag_io.BagImage, bag_io.BagImage | None]]:
    """(frame, next frame or None): the queue needs to know whether a newer frame overtakes."""
    prev = next(it, None)
    for item in it:
        yield prev, item
        prev = item
    if prev is not None:
        yield prev, None


def run_pass(
    config: ReplayConfig,
    topics: Topics,
    engines: dict[str, Any],
    setting: Setting,
    refs: dict[int, np.ndarray],
    masks: dict[int, np.ndarray],
) -> RunResult:
    """One pass over the bag at one setting (a T, or a latency budget); Ctrl-C ends it early."""
    label, timesteps, budget_ms = setting.label, setting.timesteps, setting.latency_budget_ms
    run = RunResult(label=label, timesteps=timesteps, latency_budget_ms=budget_ms)
    paced = config.rate is not None
    queues = {task: _Queue() for task in engines}
    t0_stamp: int | None = None
    samples = _sample_indices(topics.frames, config.samples)
    bar = _progress(topics.frames, f"replay {label}", config.progress)
    wall0 = time.perf_counter()
    seg = engines.get("segment")
    try:
        for item, nxt in _lookahead(bag_io.iter_images(config.bag, topics.image)):
            row: dict[str, Any] = {"index": item.index, "stamp_ns": item.stamp_ns}
            if t0_stamp is None and item.error is None:
                t0_stamp = item.stamp_ns
            arrival = (item.stamp_ns - (t0_stamp or item.stamp_ns)) / 1e9 / (config.rate or 1.0)
            nxt_arrival = (
                (nxt.stamp_ns - (t0_stamp or nxt.stamp_ns)) / 1e9 / (config.rate or 1.0)
                if nxt is not None and nxt.error is None
                else None
            )
            row["time_s"] = arrival
            row["has_reference"] = item.stamp_ns in refs
            if item.rgb is None:
                row["status"] = "undecodable"
                row["error"] = item.error
                if seg is not None:
                    row["seg_status"] = "undecodable"
                run.rows.append(row)
                if bar is not None:
                    bar.update(1)
                continue
            raw = item.rgb
            sample = Sample(index=item.index, raw=raw) if item.index in samples else None
            for task, engine in engines.items():
                prefix = "" if task == "dehaze" else "seg_"
                q = queues[task]
                if not q.accepts(arrival, nxt_arrival, paced):
                    row[f"{prefix}status"] = "dropped"
                    continue
                start = max(q.busy_until, arrival) if paced else 0.0
                t_call = time.perf_counter()
                budget = Budget(latency_ms=budget_ms, spent_ms=(start - arrival) * 1e3) if budget_ms else None
                result = engine.run(raw, timesteps=timesteps, budget=budget)
                busy = time.perf_counter() - t_call
                q.busy_until = start + busy
                row[f"{prefix}status"] = "ok"
                row.update(stats_columns(result.stats, prefix))
                row[f"{prefix}queue_wait_ms"] = (start - arrival) * 1e3 if paced else 0.0
                row[f"{prefix}end_to_end_ms"] = row[f"{prefix}queue_wait_ms"] + busy * 1e3
                if budget_ms:  # arrival to result against the budget
                    row[f"{prefix}budget_missed"] = row[f"{prefix}end_to_end_ms"] > budget_ms
                if task == "dehaze":
                    out8 = to_uint8(result.output)
                    row.update(score_dehaze(raw, out8, refs.get(item.stamp_ns), config.nr_metrics))
                    if sample is not None:
                        sample.enhanced = out8
                else:
                    info = engine.info
                    seg_row, conf = score_segment(
                        result.output, info.class_names, info.num_classes, masks.get(item.stamp_ns)
                    )
                    row.update(seg_row)
                    if conf is not None:
                        run.confusion = conf if run.confusion is None else run.confusion + conf
                    if sample is not None:
                        sample.mask_color = overlay(raw, colorize(result.output, info.class_colors))
            if sample is not None:
                sample.reference = refs.get(item.stamp_ns)
                run.samples.append(sample)
            run.rows.append(row)
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        if bar is not None:
            bar.close()
        run.wall_s = time.perf_counter() - wall0
    return run


def run_offline(config: ReplayConfig, engines: dict[str, Any] | None = None) -> ReplayResult:
    """Every timestep setting in turn; stops after the pass that Ctrl-C interrupted.

    The weights are loaded before the bag is read, as in ROS mode: the same bad input gets the
    same message in both modes.
    """
    engines = engines if engines is not None else load_engines(config)
    topics = resolve_topics(config)
    if topics.frames == 0:
        raise ReplayError(f"topic {topics.image!r} in {topics.info.path} holds no messages")
    refs = load_by_stamp(config.bag, topics.reference)
    masks = load_by_stamp(config.bag, topics.mask, gray=True)
    result = ReplayResult(config=config, topics=topics, runs=[], models=model_infos(engines))
    if "segment" not in engines:
        why = "segmentation turned off" if not config.run_segment else "no segmentation model available"
        result.notes.append(f"{why}: dehaze only")
    if topics.reference is None:
        result.notes.append("no reference topic: quality is no-reference only (UIQM, UCIQE)")
    elif not refs:
        result.notes.append(f"reference topic {topics.reference} held no decodable images")
    for engine in engines.values():
        engine.warmup()
    for setting in config.settings():
        run = run_pass(config, topics, engines, setting, refs, masks)
        result.runs.append(run)
        if run.interrupted:
            result.interrupted = True
            break
    return result


def nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value
