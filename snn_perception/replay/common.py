"""What both replay modes share: configuration, topic resolution, per-frame scoring and results.

A replay produces one :class:`RunResult` per timestep setting (one run unless a sweep was asked
for), each holding exactly one row per input frame: processed, dropped or undecodable. Offline
and ROS modes fill the same rows through :func:`score_dehaze` / :func:`score_segment`, so their
numbers are comparable column by column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from snn_perception.offline import metrics, seg_metrics
from snn_perception.replay import bag_io
from snn_perception.replay.bag_io import BagError, BagInfo
from snn_perception.runtime.memory import DEFAULT_MAX_MODEL_PIXELS

MODES = ("offline", "ros")


class ReplayError(BagError):
    """Bad replay input (exit code 2)."""


@dataclass
class ReplayConfig:
    """Everything ``snn-perception replay`` needs. ``timesteps`` empty = each model's default."""

    bag: Path
    out: Path
    mode: str = "offline"
    topic: str | None = None
    #: None = auto (the bag's one '*reference*' image topic, if any); "" = none
    reference_topic: str | None = None
    mask_topic: str | None = None  # ground-truth class-id masks (mono8), for mIoU
    rate: float | None = 1.0  # None = as fast as possible
    #: ros mode: publish /clock with the bag's time and send frames with their bag stamps, as
    #: ``ros2 bag play --clock`` does (in-process nodes then run with use_sim_time)
    clock: bool = False
    timesteps: tuple[int, ...] = ()
    #: per-frame latency budgets (ms) to sweep after the fixed-T runs: each is one run in which the
    #: models pick T per frame (arrival to result, queueing included)
    latency_budgets: tuple[float, ...] = ()
    dehaze_weights: str | None = None  # None = the default dehaze weights
    segment_weights: str | None = None  # None = the default segment weights when available
    run_dehaze: bool = True
    run_segment: bool = True
    count_ops: bool = True
    device: str = "cpu"
    input_hw: tuple[int, int] | None = None
    #: the nodes' cap on model-input pixels, the same in both modes (0 = frames at their own size)
    max_model_pixels: int = DEFAULT_MAX_MODEL_PIXELS
    samples: int = 4  # frames shown in the contact sheet
    nr_metrics: bool = True  # UIQM / UCIQE on every processed frame
    progress: bool = True
    overwrite: bool = False  # replace an earlier replay's report and recordings in ``out``

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ReplayError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.rate is not None and not self.rate > 0:
            raise ReplayError(f"--rate must be > 0 (a playback speed factor), got {self.rate}")
        if self.clock and self.mode != "ros":
            raise ReplayError("--clock publishes /clock for ROS nodes: it needs --mode ros")
        bad = [b for b in self.latency_budgets if not (math.isfinite(b) and 0 < b <= 10_000)]
        if bad:
            raise ReplayError(f"--latency-budget {bad[0]:g}: must be a number of milliseconds in (0, 10000]")

    def settings(self) -> list[Setting]:
        """The runs, in order: each fixed T, then each latency budget (default T if neither)."""
        runs = [Setting(f"T={t}", t, 0.0) for t in self.timesteps]
        runs += [Setting(f"budget={b:g}ms", None, float(b)) for b in self.latency_budgets]
        return runs or [Setting("default", None, 0.0)]


@dataclass(frozen=True)
class Setting:
    """One run's setting: a fixed T, or a latency budget within which the models pick T."""

    label: str
    timesteps: int | None
    latency_budget_ms: float = 0.0


@dataclass
class Topics:
    info: BagInfo
    image: str
    reference: str | None
    mask: str | None
    frames: int


def resolve_topics(config: ReplayConfig) -> Topics:
    """Open the bag and check every topic the replay will read (raises :class:`BagError`).

    The topics given as ground truth are checked first and are never taken as the camera topic.
    """
    info = bag_io.bag_info(config.bag)
    given = {"--reference-topic": config.reference_topic or None, "--mask-topic": config.mask_topic or None}
    for what, topic in given.items():
        if topic is not None:
            bag_io.check_image_topic(info, topic, what)
    if config.topic:
        bag_io.check_image_topic(info, config.topic, "--topic")
        for what, topic in given.items():
            if topic == config.topic:
                raise ReplayError(
                    f"--topic and {what} are both {topic!r}: the camera frames cannot be their own "
                    "ground truth; give two different topics"
                )
    image = config.topic or bag_io.default_image_topic(
        info, exclude=tuple(t for t in given.values() if t is not None)
    )
    if config.reference_topic is None:
        ref = bag_io.default_reference_topic(info)
        ref = None if ref == image else ref
    else:
        ref = config.reference_topic or None
    mask = config.mask_topic or None
    return Topics(info=info, image=image, reference=ref, mask=mask, frames=info.topics[image].count)


