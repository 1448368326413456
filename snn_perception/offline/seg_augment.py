"""Training augmentation for segmentation: random-resized crops, flips and colour jitter.

The shipped U-Net underfit with plain crops; a pretrained encoder needs the scale and colour
variety of the usual ImageNet-style recipe. Images stay in memory at their stored size (SUIM here:
≤ 320 px) and every sample is cut and resized on the fly, so each epoch sees new views. Random
numbers come from torch's generator, which DataLoader seeds per worker: runs are reproducible for
a given seed and worker count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class AugmentConfig:
    """Random-resized crop (area share and aspect range, as torchvision's), flips, colour jitter."""

    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.03  # fraction of the hue circle


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


def random_resized_box(h: int, w: int, aug: AugmentConfig) -> tuple[int, int, int, int]:
    """(y, x, ch, cw): a box of random area share and aspect ratio (the whole image as fallback)."""
    area = h * w
    for _ in range(10):
        target = area * _uniform(*aug.scale)
        ratio = math.exp(_uniform(math.log(aug.ratio[0]), math.log(aug.ratio[1])))
        cw = round(math.sqrt(target * ratio))
        ch = round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            y = int(torch.randint(0, h - ch + 1, ()))
            x = int(torch.randint(0, w - cw + 1, ()))
            return y, x, ch, cw
    return 0, 0, h, w


def colour_jitter(img: np.ndarray, aug: AugmentConfig) -> np.ndarray:
    """Brightness, contrast, saturation and hue, each by a random factor, on an RGB uint8 image."""
    x = img.astype(np.float32)
    x *= _uniform(1 - aug.brightness, 1 + aug.brightness)
    mean = x.mean()
    x = (x - mean) * _uniform(1 - aug.contrast, 1 + aug.contrast) + mean
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - grey[..., None]) * _uniform(1 - aug.saturation, 1 + aug.saturation) + grey[..., None]
    x = np.clip(x, 0, 255).astype(np.uint8)
    if aug.hue > 0:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # OpenCV's 8-bit hue is 0..179
        shift = round(_uniform(-aug.hue, aug.hue) * 180)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return x


class AugmentedSegDataset(Dataset):
    """Pairs held at their stored size; each item is a fresh random view at ``size`` (H, W)."""

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        size: tuple[int, int],
        num_classes: int = 8,
        aug: AugmentConfig | None = None,
        ignore_index: int = 255,
    ) -> None:
        from snn_perception.offline.seg_data import load_pairs

        self.pairs, self.size, self.aug = list(pairs), tuple(size), aug or AugmentConfig()
        self.num_classes = num_classes
        self.images, self.masks = load_pairs(self.pairs, None, num_classes, ignore_index)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, mask = self.images[idx], self.masks[idx]
        y, x, ch, cw = random_resized_box(*mask.shape, self.aug)
        out_h, out_w = self.size
        img = cv2.resize(img[y : y + ch, x : x + cw], (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask[y : y + ch, x : x + cw], (out_w, out_h), interpolation=cv2.INTER_NEAREST)
        if float(torch.rand(())) < self.aug.hflip:
            img, mask = img[:, ::-1], mask[:, ::-1]
        img = colour_jitter(np.ascontiguousarray(img), self.aug)
        image = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
        return image, torch.from_numpy(np.ascontiguousarray(mask)).long()


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, eps: float = 1.0
) -> torch.Tensor:
    """1 − mean soft Dice over the classes present in the batch (ignored pixels left out)."""
    valid = target != ignore_index
    probs = logits.float().softmax(1) * valid.unsqueeze(1)
    onehot = torch.zeros_like(probs).scatter_(1, target.clamp(max=logits.shape[1] - 1).unsqueeze(1), 1.0)
    onehot = onehot * valid.unsqueeze(1)
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = onehot.sum((0, 2, 3)) > 0
    dice = (2 * inter + eps) / (denom + eps)
    return 1.0 - dice[present].mean() if bool(present.any()) else logits.sum() * 0.0
