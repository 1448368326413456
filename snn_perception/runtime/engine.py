"""The one way every caller (nodes, replay, evaluation, benchmarks) runs a model.

``Engine.load(weights, config)`` resolves a weights name or path, reads it safely, builds the
architecture its metadata names through the model registry, and checks the weights fit.
``engine.run(image)`` prepares an ``H×W×3`` RGB array, runs the spiking model with a timestep
budget and returns the task's output at the input size plus a :class:`FrameStats` record, so a
number measured offline is the number the robot reports.

Task-specific pre/post-processing is table-driven (:data:`TASKS`), so a new model only has to
register its architecture and say its task in the checkpoint metadata.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn_perception.models import registry
from snn_perception.models.event_kernels import warm as warm_event_kernels
from snn_perception.models.timesteps import MAX_TIMESTEPS, MIN_TIMESTEPS
from snn_perception.models.unet import class_ids
from snn_perception.runtime import weights as weights_registry
from snn_perception.runtime.budget import Budget, BudgetPlanner
from snn_perception.runtime.checkpoint import Checkpoint, WeightsError, load_checkpoint, load_into
from snn_perception.runtime.contrast import ContrastModel
from snn_perception.runtime.memory import capped_hw, check_fits
from snn_perception.runtime.preprocess import crop, image_to_tensor, pad_to_multiple, resize
from snn_perception.runtime.stats import EnergyModel, FrameStats

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "tf32", "bf16")

#: architecture → task, for checkpoints whose metadata does not say.
ARCH_TASKS: dict[str, str] = {
    "snntrans_dhz": "dehaze",
    "spiking_unet": "segment",
    "unet": "segment",
    "spiking_lite_unet": "segment",
    "lite_unet": "segment",
}
#: architectures that are ANN baselines: one pass per frame, no timesteps
ANN_ARCHS = frozenset({"unet", "lite_unet"})


@dataclass
class EngineConfig:
    """How to run a model. ``input_hw`` None = native size padded to the model's multiple."""

    device: str = "cpu"
    timesteps: int | None = None
    count_ops: bool = False
    input_hw: tuple[int, int] | None = None
    #: with no ``input_hw``: frames with more pixels run the model at the largest size of their
    #: aspect ratio under this cap (outputs keep the frame's size); 0 = no cap, the library default
    #: (the nodes and ``enhance`` default to :data:`~snn_perception.runtime.memory.DEFAULT_MAX_MODEL_PIXELS`)
    max_model_pixels: int = 0
    energy: EnergyModel = field(default_factory=EnergyModel)
    #: keep freed memory in the heap (see :func:`tune_allocator`); process-wide, on by default
    tune_allocator: bool = True
    #: 'fp32' (exact on every device: TF32 is switched off for the engine's convolutions and
    #: matmuls), 'tf32' (opt-in, CUDA: TensorFloat-32 tensor cores, inexact because spiking
    #: thresholds amplify its rounding; the same as fp32 on the CPU) or 'bf16': opt-in autocast,
    #: ~1.3–1.5× faster on CPUs with AVX-512 BF16 but not exact (shipped dhz, T = 4: 43.6–44.4 dB
    #: PSNR against the fp32 output on EUVP images at 256² and 512², max |Δ| about 0.1; measure
    #: yours with ``bench --precision``)
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda", "auto") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.timesteps is not None:
            validate_timesteps(self.timesteps, "timesteps")
        if int(self.max_model_pixels) < 0:
            raise ValueError(f"max_model_pixels must be 0 (no cap) or more, got {self.max_model_pixels}")
        if self.input_hw is not None:
            hw = tuple(int(v) for v in self.input_hw)
            if len(hw) != 2 or min(hw) < 8:
                raise ValueError(
                    f"model size (H, W) must have H, W ≥ 8 (e.g. --size 256x256), got {self.input_hw!r}"
                )
            self.input_hw = hw  # type: ignore[assignment]


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is; everything a node needs to describe its outputs."""

    task: str
    arch: str
    variant: str
    weights_id: str
    weights_path: str
    default_timesteps: int
    num_classes: int
    class_names: tuple[str, ...] = ()
    class_colors: tuple[tuple[int, int, int], ...] = ()
    input_hw: tuple[int, int] | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: the local-contrast strength model fitted for these weights (the ``contrast`` grading), if any
    contrast: ContrastModel | None = field(default=None, compare=False, hash=False)

    @property
    def spiking(self) -> bool:
        """False for the ANN baselines, which run once per frame and have no timesteps."""
        return self.arch not in ANN_ARCHS

    @property
    def label(self) -> str:
        """``arch/variant``, or ``arch`` alone when the weights name no variant (``unet``, not ``unet/``)."""
        return f"{self.arch}/{self.variant}" if self.variant else self.arch


@dataclass
class EngineResult:
    """``output``: dehaze H×W×3 float32 (unclamped); segment H×W uint8 class ids.

    ``scores``: segment only, C×H×W float32 at the input size.
    """

    output: np.ndarray
    stats: FrameStats
    scores: np.ndarray | None = None


def validate_timesteps(t: Any, where: str = "timesteps") -> int:
    if (
        isinstance(t, bool)
        or not isinstance(t, (int, np.integer))
        or not MIN_TIMESTEPS <= int(t) <= MAX_TIMESTEPS
    ):
        raise ValueError(f"{where} must be an integer in {MIN_TIMESTEPS}..{MAX_TIMESTEPS}, got {t!r}")
    return int(t)


def resolve_device(requested: str) -> torch.device:
    """'auto' picks CUDA when present; an unavailable CUDA falls back to the CPU with a warning.

    The warning is one logged line, said once per command (the CLI prints it as
    ``snn-perception VERB: warning: ...``), not a Python warning with a file and line number.
    """
    from snn_perception.runtime.notices import warn_once

    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda" if requested == "auto" else requested)
    if requested != "auto":
        warn_once(log, "cuda-missing", "CUDA is not available; running on the CPU")
    return torch.device("cpu")


@contextlib.contextmanager
def tf32_scope(enabled: bool) -> Iterator[None]:
    """TensorFloat-32 on or off for CUDA convolutions and matmuls, restoring the caller's settings.

    PyTorch runs cuDNN convolutions in TF32 by default; spiking thresholds amplify its rounding
    (the official DHZ checkpoint differed from its CPU output by up to 0.028 on an H200), so the
    exact 'fp32' precision switches it off around the engine's own calls only.
    """
    flags = _tf32_flags()
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _on, _off in flags]
    for obj, attr, on, off in flags:
        setattr(obj, attr, on if enabled else off)
    try:
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)


def _tf32_flags() -> list[tuple[Any, str, Any, Any]]:
    """(object, attribute, TF32-on value, TF32-off value) of the switches this torch has: the
    ``fp32_precision`` settings (torch ≥ 2.9), else the older ``allow_tf32`` flags."""
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision") and hasattr(matmul, "fp32_precision"):
        return [(matmul, "fp32_precision", "tf32", "ieee"), (conv, "fp32_precision", "tf32", "ieee")]
    return [(matmul, "allow_tf32", True, False), (torch.backends.cudnn, "allow_tf32", True, False)]


_ALLOCATOR_TUNED = False


def tune_allocator() -> bool:
    """Stop glibc from returning large freed blocks to the OS after every frame.

    A forward pass allocates tens of MB of activations; by default glibc serves each with a fresh
    ``mmap`` and unmaps it on free, so every frame pays page faults on first touch. On the test
    VM that was a third of the CPU time of a 512×512 frame (a 64 MB zero-fill: 24.5 ms → 2.6 ms).
    Raising the mmap and trim thresholds keeps the memory in the heap for reuse. Process-wide and
    idempotent; returns False where it does not apply (not glibc).
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) == 1 and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):
        return False
    _ALLOCATOR_TUNED = ok
    return ok