def check_weights(task: str, weights: str | None) -> Any:
    """Load ``weights`` for ``task`` (None: the shipped default) on the CPU and return its
    :class:`~snn_perception.runtime.engine.ModelInfo`, so a missing, broken or wrong-task file is
    refused with the offline replay's message before any bag is read or node started."""
    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.engine import Engine, EngineConfig

    try:
        cpu = EngineConfig(device="cpu", tune_allocator=False)
        engine = Engine.load(weights, cpu, task)
    except WeightsError as exc:
        raise ReplayError(f"{task} weights: {exc}") from None
    return engine.info


def load_by_stamp(bag: Path, topic: str | None, gray: bool = False) -> dict[int, np.ndarray]:
    """Ground-truth images of ``topic`` keyed by header stamp (undecodable ones left out)."""
    if topic is None:
        return {}
    out: dict[int, np.ndarray] = {}
    for item in bag_io.iter_images(bag, topic):
        if item.rgb is None:
            continue
        if gray and not (
            np.array_equal(item.rgb[..., 0], item.rgb[..., 1])
            and np.array_equal(item.rgb[..., 0], item.rgb[..., 2])
        ):
            raise ReplayError(
                f"mask topic {topic} holds colour images; it must hold mono8 class-id masks, as "
                "`snn-perception make-bag DIR` writes from a DIR holding images/ + masks/ "
                "(topic /camera/mask, set with its --mask-topic)"
            )
        out[item.stamp_ns] = item.rgb[..., 0].copy() if gray else item.rgb
    return out


def _fit(ref: np.ndarray, hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    if ref.shape[:2] == hw:
        return ref
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(ref, (hw[1], hw[0]), interpolation=interp)


def score_dehaze(
    raw: np.ndarray, out: np.ndarray, ref: np.ndarray | None, nr: bool = True
) -> dict[str, float]:
    """Quality of one frame: PSNR/SSIM of raw and output vs the reference; UIQM/UCIQE of both."""
    row: dict[str, float] = {}
    if ref is not None:
        ref = _fit(ref, raw.shape[:2])
        row.update(
            psnr_raw=metrics.psnr(raw, ref),
            psnr_out=metrics.psnr(out, ref),
            ssim_raw=metrics.ssim(raw, ref),
            ssim_out=metrics.ssim(out, ref),
        )
    if nr:
        row.update(
            uiqm_raw=metrics.uiqm(raw),
            uiqm_out=metrics.uiqm(out),
            uciqe_raw=metrics.uciqe(raw),
            uciqe_out=metrics.uciqe(out),
        )
    return row


def score_segment(
    mask: np.ndarray, class_names: tuple[str, ...], num_classes: int, ref_mask: np.ndarray | None
) -> tuple[dict[str, float], np.ndarray | None]:
    """Class-area fractions (and per-frame mIoU plus the confusion matrix when a mask exists)."""
    names = class_names or tuple(str(i) for i in range(num_classes))
    fr = metrics.class_area_fractions(mask, num_classes)
    row = {f"area_{n}": float(v) for n, v in zip(names, fr, strict=False)}
    conf = None
    if ref_mask is not None:
        conf = seg_metrics.confusion_matrix(mask, _fit(ref_mask, mask.shape[:2], nearest=True), num_classes)
        row["seg_miou"] = seg_metrics.miou(conf)
    return row, conf


def stats_columns(stats: Any, prefix: str = "") -> dict[str, Any]:
    """The FrameStats fields a report row carries (prefix 'seg_' for the segmenter)."""
    return {
        f"{prefix}timesteps": int(stats.timesteps),
        f"{prefix}inference_ms": float(stats.inference_ms),
        f"{prefix}engine_ms": float(stats.end_to_end_ms),
        f"{prefix}cpu_time_ms": float(stats.cpu_time_ms),
        f"{prefix}synaptic_ops": float(stats.synaptic_ops) if stats.ops_counted else math.nan,
        f"{prefix}analog_macs": float(stats.analog_macs) if stats.ops_counted else math.nan,
        f"{prefix}energy_j": float(stats.energy_j) if stats.ops_counted else math.nan,
        f"{prefix}spike_rate": float(stats.mean_spike_rate) if stats.ops_counted else math.nan,
    }


@dataclass
class Sample:
    """A frame kept for the contact sheet."""

    index: int
    raw: np.ndarray
    enhanced: np.ndarray | None = None
    mask_color: np.ndarray | None = None
    reference: np.ndarray | None = None


@dataclass
class RunResult:
    """One pass over the bag at one timestep setting (``label`` e.g. 'T=4' or 'default')."""

    label: str
    timesteps: int | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    latency_budget_ms: float = 0.0  # 0: a fixed-T run
    wall_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    confusion: np.ndarray | None = None  # summed over frames, for the dataset mIoU
    interrupted: bool = False


@dataclass
class ReplayResult:
    config: ReplayConfig
    topics: Topics
    runs: list[RunResult]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # task → model info
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)


def to_uint8(rgb01: np.ndarray) -> np.ndarray:
    """The 8-bit image the dehaze node publishes (the same rounding, so both modes score alike)."""
    from snn_perception.runtime.preprocess import float_to_uint8

    return float_to_uint8(rgb01)
