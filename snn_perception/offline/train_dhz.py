"""Surrogate-gradient training of snnTrans-DHZ on paired underwater images.

BPTT runs through all T steps (the model's neurons carry the sigmoid surrogate).
Everything a resumed run needs (weights, optimiser, scheduler, RNG states, best
score, step) is saved after every epoch in ``last.pt`` (tensors and plain values
only, so it loads with ``weights_only=True``); the best model by validation loss is
exported as ``best.safetensors`` in the project's checkpoint format with its metadata.
Under ``torchrun`` (WORLD_SIZE > 1) the same code trains with DistributedDataParallel.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from snn_perception.models import registry
from snn_perception.offline.ema import WeightAverage
from snn_perception.offline.losses import LossWeights, RestorationLoss, ssim
from snn_perception.offline.pairs import (
    IMAGE_SUFFIXES,
    TONE_JITTER_MAX,
    PairAugment,
    PairedImages,
    PairsError,
    image_files,
    list_pairs,
    read_rgb,
    split_pairs,
)
from snn_perception.offline.run_checks import (
    check_run_dir,
    finite,
    load_resume,
    prepare_run_dir,
    require,
)
from snn_perception.runtime.checkpoint import WeightsError

ARCH = "snntrans_dhz"
VARIANTS = ("official", "paper")
#: what ``train`` writes into its run folder: ``overwrite`` removes these (and nothing else)
RUN_OUTPUTS = ("best.safetensors", "last.pt", "metrics.csv", "summary.json", "tensorboard")
#: what a ``train dhz`` last.pt holds (written at the end of every epoch)
_RESUME_KEYS = ("model", "optimizer", "epoch", "step", "best", "rng", "history")


@dataclass
class TrainDhzConfig:
    data: list[str]
    out: str = "runs/dhz"
    variant: str = "official"
    timesteps: int = 4
    crop: int = 256
    resize: int | None = 512
    scale_min: float = 1.0
    extra_water: float = 0.0
    tone_jitter: float = 0.0
    #: decay of an exponential moving average of the weights that is validated and exported
    #: instead of the raw weights (0: off; 0.99 averages over the last ~100 steps)
    ema: float = 0.0
    #: recompute activations in backward instead of storing them: less memory, slower steps
    grad_checkpoint: bool = False
    epochs: int = 100
    batch: int = 4
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    val_size: int = 256
    seed: int = 0
    #: seed of the train/validation split alone (None: ``seed``), so runs with different
    #: ``seed``s (augmentation, order, renders) can share one validation split, e.g. to average them
    split_seed: int | None = None
    synthetic: int = 0
    #: synthetic pairs rendered from the *validation* references and added to the validation
    #: set, so model selection also rewards undoing waters the real validation pairs lack
    synthetic_val: int = 0
    #: folders of good-looking images to render synthetic pairs from (e.g. well-lit underwater
    #: footage, so the pairs look like your water); default: training references + bundled photos
    synthetic_from: list[str] = field(default_factory=list)
    init: str | None = None
    resume: str | None = None
    device: str = "auto"
    threads: int | None = None
    loss: LossWeights = field(default_factory=LossWeights)
    overwrite: bool = False  # replace an earlier run in ``out`` (otherwise refused unless resuming)
    command: str = ""

    def __post_init__(self) -> None:
        """Bad settings fail here, before any image is read (messages name the CLI flag)."""
        require(bool(self.data), "--data", self.data, "at least one folder")
        resolved = [Path(d).expanduser().resolve() for d in self.data]
        require(len(set(resolved)) == len(resolved), "--data", " ".join(self.data),
                "different folders (one given twice would weigh its pairs double)")
        require(self.variant in VARIANTS, "--variant", self.variant, f"one of {', '.join(VARIANTS)}")
        require(1 <= self.timesteps <= 64, "--timesteps", self.timesteps, "between 1 and 64")
        require(self.crop >= 8 and self.crop % 8 == 0, "--crop", self.crop, "a positive multiple of 8")
        # the transformer runs at 1/8 resolution: one 8×8 crop is a single value per channel there,
        # and BatchNorm cannot train on one value
        require(self.crop >= 16 or self.batch >= 2, "--crop", self.crop, "at least 16 with --batch 1")
        require(self.resize is None or self.resize >= self.crop, "--resize", self.resize,
                f"0 (native size) or at least --crop ({self.crop})")
        require(finite(self.scale_min, 0.1, high=1.0), "--scale-min", self.scale_min, "in [0.1, 1]")
        require(finite(self.extra_water, 0.0, high=1.0), "--extra-water", self.extra_water,
                "a probability in [0, 1]")
        require(finite(self.tone_jitter, 0.0, high=TONE_JITTER_MAX), "--tone-jitter", self.tone_jitter,
                f"in [0, {TONE_JITTER_MAX}]")
        require(finite(self.ema, 0.0) and self.ema < 1, "--ema", self.ema,
                "0 (off) or a decay in (0, 1), e.g. 0.99")
        require(self.epochs >= 1, "--epochs", self.epochs, "at least 1")
        require(self.batch >= 1, "--batch", self.batch, "at least 1")
        require(finite(self.lr, 0.0, above=True), "--lr", self.lr, "a finite number above 0, e.g. 1e-3")
        require(finite(self.min_lr, 0.0, high=self.lr if finite(self.lr, 0.0) else math.inf), "--min-lr",
                self.min_lr, f"a finite number in [0, --lr ({self.lr})]: the schedule decays from --lr to it")
        require(finite(self.weight_decay, 0.0), "weight_decay", self.weight_decay, "a finite number ≥ 0")
        require(finite(self.val_fraction, 0.0) and self.val_fraction < 1, "--val-fraction",
                self.val_fraction, "in [0, 1)")
        require(self.val_size >= 8, "--val-size", self.val_size, "at least 8 (pixels per side)")
        require(self.synthetic >= 0, "--synthetic", self.synthetic, "0 or more pairs")
        require(not self.synthetic_from or self.synthetic > 0, "--synthetic-from", self.synthetic_from,
                "used only with --synthetic N > 0")
        require(self.synthetic_val >= 0, "--synthetic-val", self.synthetic_val, "0 or more pairs")
        require(self.synthetic_val == 0 or self.val_fraction > 0, "--synthetic-val", self.synthetic_val,
                "0 when --val-fraction is 0 (it renders from the validation references)")
        require(self.threads is None or self.threads >= 1, "--threads", self.threads, "at least 1")
        weights = {"--w-mse": self.loss.mse, "--w-ssim": self.loss.ssim, "--w-tv": self.loss.tv}
        for flag, w in weights.items():
            require(finite(w, 0.0), flag, w, "a finite number ≥ 0")
        if not any(w > 0 for w in weights.values()):
            raise ValueError("--w-mse, --w-ssim and --w-tv are all 0: at least one must be above 0")

    @property
    def val_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed


def _resolve_device(name: str) -> torch.device:
    """The engine's rule: a missing GPU for 'cuda' is one warning line, then the CPU."""
    from snn_perception.runtime.engine import resolve_device

    return resolve_device(name)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def build_datasets(cfg: TrainDhzConfig) -> tuple[PairedImages, PairedImages, list[str], list[str]]:
    train_paths, val_paths = [], []
    for root in cfg.data:
        pairs = list_pairs(Path(root))
        tr, va = split_pairs(pairs, cfg.val_fraction, cfg.val_split_seed)
        if not tr:
            raise PairsError(
                f"--val-fraction {cfg.val_fraction} leaves no training pair of the {len(pairs)} in {root}: "
                "lower it"
            )
        train_paths += tr
        val_paths += va
    if cfg.val_fraction > 0 and not val_paths:
        raise PairsError(
            f"--val-fraction {cfg.val_fraction} of {len(train_paths)} pair(s) leaves no validation pair: "
            "add pairs, or give --val-fraction 0 to train without validation (the last epoch is exported)"
        )
    resize = (cfg.resize, cfg.resize) if cfg.resize else None
    augment = PairAugment(
        crop=cfg.crop, resize_hw=resize, scale=(cfg.scale_min, 1.0), extra_water=cfg.extra_water,
        tone=cfg.tone_jitter,
    )
    train = PairedImages.from_paths(train_paths, augment=augment)
    if cfg.synthetic > 0:
        side = max(cfg.crop, cfg.resize or cfg.crop)
        if cfg.synthetic_from:
            sources, photos = clean_images(cfg.synthetic_from, cfg.synthetic, cfg.seed), False
        else:
            sources, photos = [ref for _, ref in train.pairs], True
        extra = synthetic_pairs(cfg.synthetic, sources, side, cfg.seed, photos=photos)
        names = train.names + [f"synthetic_{i}" for i in range(cfg.synthetic)]
        train = PairedImages(train.pairs + list(extra), augment=train.augment, names=names)
    val = PairedImages.from_paths(val_paths, eval_hw=(cfg.val_size, cfg.val_size)) if val_paths else None
    val_names = [p[0].name for p in val_paths]
    if val is not None and cfg.synthetic_val > 0:
        # a different seed from the training renders; sources are validation references only
        refs = [ref for _, ref in val.pairs]
        extra = synthetic_pairs(cfg.synthetic_val, refs, cfg.val_size, cfg.seed + 1, photos=False)
        val_names += [f"synthetic_val_{i}" for i in range(cfg.synthetic_val)]
        val = PairedImages(val.pairs + list(extra), names=val.names + val_names[len(val.names):])
    return train, val, [p[0].name for p in train_paths], val_names