# -- task tables: how to turn the model's [1, C, H, W] output into the result


def _post_dehaze(y: torch.Tensor, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    y = resize(y, hw)
    return y[0].permute(1, 2, 0).float().cpu().numpy().copy(), None


def _post_segment(y: torch.Tensor, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    scores = resize(y, hw)[0].float()
    return class_ids(scores, 0).to(torch.uint8).cpu().numpy(), scores.cpu().numpy()


TASKS: dict[str, Callable[[torch.Tensor, tuple[int, int]], tuple[np.ndarray, np.ndarray | None]]] = {
    "dehaze": _post_dehaze,
    "segment": _post_segment,
}


class WrongTaskError(WeightsError):
    """Weights of another task than the caller runs (a segmenter given to the dehazer, …)."""

    def __init__(self, path: Path, found: str, arch: str, expected: str) -> None:
        super().__init__(f"{path} holds a {found} model ({arch}), not a {expected} model")
        self.found, self.expected = found, expected


def _model_info(ckpt: Checkpoint) -> ModelInfo:
    meta = ckpt.metadata
    arch = str(meta["arch"])
    task = str(meta.get("task") or ARCH_TASKS.get(arch, ""))
    if task not in TASKS:
        raise WeightsError(
            f"{ckpt.path}: unknown task {task!r} for architecture {arch!r}; known: {', '.join(TASKS)}"
        )
    names = tuple(str(n) for n in meta.get("class_names", ()))
    colors = tuple(tuple(int(c) for c in rgb) for rgb in meta.get("class_colors", ()))
    num_classes = int(meta.get("num_classes", len(names) if task == "segment" else 0))
    hw = meta.get("input_hw")
    try:
        default_t = validate_timesteps(int(meta.get("default_timesteps", 4)), "default_timesteps")
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{ckpt.path}: bad default_timesteps in metadata ({exc})") from exc
    try:
        contrast = ContrastModel.from_dict(meta["contrast"]) if "contrast" in meta else None
    except ValueError as exc:
        raise WeightsError(f"{ckpt.path}: {exc}") from exc
    return ModelInfo(
        task=task,
        arch=arch,
        variant=str(meta.get("variant", "")),
        weights_id=ckpt.weights_id,
        weights_path=str(ckpt.path),
        default_timesteps=default_t,
        num_classes=num_classes,
        class_names=names,
        class_colors=colors,
        input_hw=(int(hw[0]), int(hw[1])) if hw else None,
        metadata=dict(meta),
        contrast=contrast,
    )


class Engine:
    """A loaded model plus its pre/post-processing. ``run`` is serialised by a per-engine lock."""

    def __init__(
        self, model: torch.nn.Module, info: ModelInfo, config: EngineConfig, device: torch.device
    ) -> None:
        self.model = model
        self.info = info
        self.config = config
        self.device = device
        self._lock = threading.Lock()
        self._counting: bool | None = None
        #: learns what a frame costs per T at each size, for :class:`Budget` runs
        self.planner = BudgetPlanner()

    @classmethod
    def load(
        cls,
        weights: str | Path | None = None,
        config: EngineConfig | None = None,
        task: str | None = None,
    ) -> Engine:
        """Load weights (shipped name, path, or None = the default for ``task``, 'dehaze' unnamed).

        ``task``: weights of another task are a :class:`WrongTaskError` (before the model is
        built), so every front end refuses them with the same message; None takes the weights'
        own task (tools that load whatever they are given).
        """
        config = replace(config) if config is not None else EngineConfig()
        if config.tune_allocator:
            tune_allocator()
        name = weights if weights is not None else weights_registry.default_weights(task or "dehaze")
        path = weights_registry.resolve(name)
        ckpt = load_checkpoint(path)
        info = _model_info(ckpt)
        if task is not None and info.task != task:
            raise WrongTaskError(path, info.task, info.arch, task)
        try:
            model = registry.build(info.arch, ckpt.metadata)
        except KeyError as exc:
            raise WeightsError(f"{path}: {exc.args[0]}") from exc
        except ValueError as exc:
            raise WeightsError(f"{path}: metadata does not describe a valid {info.arch!r}: {exc}") from exc
        flushed = load_into(model, ckpt)
        if flushed:
            log.info("%s: set %d subnormal weights to zero (they slow some CPUs tenfold)", path, flushed)
        model.eval().requires_grad_(False)
        device = resolve_device(config.device)
        model.to(device)
        if hasattr(model, "prepare_inference"):
            model.prepare_inference()
        log.info(
            "loaded %s (%s/%s, weights %s) on %s", path, info.arch, info.variant, info.weights_id, device
        )
        return cls(model, info, config, device)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return tf32_scope(self.config.precision == "tf32")

    @property
    def size_multiple(self) -> int:
        return int(getattr(self.model, "size_multiple", 1))

    def warmup(self, runs: int = 1, hw: tuple[int, int] | None = None) -> None:
        """Run a grey frame so the first real frame does not pay allocation and kernel set-up.

        ``hw``: the size of the frames to come (a hot swap passes the size being served).
        """
        hw = self.config.input_hw or hw or self.info.input_hw or (256, 256)
        image = np.full((hw[0], hw[1], 3), 128, np.uint8)
        counting = self.config.count_ops and getattr(self.model, "uses_counting_kernels", False)
        if self.device.type == "cpu" and (counting or getattr(self.model, "uses_neuron_kernels", False)):
            warm_event_kernels()  # the fused neuron and counting kernels: compiled or loaded once, checked
        for _ in range(runs):
            self.run(image, count_ops=False)

    def run(
        self,
        image: np.ndarray,
        timesteps: int | None = None,
        count_ops: bool | None = None,
        budget: Budget | None = None,
        max_model_pixels: int | None = None,
    ) -> EngineResult:
        """Run one ``H×W×3`` RGB frame (uint8, or float in [0, 1]).

        ``max_model_pixels``: this frame's cap instead of the config's (a node's hot parameter).

        ``budget``: the frame's latency and/or energy budget. A spiking model then runs the most
        timesteps (up to ``timesteps`` or the default) that the engine's cost model predicts will
        fit, at least one; the batched multi-step path is used either way. ``stats.timesteps``
        says how many ran and ``stats.budget_missed`` whether the frame overran.
        """
        t_start = time.perf_counter()
        cpu_start = time.process_time()
        steps = validate_timesteps(
            timesteps if timesteps is not None else (self.config.timesteps or self.info.default_timesteps)
        )
        max_steps = steps
        budget = budget if budget is not None and budget.active and self.info.spiking else None
        counting = self.config.count_ops if count_ops is None else bool(count_ops)
        if budget is not None and budget.energy_mj > 0:
            counting = True  # the energy budget learns from the counted energy
        cap = self.config.max_model_pixels if max_model_pixels is None else int(max_model_pixels)
        model_size = self.config.input_hw or capped_hw((int(image.shape[0]), int(image.shape[1])), cap)
        if self.device.type == "cpu":  # before any copy: a frame that cannot fit is refused at once
            check_fits(self.info.arch, model_size, steps if self.info.spiking else 1)
        with self._lock:
            t_locked = time.perf_counter()
            x = image_to_tensor(image, self.device)
            in_hw = (int(x.shape[-2]), int(x.shape[-1]))
            if model_size != in_hw:
                x = resize(x, model_size)
            x, model_hw = pad_to_multiple(x, self.size_multiple)
            t_pre = time.perf_counter()
            key = (int(x.shape[-2]), int(x.shape[-1]))
            if budget is not None:
                steps = self.planner.plan(key, budget, (t_pre - t_start) * 1e3, max_steps)
            if counting != self._counting:
                self.model.set_counting(counting)
                self._counting = counting
            with torch.inference_mode(), self._autocast():
                y = self.model(x, steps)
            with torch.inference_mode():
                y = crop(y.float(), model_hw)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                t_inf = time.perf_counter()
                output, scores = TASKS[self.info.task](y, in_hw)
            counts = self.model.read_counters() if counting else None
        t_end = time.perf_counter()
        energy_mj = (
            self.config.energy.joules(counts.synaptic_ops, counts.analog_macs) * 1e3
            if counts is not None
            else None
        )
        self.planner.observe(key, steps, (t_end - t_inf) * 1e3, (t_inf - t_pre) * 1e3, energy_mj)
        stats = FrameStats(
            timesteps=steps,
            input_hw=in_hw,
            model_hw=(int(x.shape[-2]), int(x.shape[-1])),
            queue_wait_ms=(t_locked - t_start) * 1e3,
            preprocess_ms=(t_pre - t_locked) * 1e3,
            inference_ms=(t_inf - t_pre) * 1e3,
            postprocess_ms=(t_end - t_inf) * 1e3,
            end_to_end_ms=(t_end - t_start) * 1e3,
            cpu_time_ms=(time.process_time() - cpu_start) * 1e3,
            e_ac_pj=self.config.energy.e_ac_pj,
            e_mac_pj=self.config.energy.e_mac_pj,
            max_timesteps=max_steps,
        )
        if budget is not None:
            stats.latency_budget_ms = budget.latency_ms
            stats.energy_budget_mj = budget.energy_mj
            late = budget.latency_ms > 0 and budget.spent_ms + stats.end_to_end_ms > budget.latency_ms
            over = budget.energy_mj > 0 and energy_mj is not None and energy_mj > budget.energy_mj
            stats.budget_missed = bool(late or over)
        if counts is not None:
            stats.ops_counted = True
            stats.synaptic_ops = counts.synaptic_ops
            stats.analog_macs = counts.analog_macs
            stats.energy_j = self.config.energy.joules(counts.synaptic_ops, counts.analog_macs)
            stats.mean_spike_rate = counts.mean_spike_rate
            stats.layer_names = list(counts.layer_names)
            stats.layer_spike_rates = list(counts.layer_spike_rates)
        return EngineResult(output=output, stats=stats, scores=scores)
