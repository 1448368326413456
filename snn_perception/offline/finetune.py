"""Fine-tune a converted Spiking-UNet on accumulated spiking flow (Spiking-UNet paper, Alg. 1).

Each batch runs the SNN for T steps without autograd, then one differentiable pass in which every
neuron returns its mean output flow and passes gradient only where its mean input current is
positive (:meth:`SpikingUNet.flow_forward`). The loss is on the SNN's real prediction at T:
cross-entropy for segmentation, L1 between the denoised image and the clean one (= L1 on the
noise map) for denoising. Thresholds stay fixed; weights and biases (already normalised) train.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from snn_perception.models.spiking_unet import SpikingUNet
from snn_perception.models.timesteps import MAX_TIMESTEPS, MIN_TIMESTEPS
from snn_perception.models.unet import class_ids
from snn_perception.offline.run_checks import finite, require
from snn_perception.offline.seg_metrics import ConfusionMatrix
from snn_perception.offline.train_unet import add_noise
from snn_perception.runtime.checkpoint import save_training_state

#: what a fine-tuning last.pt holds (written by :func:`finetune` after every epoch)
RESUME_KEYS = ("model", "optimizer", "epoch", "history")


@dataclass
class FinetuneConfig:
    timesteps: int = 4
    epochs: int = 3
    lr: float = 1e-4
    batch: int = 8
    sigma_max: float = 50.0  # denoise
    class_weights: torch.Tensor | None = None
    max_batches: int | None = None  # per epoch (tests, quick runs)

    def __post_init__(self) -> None:
        """Bad settings fail here, before the model or any image is loaded (messages name the CLI flag)."""
        require(
            MIN_TIMESTEPS <= self.timesteps <= MAX_TIMESTEPS,
            "--timesteps",
            self.timesteps,
            "between 1 and 64",
        )
        require(self.epochs >= 1, "--epochs", self.epochs, "at least 1")
        require(finite(self.lr, 0.0, above=True), "--lr", self.lr, "a finite number above 0, e.g. 1e-4")
        require(self.batch >= 1, "--batch", self.batch, "at least 1")
        require(
            finite(self.sigma_max, 0.0, high=255.0), "sigma_max", self.sigma_max, "a noise σ from 0 to 255"
        )
        require(
            self.max_batches is None or self.max_batches >= 1,
            "--max-batches",
            self.max_batches,
            "at least 1 (omit it to use every batch)",
        )


def flow_loss(model: SpikingUNet, x: torch.Tensor, y: torch.Tensor, cfg: FinetuneConfig) -> torch.Tensor:
    """Loss of the SNN's prediction after ``cfg.timesteps`` steps, differentiable by spiking flow.

    Segmentation: ``y`` holds class ids. Denoising: ``x`` is the clean image, noise is added here.
    """
    if getattr(model.config, "head", "segment") == "segment":
        weight = cfg.class_weights.to(x.device) if cfg.class_weights is not None else None
        return F.cross_entropy(model.flow_forward(x, cfg.timesteps), y, weight=weight, ignore_index=255)
    noisy = add_noise(x, cfg.sigma_max)
    return F.l1_loss(model.flow_forward(noisy, cfg.timesteps), x)


@torch.no_grad()
def evaluate_snn_segment(
    model: SpikingUNet,
    data,
    timesteps: list[int],
    batch: int = 4,
    class_names=None,
    progress: bool = False,
    device: torch.device | None = None,
) -> dict[int, dict]:
    """Scores at every T in ``timesteps`` from one run of max(T) steps (anytime output)."""
    from tqdm import tqdm

    model.eval()
    t_max = max(timesteps)
    cms = {t: ConfusionMatrix(model.config.num_classes) for t in timesteps}
    starts = range(0, len(data), batch)
    for i in tqdm(starts, desc=f"SNN T≤{t_max}", disable=not progress, leave=False, mininterval=5):
        xs, ys = zip(*(data[j] for j in range(i, min(i + batch, len(data)))), strict=True)
        x, y = torch.stack(xs).to(device or "cpu"), torch.stack(ys)
        outs = model.forward_anytime(x, t_max, timesteps)
        for t in timesteps:
            cms[t].update(class_ids(outs[t]).cpu(), y)
    return {t: cms[t].scores(class_names) for t in timesteps}


@torch.no_grad()
def evaluate_snn_denoise(
    model: SpikingUNet,
    images: list[torch.Tensor],
    timesteps: list[int],
    sigma: float = 25.0,
    seed: int = 1234,
) -> dict[int, dict]:
    """PSNR/SSIM of the denoised images at each T (fixed-seed noise, outputs clamped to [0, 1]).

    Works for the ANN too (same noise draws), so ANN and SNN are compared on identical inputs.
    """
    from snn_perception.offline.metrics import psnr, ssim

    gen = torch.Generator().manual_seed(seed)
    t_max = max(timesteps)
    acc = {t: {"psnr": [], "ssim": []} for t in timesteps}
    for clean in images:
        clean = clean.unsqueeze(0)
        noisy = clean + (sigma / 255.0) * torch.randn(clean.shape, generator=gen)
        if hasattr(model, "forward_anytime"):
            outs = model.forward_anytime(noisy, t_max, timesteps)
        else:  # the ANN: one pass serves every "T"
            y = model(noisy)
            outs = {t: y for t in timesteps}
        for t in timesteps:
            out = outs[t][0].clamp(0, 1).permute(1, 2, 0).numpy()
            ref = clean[0].permute(1, 2, 0).numpy()
            acc[t]["psnr"].append(psnr(out, ref))
            acc[t]["ssim"].append(ssim(out, ref))
    return {t: {k: float(np.mean(v)) for k, v in d.items()} for t, d in acc.items()}


def finetune(
    model: SpikingUNet,
    train_set,
    cfg: FinetuneConfig,
    out: Path | None = None,
    log=print,
    resume: dict | None = None,
    device: torch.device | None = None,
    workers: int = 0,
) -> list[dict]:
    """Adam on spiking flow; writes ``out/last.pt`` after every epoch (resumable)."""
    from tqdm import tqdm

    device = device or torch.device("cpu")
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start, history = 0, []
    if resume is not None:
        model.load_state_dict(resume["model"])
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        opt.load_state_dict(resume["optimizer"])
        start, history = int(resume["epoch"]) + 1, json.loads(resume["history"])
    loader = DataLoader(
        train_set,
        batch_size=cfg.batch,
        shuffle=True,
        drop_last=len(train_set) > cfg.batch,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    for epoch in range(start, cfg.epochs):
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / max(cfg.epochs, 1)))
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        t0, total, n = time.time(), 0.0, 0
        bar = tqdm(loader, desc=f"finetune {epoch + 1}/{cfg.epochs}", leave=False, mininterval=10)
        for k, (x, y) in enumerate(bar):
            if cfg.max_batches is not None and k >= cfg.max_batches:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = flow_loss(model, x, y, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * x.shape[0]
            n += x.shape[0]
            bar.set_postfix(loss=f"{total / n:.4f}")
        row = {"epoch": epoch + 1, "lr": lr, "loss": total / max(n, 1), "seconds": time.time() - t0}
        history.append(row)
        log(json.dumps(row))
        if out is not None:
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            save_training_state(
                out / "last.pt",
                {
                    "model": state,
                    "optimizer": opt.state_dict(),
                    "epoch": epoch,
                    "history": json.dumps(history),
                },
            )
    model.eval().cpu()
    return history