def clean_images(folders: list[str], n: int, seed: int) -> list[np.ndarray]:
    """Up to ``n`` images drawn (seeded, without replacement) from ``folders``, decoded as RGB."""
    paths = []
    for folder in folders:
        found = image_files(Path(folder))
        if not found:
            raise PairsError(f"--synthetic-from {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        paths += found
    order = np.random.default_rng(seed).permutation(len(paths))[:n]
    return [read_rgb(paths[i]) for i in sorted(order)]


def synthetic_pairs(
    n: int, references: list[np.ndarray], side: int, seed: int, photos: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` (raw, clean) pairs rendered through the underwater image-formation model.

    Clean sources are the training references (same domain, never validation images)
    and (``photos``) scikit-image's bundled public-domain photos; each pair gets random water,
    distance, depth gradient and noise from :func:`underwater_render.synthetic_pair`.
    """
    from snn_perception.offline.underwater_render import SKIMAGE_PHOTOS, _photo, synthetic_pair

    rng = np.random.default_rng(seed)
    sources = list(references) + ([_photo(name) for name in SKIMAGE_PHOTOS] if photos else [])
    pairs = []
    for i in range(n):
        clean = sources[i % len(sources)]
        h, w = clean.shape[:2]
        c = min(h, w)
        top, left = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        square = cv2.resize(clean[top : top + c, left : left + c], (side, side), interpolation=cv2.INTER_AREA)
        pairs.append(synthetic_pair(square, rng))
    return pairs


def cosine_lr(cfg: TrainDhzConfig, epoch: int) -> float:
    if cfg.epochs <= 1:
        return cfg.lr
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * epoch / (cfg.epochs - 1)))


@torch.no_grad()
def validate(model, data: PairedImages, timesteps: int, loss_fn: RestorationLoss, device) -> dict[str, float]:
    """Validation loss, PSNR and SSIM (outputs clamped to [0, 1] for the metrics)."""
    model.eval()
    totals = {"val_loss": 0.0, "val_psnr": 0.0, "val_ssim": 0.0}
    for i in range(len(data)):
        raw, ref = (t.unsqueeze(0).to(device) for t in data[i])
        out = model(raw, timesteps)
        totals["val_loss"] += float(loss_fn(out, ref)[0])
        mse = float(torch.mean((out.clamp(0, 1) - ref) ** 2))
        totals["val_psnr"] += 10 * math.log10(1.0 / max(mse, 1e-12))
        totals["val_ssim"] += float(ssim(out, ref))
    model.train()
    return {k: v / len(data) for k, v in totals.items()}


def _rng_state() -> dict:
    """Every RNG that shapes training (crops, flips, shuffling), as weights_only-safe values."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": json.dumps(random.getstate()),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(state["numpy_pos"]), 0, 0.0))


def train(cfg: TrainDhzConfig) -> dict:
    """Run (or resume) training; returns the final summary written to ``summary.json``."""
    check_run_dir(cfg.out, resume=cfg.resume, overwrite=cfg.overwrite, data=cfg.data)
    world, rank, local_rank = _dist_info()
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    device = _resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    main = rank == 0
    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    torch.manual_seed(cfg.seed + rank)

    meta = {"arch": ARCH, "task": "dehaze", "variant": cfg.variant, "default_timesteps": cfg.timesteps}
    model = registry.build(ARCH, meta)
    model.set_grad_checkpointing(cfg.grad_checkpoint)
    # weights to start from are checked before any image is read or anything written
    state = load_resume(cfg.resume, model, kind="train dhz", required=_RESUME_KEYS) if cfg.resume else None
    if state is not None and ("ema" in state) != (cfg.ema > 0):
        raise WeightsError(
            f"--resume {cfg.resume}: written by a run {'with' if 'ema' in state else 'without'} --ema; "
            "resume with the original run's settings"
        )
    if cfg.init:
        load_init(model, cfg.init)
    model = model.to(device)
    train_set, val_set, train_names, val_names = build_datasets(cfg)
    out = prepare_run_dir(cfg.out, RUN_OUTPUTS, overwrite=cfg.overwrite and main)
    # The official variant's first five transformer blocks never reach the output (as in
    # the published code), so DDP must expect parameters without gradients.
    unused = cfg.variant == "official"
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=unused)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = RestorationLoss(cfg.loss)
    sampler = DistributedSampler(train_set, shuffle=True, seed=cfg.seed) if world > 1 else None
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=sampler is None, sampler=sampler)

    # the averaged copy is what validation scores and what best.safetensors holds
    ema = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    scored = ema.model if ema is not None else model
    start_epoch, step, best = 0, 0, float("inf")
    history: list[dict] = []
    if state is not None:
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, step, best = int(state["epoch"]) + 1, int(state["step"]), float(state["best"])
        _set_rng_state(state["rng"])
        history = json.loads(state["history"])
        if main:
            scored_as = f"best val loss {best:.5f}" if val_set is not None else "no validation set"
            print(f"resumed from {cfg.resume}: epoch {start_epoch}, step {step}, {scored_as}")

    csv_path = out / "metrics.csv"
    writer = _tensorboard(out) if main else None
    from snn_perception.runtime import progress

    started = time.monotonic()
    for epoch in range(start_epoch, cfg.epochs):
        lr = cosine_lr(cfg, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        if sampler is not None:
            sampler.set_epoch(epoch)
        sums: dict[str, float] = {}
        bar = progress.bar(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not main, leave=False)
        for raw, ref in bar:
            raw, ref = raw.to(device), ref.to(device)
            pred = net(raw, cfg.timesteps)
            loss, parts = loss_fn(pred, ref)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            step += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{parts['total']:.4f}")
            if writer:
                writer.add_scalar("train/loss", parts["total"], step)
        row = {"epoch": epoch + 1, "step": step, "lr": lr}
        row.update({f"train_{k}": v / max(1, len(loader)) for k, v in sums.items()})
        if val_set is not None:
            row.update(validate(scored, val_set, cfg.timesteps, loss_fn, device))
        row["elapsed_s"] = time.monotonic() - started
        history.append(row)
        if main:
            # without a validation set the last epoch is exported: a training loss selects nothing
            if val_set is None or row["val_loss"] < best:
                best = row["val_loss"] if val_set is not None else best
                _export_best(scored, cfg, out, row, train_names, val_names)
            _append_csv(csv_path, row)
            if writer:
                for k, v in row.items():
                    writer.add_scalar(f"epoch/{k}", v, epoch + 1)
            print(json.dumps(row), flush=True)
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch,
                    "step": step,
                    "best": best,
                    "rng": _rng_state(),
                    "history": json.dumps(history),
                    "config": json.dumps(asdict(cfg)),
                    **({"ema": ema.state_dict()} if ema is not None else {}),
                },
                out / "last.pt",
            )
    summary = {
        "best_val_loss": best if val_set is not None else None,
        "selection": "lowest validation loss" if val_set is not None else "last epoch (no validation set)",
        "epochs": cfg.epochs,
        "steps": step,
        "history": history,
    }
    if main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if writer:
        writer.close()
    if world > 1:
        dist.destroy_process_group()
    return summary


def load_init(model: torch.nn.Module, path: str) -> None:
    """Start from earlier snnTrans-DHZ weights (either variant: they share every parameter).

    Another architecture is a one-line WeightsError naming the expected and the found one.
    """
    from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, load_into

    try:
        load_into(model, load_checkpoint(path, expect_arch=ARCH))
    except WeightsError as exc:
        raise WeightsError(f"--init {exc}") from None


def _export_best(model, cfg: TrainDhzConfig, out: Path, row: dict, train_names, val_names) -> None:
    from snn_perception.runtime.checkpoint import save_checkpoint

    metadata = {
        "arch": ARCH,
        "task": "dehaze",
        "variant": cfg.variant,
        "default_timesteps": cfg.timesteps,
        "training": {
            "data": cfg.data,
            "train_images": len(train_names),
            "val_images": val_names,
            "crop": cfg.crop,
            "resize": cfg.resize,
            "epoch": row["epoch"],
            "step": row["step"],
            # every setting the run used, so the checkpoint alone says how it was made
            "config": {k: v for k, v in asdict(cfg).items() if k not in ("data", "command", "overwrite")},
        },
        "metrics": {k: v for k, v in row.items() if k.startswith("val_")},
        "command": cfg.command,
    }
    save_checkpoint(out / "best.safetensors", model.state_dict(), metadata)


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("note: tensorboard is not installed; logging to metrics.csv only", file=sys.stderr)
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))
