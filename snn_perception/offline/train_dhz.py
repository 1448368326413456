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
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from snn_perception.models import registry
from snn_perception.offline.dhz_mix import validate_sources
from snn_perception.offline.ema import WeightAverage
from snn_perception.offline.losses import RestorationLoss, anytime_loss, consistency_loss
from snn_perception.offline.pairs import (
    IMAGE_SUFFIXES,
    PairAugment,
    PairedImages,
    PairsError,
    image_files,
    read_rgb,
)
from snn_perception.offline.run_checks import (
    check_run_dir,
    load_resume,
    prepare_run_dir,
)
from snn_perception.offline.train_dhz_config import VARIANTS, TrainDhzConfig  # noqa: F401  (re-exported)
from snn_perception.offline.widen import WidthLR
from snn_perception.runtime.checkpoint import WeightsError

ARCH = "snntrans_dhz"
#: what ``train`` writes into its run folder: ``overwrite`` removes these (and nothing else)
RUN_OUTPUTS = ("best.safetensors", "last.pt", "metrics.csv", "summary.json", "tensorboard")
#: what a ``train dhz`` last.pt holds (written at the end of every epoch)
_RESUME_KEYS = ("model", "optimizer", "epoch", "step", "best", "rng", "history")


def _resolve_device(name: str) -> torch.device:
    """The engine's rule: a missing GPU for 'cuda' is one warning line, then the CPU."""
    from snn_perception.runtime.engine import resolve_device

    return resolve_device(name)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def build_datasets(cfg: TrainDhzConfig):
    """Training set (with its sampler when mixing), validation sets per source, and the names of
    the pairs in each (recorded in the checkpoint)."""
    from snn_perception.offline import dhz_mix

    weights = cfg.mix[: len(cfg.data)] or [1.0] * len(cfg.data)
    resizes = [r or None for r in cfg.source_resize] or [cfg.resize] * len(cfg.data)
    sources = dhz_mix.split_sources(
        cfg.data, weights, resizes, cfg.val_fraction, cfg.val_max, cfg.val_split_seed
    )
    n_val = sum(len(src.val) for src in sources)
    if cfg.val_fraction > 0 and not n_val:
        raise PairsError(
            f"--val-fraction {cfg.val_fraction} of {sum(len(s.train) for s in sources)} pair(s) leaves no "
            "validation pair: add pairs, or give --val-fraction 0 to train without validation "
            "(the last epoch is exported)"
        )
    augment = PairAugment(
        crop=cfg.crop,
        resize_hw=None,
        scale=(cfg.scale_min, 1.0),
        extra_water=cfg.extra_water,
        tone=cfg.tone_jitter,
    )
    train, train_names = dhz_mix.training_set(sources, augment)
    parts = [(src.name, len(src.train), src.weight) for src in sources]
    if cfg.synthetic > 0:
        side = max(cfg.crop, cfg.resize or cfg.crop)
        if cfg.synthetic_from:
            clean, photos = clean_images(cfg.synthetic_from, cfg.synthetic, cfg.seed), False
        else:
            clean, photos = [ref for part in train.datasets for _, ref in part.pairs], True
        extra = synthetic_pairs(cfg.synthetic, clean, side, cfg.seed, photos=photos)
        aug = dataclasses.replace(augment, resize_hw=(side, side))
        synth = PairedImages(list(extra), augment=aug, names=[f"synthetic_{i}" for i in range(cfg.synthetic)])
        parts.append(("synthetic", cfg.synthetic, cfg.mix[-1] if cfg.mix else 1.0))
        train = torch.utils.data.ConcatDataset([*train.datasets, synth])
        train_names += synth.names
    val = dhz_mix.validation_sets(sources, cfg.val_size)
    val_names = [f"{src.name}/{p[0].name}" for src in sources for p in src.val]
    if val and cfg.synthetic_val > 0:
        # a different seed from the training renders; sources are validation references only
        refs = [ref for part in val.values() for _, ref in part.pairs]
        extra = synthetic_pairs(cfg.synthetic_val, refs, cfg.val_size, cfg.seed + 1, photos=False)
        val["synthetic_val"] = PairedImages(
            list(extra), names=[f"synthetic_val_{i}" for i in range(cfg.synthetic_val)]
        )
        val_names += val["synthetic_val"].names
    return train, (parts if cfg.mix else None), val, train_names, val_names


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

    meta = {
        "arch": ARCH,
        "task": "dehaze",
        "variant": cfg.variant,
        "default_timesteps": cfg.timesteps,
        "readout": cfg.readout,
        "dim": cfg.dim,
        "heads": cfg.heads,
    }
    model = registry.build(ARCH, meta)
    model.set_grad_checkpointing(cfg.grad_checkpoint)
    # weights to start from are checked before any image is read or anything written
    state = load_resume(cfg.resume, model, kind="train dhz", required=_RESUME_KEYS) if cfg.resume else None
    if state is not None and ("ema" in state) != (cfg.ema > 0):
        raise WeightsError(
            f"--resume {cfg.resume}: written by a run {'with' if 'ema' in state else 'without'} --ema; "
            "resume with the original run's settings"
        )
    added = load_init(model, cfg.init) if cfg.init else None
    if cfg.widen_lr != 1.0 and not added:
        raise ValueError(
            f"--widen-lr {cfg.widen_lr}: scales the step of the weights widening adds, but --init's "
            f"weights are as wide as --dim {cfg.dim}; drop it or give a larger --dim"
        )
    model = model.to(device)
    width_lr = WidthLR(model, added or {}, cfg.widen_lr)
    train_set, mix_parts, val_set, train_names, val_names = build_datasets(cfg)
    val_set = val_set or None
    out = prepare_run_dir(cfg.out, RUN_OUTPUTS, overwrite=cfg.overwrite and main)
    # The official variant's first five transformer blocks never reach the output (as in
    # the published code), so DDP must expect parameters without gradients.
    unused = cfg.variant == "official"
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=unused)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = RestorationLoss(cfg.loss)
    mix_gen = torch.Generator()
    if mix_parts is not None:
        if world > 1:
            raise ValueError("--mix trains in one process; drop --mix or run without torchrun")
        from snn_perception.offline.dhz_mix import mixing_sampler, mixing_shares

        sampler = mixing_sampler(mix_parts, cfg.epoch_size or len(train_set), mix_gen)
        if main:
            shares = ", ".join(f"{k} {v:.0%}" for k, v in mixing_shares(mix_parts).items())
            print(f"mixing {len(sampler)} draws per epoch: {shares}", flush=True)
    else:
        sampler = DistributedSampler(train_set, shuffle=True, seed=cfg.seed) if world > 1 else None
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=sampler is None, sampler=sampler)
    steps = tuple(sorted(cfg.anytime)) or None
    # weights follow the steps once sorted, as the read-outs come; none given: equal weights
    anytime_weights = (
        [w for _, w in sorted(zip(cfg.anytime, cfg.anytime_weights, strict=True))]
        if cfg.anytime_weights
        else []
    )

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
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        mix_gen.manual_seed(cfg.seed * 100_003 + epoch)  # each epoch's draws fixed, so resume repeats them
        sums: dict[str, float] = {}
        bar = progress.bar(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not main, leave=False)
        for raw, ref in bar:
            raw, ref = raw.to(device), ref.to(device)
            if steps is None:
                loss, parts = loss_fn(net(raw, cfg.timesteps), ref)
            else:  # anytime: the mean loss of the outputs read out after each step in --anytime
                per_image = cfg.monotone_per == "image"
                outs = net(raw, max(steps), steps=steps)
                scored_steps = [loss_fn(out, ref, per_image=per_image) for out in outs]
                loss = anytime_loss([item[0] for item in scored_steps], anytime_weights or None, cfg.monotone)
                parts = {k: sum(item[1][k] for item in scored_steps) / len(steps) for k in scored_steps[0][1]}
                if cfg.consistency > 0:
                    agree = consistency_loss(outs)
                    loss = loss + cfg.consistency * agree
                    parts["consistency"] = float(agree.detach())
                parts["total"] = float(loss.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            width_lr.step(opt)
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
            row.update(validate_sources(scored, val_set, cfg.timesteps, steps or (), loss_fn, device))
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


def load_init(model: torch.nn.Module, path: str) -> dict[str, torch.Tensor] | None:
    """Start from earlier snnTrans-DHZ weights (either variant: they share every parameter).

    Weights of a narrower transformer (``dim`` below ``--dim``) are widened without changing the
    output (:func:`snn_perception.offline.widen.widen_into`; returns its masks of the added
    entries, else None); wider ones are refused.

    From ``leaky`` weights into a ``normalized`` model the two read-out layers are scaled by the
    leaky read-out's gain at the weights' T, so the new model starts with the same output at that T.
    Another architecture is a one-line WeightsError naming the expected and the found one.
    """
    from snn_perception.models.neurons import readout_gain
    from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, load_into

    cfg = model.cfg
    try:
        ckpt = load_checkpoint(path, expect_arch=ARCH)
        width = ckpt.metadata.get("dim", 64)
        added = None
        if width == cfg.dim:
            load_into(model, ckpt)
        else:
            added = _load_widened(model, ckpt, width)
    except WeightsError as exc:
        raise WeightsError(f"--init {exc}") from None
    if ckpt.metadata.get("readout", "leaky") == "leaky" and cfg.readout == "normalized":
        t0 = int(ckpt.metadata.get("default_timesteps", 4))
        gain = readout_gain(cfg.tau, t0)
        with torch.no_grad():
            for layer in (model.H_est.up3_Hx, model.BL_est_conv.convf):
                layer.weight.mul_(gain)
                layer.bias.mul_(gain)
        print(
            f"--init: leaky read-out weights rescaled by {gain:.4f} for the normalized read-out "
            f"(the same output at T = {t0})"
        )
    return added


def _load_widened(model: torch.nn.Module, ckpt, width: object) -> dict[str, torch.Tensor]:
    from snn_perception.models.dhz import SnnTransDHZ
    from snn_perception.offline.widen import widen_into
    from snn_perception.runtime.checkpoint import WeightsError, load_into

    cfg = model.cfg
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise WeightsError(f"{ckpt.path}: metadata dim {width!r} is not a positive integer")
    if width > cfg.dim:
        raise WeightsError(
            f"{ckpt.path}: transformer width {width} is wider than --dim {cfg.dim}; give --dim {width} "
            "or more (weights can be widened, not narrowed)"
        )
    try:
        narrow = SnnTransDHZ(dataclasses.replace(cfg, dim=width, heads=ckpt.metadata.get("heads", 8)))
        load_into(narrow, ckpt)
        added = widen_into(narrow, model)
    except ValueError as exc:
        raise WeightsError(f"{ckpt.path}: cannot widen to --dim {cfg.dim}: {exc}") from None
    print(f"--init: transformer widened from {width} to {cfg.dim} channels (the same output to start)")
    return added


def _export_best(model, cfg: TrainDhzConfig, out: Path, row: dict, train_names, val_names) -> None:
    from snn_perception.runtime.checkpoint import save_checkpoint

    metadata = {
        "arch": ARCH,
        "task": "dehaze",
        "variant": cfg.variant,
        "default_timesteps": cfg.timesteps,
        "readout": cfg.readout,
        "dim": cfg.dim,
        "heads": cfg.heads,
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
