"""Training on several pair sources at once: per-source splits, mixing ratios, per-source scores.

Why: one source teaches one grading (the first ``dhz`` learned LSUI's). Mixing sources needs three
things a single folder did not: a validation split *per source* (fixed by the split seed, so every
run and every weighting scores the same held-out pairs), sampling weights that are not simply each
folder's size (2,993 synthetic EUVP pairs would drown 65 LSUI ones), and a selection score that
weighs every source equally instead of by its number of validation images.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Dataset, WeightedRandomSampler

from snn_perception.offline.losses import RestorationLoss, ssim
from snn_perception.offline.pairs import PairAugment, PairedImages, PairsError, list_pairs, split_pairs

Pair = tuple[Path, Path]


@dataclass(frozen=True)
class SourceSplit:
    """One ``--data`` folder: its name (the folder's), training and validation pairs, how it is
    weighed in sampling and at what square size (``None``: native) its pairs are cropped from."""

    name: str
    train: list[Pair]
    val: list[Pair]
    weight: float
    resize: int | None


def split_sources(
    data: list[str],
    weights: list[float],
    resizes: list[int | None],
    val_fraction: float,
    val_max: int,
    seed: int,
) -> list[SourceSplit]:
    """Each folder split on its own (``split_pairs``: the same pairs for the same seed and fraction,
    whatever else is mixed in). ``val_max`` > 0 caps a source's validation pairs (the first of its
    seeded order are kept; the rest train), so a large source does not make validation slow."""
    out = []
    names = _unique_names(data)
    for root, name, weight, resize in zip(data, names, weights, resizes, strict=True):
        pairs = list_pairs(Path(root))
        tr, va = split_pairs(pairs, val_fraction, seed)
        if val_max and len(va) > val_max:
            tr, va = tr + va[val_max:], va[:val_max]
        if not tr:
            raise PairsError(
                f"--val-fraction {val_fraction} leaves no training pair of the {len(pairs)} in {root}: "
                "lower it"
            )
        out.append(SourceSplit(name, tr, va, weight, resize))
    return out


def _unique_names(data: list[str]) -> list[str]:
    """Folder names, made unique with their parent's name where two folders share one."""
    names = [Path(d).name for d in data]
    return [
        f"{Path(d).parent.name}_{n}" if names.count(n) > 1 else n for d, n in zip(data, names, strict=True)
    ]


def training_set(sources: list[SourceSplit], augment: PairAugment) -> tuple[ConcatDataset, list[str]]:
    """All sources' training pairs, each source with its own resize (crops, flips and the other
    augmentations shared); returns the dataset and the pair names in its order."""
    parts: list[Dataset] = []
    names: list[str] = []
    for src in sources:
        resize = (src.resize, src.resize) if src.resize else None
        aug = dataclasses.replace(augment, resize_hw=resize)
        parts.append(PairedImages.from_paths(src.train, augment=aug))
        names += [f"{src.name}/{p[0].name}" for p in src.train]
    return ConcatDataset(parts), names


def mixing_sampler(
    parts: list[tuple[str, int, float]], epoch_size: int, generator: torch.Generator
) -> WeightedRandomSampler:
    """Draws ``epoch_size`` training pairs per epoch (with replacement) from the concatenated
    ``(name, pairs, weight)`` parts so that each part's share is its weight over the sum of weights,
    uniform within a part."""
    per_pair = [w / n for _, n, w in parts for _ in range(n)]
    return WeightedRandomSampler(per_pair, epoch_size, replacement=True, generator=generator)


def mixing_shares(parts: list[tuple[str, int, float]]) -> dict[str, float]:
    total = sum(w for _, _, w in parts)
    return {name: w / total for name, _, w in parts}


def validation_sets(sources: list[SourceSplit], size: int) -> dict[str, PairedImages]:
    """Whole validation images of every source that has some, resized to ``size``²."""
    return {s.name: PairedImages.from_paths(s.val, eval_hw=(size, size)) for s in sources if s.val}


@torch.no_grad()
def validate_sources(
    model,
    sets: dict[str, PairedImages],
    timesteps: int,
    steps: tuple[int, ...],
    loss_fn: RestorationLoss,
    device: torch.device,
) -> dict[str, float]:
    """Validation loss, PSNR and SSIM (outputs clamped to [0, 1] for the metrics) per source and
    averaged over sources with equal weight, at ``timesteps``; with ``steps`` also the loss, PSNR and
    SSIM after each of those steps (one run of the longest, read out along the way).

    ``val_loss``, the selection score, is the mean over sources of each source's mean loss at
    ``timesteps``: with one source it is the plain mean over its images, as before.
    """
    model.eval()
    all_steps = tuple(sorted(set(steps) | {timesteps}))
    sums: dict[str, dict[str, float]] = {}
    for name, data in sets.items():
        acc = sums.setdefault(name, {})
        for i in range(len(data)):
            raw, ref = (t.unsqueeze(0).to(device) for t in data[i])
            outs = (
                model(raw, max(all_steps), steps=all_steps)
                if len(all_steps) > 1
                else model(raw, timesteps)[None]
            )
            for t, out in zip(all_steps, outs, strict=True):
                for k, v in _scores(out, ref, loss_fn).items():
                    acc[f"{k}_T{t}"] = acc.get(f"{k}_T{t}", 0.0) + v / len(data)
    model.train()
    row: dict[str, float] = {}
    for k in next(iter(sums.values())):
        mean = sum(s[k] for s in sums.values()) / len(sums)
        metric, t = k.rsplit("_T", 1)
        if int(t) == timesteps:
            row[f"val_{metric}"] = mean
            for name, s in sums.items():
                if len(sums) > 1:
                    row[f"val_{metric}_{name}"] = s[k]
        if len(all_steps) > 1:
            row[f"val_{metric}_T{t}"] = mean
    return row


def _scores(out: torch.Tensor, ref: torch.Tensor, loss_fn: RestorationLoss) -> dict[str, float]:
    mse = float(torch.mean((out.clamp(0, 1) - ref) ** 2))
    return {
        "loss": float(loss_fn(out, ref)[0]),
        "psnr": 10 * math.log10(1.0 / max(mse, 1e-12)),
        "ssim": float(ssim(out, ref)),
    }
