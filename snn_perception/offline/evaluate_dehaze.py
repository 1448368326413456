"""Full-reference evaluation of dehazing methods on raw/ + reference/ pairs.

Every method (the raw input itself, the classical baseline, any number of weights at
any timestep budgets) is scored on the same resized images with the same metric code
as the replay reports (:mod:`snn_perception.offline.metrics`).

``--size N`` resizes raw *and reference* to N and scores there (the issues' protocol);
``replay --size N`` instead runs the model at N, scales the output back and scores at the
frame's size, so the two differ. ``evaluate --native`` and a replay without ``--size`` score the
same images; they still differ by at most about 0.001 dB because the replay scores the uint8 image
a node publishes and this tool the float output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snn_perception.offline import metrics
from snn_perception.offline.pairs import PairsError, list_pairs, read_rgb, resize_float, split_pairs
from snn_perception.runtime.contrast import local_contrast
from snn_perception.runtime.grading import global_grading, validate_grading

RAW, CLASSICAL = "raw", "classical"


@dataclass
class DehazeEvalConfig:
    data: list[str]
    weights: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=lambda: [RAW, CLASSICAL])
    size: tuple[int, int] | None = (512, 512)  # None: native size
    timesteps: list[int] | None = None  # None: each weights' default
    split: str = "all"  # all | train | val (the training split: same seed and fraction)
    val_fraction: float = 0.2
    seed: int = 0
    no_reference_metrics: bool = True
    device: str = "cpu"
    limit: int | None = None
    val_max: int = 0  # > 0: each folder's validation split capped as ``train dhz --val-max`` caps it
    #: 'pixels' scores the network's output, 'global' the input graded as the network graded it
    #: (:mod:`snn_perception.runtime.grading`), as rows ``NAME@T+global``; 'contrast' that plus
    #: the weights' per-frame local contrast (:mod:`snn_perception.runtime.contrast`), ``NAME@T+contrast``
    gradings: list[str] = field(default_factory=lambda: ["pixels"])
    max_model_pixels: int = 0  # > 0: the model runs at most this many pixels, scored at ``size``


def validate_config(cfg: DehazeEvalConfig) -> None:
    """ValueError for settings that would silently score nothing or everything, before any work."""
    if cfg.limit is not None and cfg.limit < 1:
        raise ValueError(f"limit {cfg.limit}: must be ≥ 1 (None evaluates every image)")
    if cfg.val_max < 0:
        raise ValueError(f"val_max {cfg.val_max}: must be ≥ 0 (0: no cap)")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ValueError(f"val_fraction {cfg.val_fraction}: must be strictly between 0 and 1")
    if cfg.split not in ("all", "train", "val"):
        raise ValueError(f"split {cfg.split!r}: expected all, train or val")
    if not cfg.gradings:
        raise ValueError("gradings is empty: expected one or more of pixels, global, contrast")
    for g in cfg.gradings:
        validate_grading(g)
    if cfg.max_model_pixels < 0:
        raise ValueError(f"max_model_pixels {cfg.max_model_pixels}: must be 0 (the scoring size) or more")
    unknown = [m for m in cfg.methods if m not in (RAW, CLASSICAL)]
    if unknown:
        raise ValueError(f"methods {unknown}: known methods are {RAW} and {CLASSICAL}")


def select_pairs(cfg: DehazeEvalConfig) -> list[tuple[Path, Path]]:
    chosen: list[tuple[Path, Path]] = []
    for root in cfg.data:
        pairs = list_pairs(Path(root))
        if cfg.split != "all":
            train, val = split_pairs(pairs, cfg.val_fraction, cfg.seed)
            if cfg.val_max and len(val) > cfg.val_max:  # the trainer's cap: the rest of val trained
                train, val = train + val[cfg.val_max :], val[: cfg.val_max]
            pairs = val if cfg.split == "val" else train
            if not pairs:  # an empty table would be printed as a crash, not as "nothing to score"
                raise PairsError(
                    f"{root}: the {cfg.split} split of its {len(train) + len(val)} pair(s) is empty "
                    f"(val fraction {cfg.val_fraction}); use --split all or a folder with more pairs"
                )
        chosen += sorted(pairs, key=lambda p: p[0].name)
    return chosen[: cfg.limit] if cfg.limit else chosen


def weight_labels(weights: list[str]) -> list[str]:
    """A distinct table label per weights argument: the file stem, with its folder where stems clash.

    Two runs' ``best.safetensors`` would otherwise share one label and their scores one row.
    """
    paths = [Path(str(w)) for w in weights]
    stems = [p.stem for p in paths]
    labels = [
        f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 and p.parent.name else p.stem for p in paths
    ]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:  # the same file given twice: number the repeats
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return unique


def check_pairs(pairs: list[tuple[Path, Path]], native: bool) -> None:
    """Decode every image before any model runs (decoding is cheap next to the models), so a damaged
    file is refused up front, naming it. At native size raw and reference must also match, and be at
    least SSIM's window (11×11): resizing to ``--size`` (≥ 16) is the way out."""
    win = metrics._SSIM_WIN  # metrics.ssim's window: smaller images cannot be scored
    for raw_path, ref_path in pairs:
        raw, ref = read_rgb(raw_path), read_rgb(ref_path)
        if not native:
            continue
        if raw.shape != ref.shape:
            raise PairsError(
                f"--native: {raw_path} is {raw.shape[1]}x{raw.shape[0]} but its reference {ref_path} is "
                f"{ref.shape[1]}x{ref.shape[0]}; use --size HxW to score every pair at one size"
            )
        if min(raw.shape[:2]) < win:
            raise PairsError(
                f"--native: {raw_path} and its reference are {raw.shape[1]}x{raw.shape[0]}; SSIM needs at "
                f"least {win}x{win} pixels; use --size HxW to score every pair at one size"
            )


def _score(out: np.ndarray, ref: np.ndarray, no_ref: bool) -> dict[str, float]:
    row = {"psnr": metrics.psnr(out, ref), "ssim": metrics.ssim(out, ref)}
    if no_ref:
        row["uiqm"] = metrics.uiqm(out)
        row["uciqe"] = metrics.uciqe(out)
    return row


def evaluate_dehaze(cfg: DehazeEvalConfig, progress: bool = True) -> dict:
    """Returns ``{"config", "images", "methods": {name: {"mean": {...}, "per_image": [...]}}}``."""
    from tqdm import tqdm

    validate_config(cfg)
    engines = []
    if cfg.weights:
        from snn_perception.runtime.checkpoint import WeightsError
        from snn_perception.runtime.engine import Engine, EngineConfig, WrongTaskError

        for w, label in zip(cfg.weights, weight_labels(cfg.weights), strict=True):
            try:
                config = EngineConfig(device=cfg.device, max_model_pixels=cfg.max_model_pixels)
                engine = Engine.load(w, config, task="dehaze")
            except WrongTaskError as exc:
                hint = "; use --task segment for it" if exc.found == "segment" else ""
                needs = "dehaze evaluation needs dehaze weights (e.g. dhz)"
                raise WeightsError(f"{exc}: {needs}{hint}") from None
            for t in cfg.timesteps or [engine.info.default_timesteps]:
                engines.append((f"{label}@T{t}", engine, t))
    graded = [n for n, _, _ in engines] if "global" in cfg.gradings else []
    contrasted = [n for n, _, _ in engines] if "contrast" in cfg.gradings else []
    for name, engine, _ in engines if contrasted else []:
        if engine.info.contrast is None:
            raise WeightsError(
                f"--grading contrast: weights {engine.info.weights_path} ({name}) carry no contrast model "
                "(fit one with tools/dhz_contrast_fit.py --save); drop them or the contrast grading"
            )
    pairs = select_pairs(cfg)  # after the weights: a bad weights path fails before any image is read
    check_pairs(pairs, native=cfg.size is None)  # a damaged or too small image fails before any model runs
    rows = [n for n, _, _ in engines if "pixels" in cfg.gradings] + [f"{n}+global" for n in graded]
    rows += [f"{n}+contrast" for n in contrasted]
    names = [m for m in cfg.methods if m in (RAW, CLASSICAL)] + rows
    per: dict[str, list[dict]] = {n: [] for n in names}
    for raw_path, ref_path in tqdm(pairs, desc="evaluate", disable=not progress):
        raw, ref = read_rgb(raw_path), read_rgb(ref_path)
        if cfg.size:
            raw, ref = resize_float(raw, cfg.size), resize_float(ref, cfg.size)
        else:
            raw, ref = raw.astype(np.float32) / 255.0, ref.astype(np.float32) / 255.0
        outputs: dict[str, tuple[np.ndarray, float]] = {}
        if RAW in names:
            outputs[RAW] = (raw, 0.0)
        if CLASSICAL in names:
            t0 = time.perf_counter()
            outputs[CLASSICAL] = (metrics.classical_enhance(raw), time.perf_counter() - t0)
        for name, engine, t in engines:
            res = engine.run(raw, timesteps=t)
            if name in per:
                outputs[name] = (res.output, res.stats.inference_ms / 1e3)
            if f"{name}+global" in per or f"{name}+contrast" in per:  # one global fit serves both rows
                t0 = time.perf_counter()
                graded_out = global_grading(raw, res.output, res.stats.model_hw)
                seconds = res.stats.inference_ms / 1e3 + time.perf_counter() - t0
                if f"{name}+global" in per:
                    outputs[f"{name}+global"] = (graded_out, seconds)
                if f"{name}+contrast" in per:
                    t0 = time.perf_counter()
                    out, _ = local_contrast(raw, graded_out, engine.info.contrast, res.stats.model_hw)
                    outputs[f"{name}+contrast"] = (out, seconds + time.perf_counter() - t0)
        for name, (out, seconds) in outputs.items():
            row = {"image": raw_path.name, **_score(out, ref, cfg.no_reference_metrics), "seconds": seconds}
            per[name].append(row)
    result = {
        "config": {
            "data": cfg.data,
            "size": list(cfg.size) if cfg.size else "native",
            "split": cfg.split,
            "val_fraction": cfg.val_fraction,
            "seed": cfg.seed,
            "weights": cfg.weights,
            "timesteps": cfg.timesteps,
            "gradings": cfg.gradings,
            "max_model_pixels": cfg.max_model_pixels,
        },
        "images": [p[0].name for p in pairs],
        "methods": {},
    }
    for name, rows in per.items():
        keys = [k for k in rows[0] if k != "image"] if rows else []
        mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
        result["methods"][name] = {"mean": mean, "per_image": rows}
    return result


def format_table(result: dict) -> str:
    """A Markdown table: method, PSNR, SSIM (and UIQM/UCIQE when computed)."""
    methods = result["methods"]
    extra = [k for k in ("uiqm", "uciqe") if any(k in m["mean"] for m in methods.values())]
    head = "| method | PSNR (dB) | SSIM |" + "".join(f" {k.upper()} |" for k in extra)
    lines = [head, "|---|---:|---:|" + "---:|" * len(extra)]
    for name, m in methods.items():
        mean = m["mean"]
        cells = f"| {name} | {mean['psnr']:.2f} | {mean['ssim']:.3f} |"
        cells += "".join(f" {mean[k]:.3f} |" for k in extra)
        lines.append(cells)
    return "\n".join(lines)
