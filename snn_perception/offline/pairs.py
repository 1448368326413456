"""Paired underwater images (``raw/`` + ``reference/`` with the same file names).

Images are decoded once and kept in memory as uint8: the paired sets we train on are
small (tens to a few thousand images) and decoding JPEGs every step would dominate a
2-core CPU. Splits are deterministic (sorted names, fixed seed) so a validation image
never leaks into training across runs or resumes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from snn_perception.runtime.image_codec import IMAGE_SUFFIXES, ImageDecodeError, read_image_file

#: largest tone jitter: beyond it the gain range reaches 0 (black frames)
TONE_JITTER_MAX = 0.9


class PairsError(ValueError):
    """A paired-data folder is missing, empty or inconsistent."""


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB, with an error naming the file.

    Uses the runtime's file reader, so a truncated JPEG or PNG is refused (OpenCV alone would
    return it half grey with only a warning) exactly as ``enhance`` and the nodes refuse it.
    """
    try:
        return read_image_file(path)
    except ImageDecodeError as exc:
        raise PairsError(str(exc)) from None


def image_files(folder: Path) -> list[Path]:
    """The images directly in ``folder`` (by suffix, sorted by name)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def list_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(raw, reference) paths of every raw image that has a same-named reference."""
    raw_dir, ref_dir = root / "raw", root / "reference"
    if not raw_dir.is_dir() or not ref_dir.is_dir():
        raise PairsError(f"{root}: expected sub-folders raw/ and reference/ with same-named images")
    raws = image_files(raw_dir)
    refs = {p.stem: p for p in image_files(ref_dir)}
    pairs = [(p, refs[p.stem]) for p in raws if p.stem in refs]
    if not pairs:
        raise PairsError(f"{root}: no raw/ image has a same-named image in reference/")
    return pairs


def split_pairs(
    pairs: list[tuple[Path, Path]], val_fraction: float, seed: int
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """Deterministic train/validation split (independent of file-system order)."""
    if not 0.0 <= val_fraction < 1.0:
        raise PairsError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = sorted(pairs, key=lambda p: p[0].name)
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * val_fraction)
    if val_fraction > 0 and n_val == 0 and len(order) > 1:
        n_val = 1
    return order[n_val:], order[:n_val]


def resize_float(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 or float → float32 in [0, 1], bilinear with antialiasing (torch).

    This is the resize the published numbers were measured with (it reproduces the
    official reference input bit for bit), so evaluation uses it as is, unquantised.
    """
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    if img.dtype == np.uint8:
        x = x / 255.0
    if tuple(img.shape[:2]) != tuple(hw):
        x = torch.nn.functional.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).numpy().astype(np.float32)


def resize_rgb(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """uint8 version of :func:`resize_float` (rounded), for in-memory training data."""
    if img.shape[:2] == tuple(hw):
        return img
    return np.clip(np.rint(resize_float(img, hw) * 255.0), 0, 255).astype(np.uint8)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 → 3xHxW float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


@dataclass(frozen=True)
class PairAugment:
    """Training augmentation: optional resize of the whole pair, random crop, flips."""

    crop: int = 256
    resize_hw: tuple[int, int] | None = None
    #: random zoom-out factor range applied before cropping: at 0.5 a 256 crop of a 512
    #: image shows the whole scene, as whole-frame 256×256 test images do
    scale: tuple[float, float] = (1.0, 1.0)
    hflip: bool = True
    vflip: bool = True
    #: probability that a training raw image is seen through extra water (the reference is
    #: unchanged): see :func:`add_water`
    extra_water: float = 0.0
    #: range of that extra water's thickness, metres
    extra_water_m: tuple[float, float] = (0.3, 2.5)
    #: the same random exposure change for raw and reference: gain in [1 − s, 1 + s] and gamma
    #: in [1/(1 + s), 1 + s] (0: off); see :func:`adjust_tone`
    tone: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.tone <= TONE_JITTER_MAX:
            raise ValueError(f"--tone-jitter must be in [0, {TONE_JITTER_MAX}], got {self.tone}")
        if not 0.0 <= self.extra_water <= 1.0:
            raise ValueError(f"--extra-water must be a probability in [0, 1], got {self.extra_water}")
        lo, hi = self.extra_water_m
        if not 0.0 <= lo <= hi:
            raise ValueError(
                f"extra_water_m must be (low, high) metres with 0 ≤ low ≤ high, got {self.extra_water_m}"
            )


def adjust_tone(img: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """``clip(gain · x^gamma)`` of a uint8 image in [0, 1] units, back to uint8.

    Applied with the same draw to raw and reference, it teaches that a darker or brighter
    scene keeps its tones after restoration, rather than that every output spans the full
    range (as contrast-stretched references suggest, which crushes the shadows of dark scenes).
    """
    x = np.power(img.astype(np.float32) / 255.0, gamma) * gain
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def add_water(raw: np.ndarray, distance_m: float, rng: np.random.Generator) -> np.ndarray:
    """``raw`` (uint8) seen through ``distance_m`` more metres of a random water.

    The pair's reference stays the same scene, so the network is taught to undo casts and
    veiling stronger than the real pairs show (a small paired set covers few waters). Uses
    the synthetic renderer's image-formation model and its random-water distribution.
    """
    from snn_perception.offline.underwater_render import random_water, render_underwater

    out = render_underwater(raw, distance_m, random_water(rng)) * 255.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class PairedImages(Dataset):
    """In-memory (raw, reference) pairs; random crops for training, whole images for eval."""

    def __init__(
        self,
        pairs: list[tuple[np.ndarray, np.ndarray]],
        augment: PairAugment | None = None,
        eval_hw: tuple[int, int] | None = None,
        names: list[str] | None = None,
    ) -> None:
        if not pairs:
            raise PairsError("no image pairs to load")
        self.augment = augment
        self.names = names or [str(i) for i in range(len(pairs))]
        prepared = []
        for raw, ref in pairs:
            if raw.shape != ref.shape:
                raise PairsError(f"raw and reference differ in size: {raw.shape} vs {ref.shape}")
            if augment and augment.resize_hw:
                raw, ref = resize_rgb(raw, augment.resize_hw), resize_rgb(ref, augment.resize_hw)
            elif eval_hw:
                raw, ref = resize_rgb(raw, eval_hw), resize_rgb(ref, eval_hw)
            prepared.append((raw, ref))
        self.pairs = prepared

    @classmethod
    def from_paths(cls, paths: list[tuple[Path, Path]], **kwargs) -> PairedImages:
        pairs = []
        for a, b in paths:
            raw, ref = read_rgb(a), read_rgb(b)
            if raw.shape != ref.shape:
                size = f"{raw.shape[1]}x{raw.shape[0]}"
                raise PairsError(
                    f"{a} is {size} but its reference {b} is {ref.shape[1]}x{ref.shape[0]}: "
                    "a pair must have one size"
                )
            pairs.append((raw, ref))
        return cls(pairs, names=[a.name for a, _ in paths], **kwargs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        raw, ref = self.pairs[index]
        if self.augment is not None:
            raw, ref = self._augment(raw, ref)
        return to_tensor(raw), to_tensor(ref)

    def _augment(self, raw: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        aug = self.augment
        assert aug is not None
        h, w = raw.shape[:2]
        lo, hi = aug.scale
        if hi < 1.0 or lo < 1.0:
            f = random.uniform(lo, hi)
            hw = (max(aug.crop, round(h * f)), max(aug.crop, round(w * f)))
            if hw != (h, w):
                raw = cv2.resize(raw, hw[::-1], interpolation=cv2.INTER_AREA)
                ref = cv2.resize(ref, hw[::-1], interpolation=cv2.INTER_AREA)
                h, w = hw
        if min(h, w) < aug.crop:  # upscale small images so a full crop fits
            scale = aug.crop / min(h, w)
            hw = (max(aug.crop, round(h * scale)), max(aug.crop, round(w * scale)))
            raw, ref, (h, w) = resize_rgb(raw, hw), resize_rgb(ref, hw), hw
        top = random.randint(0, h - aug.crop)
        left = random.randint(0, w - aug.crop)
        raw = raw[top : top + aug.crop, left : left + aug.crop]
        ref = ref[top : top + aug.crop, left : left + aug.crop]
        if aug.hflip and random.random() < 0.5:
            raw, ref = raw[:, ::-1], ref[:, ::-1]
        if aug.vflip and random.random() < 0.5:
            raw, ref = raw[::-1], ref[::-1]
        if aug.tone > 0:
            gain = random.uniform(1.0 - aug.tone, 1.0 + aug.tone)
            gamma = math.exp(random.uniform(-math.log1p(aug.tone), math.log1p(aug.tone)))
            raw, ref = adjust_tone(raw, gain, gamma), adjust_tone(ref, gain, gamma)
        if aug.extra_water > 0 and random.random() < aug.extra_water:
            # seeded from ``random`` so a resumed run (which restores its state) sees the same waters
            rng = np.random.default_rng(random.getrandbits(64))
            raw = add_water(np.ascontiguousarray(raw), random.uniform(*aug.extra_water_m), rng)
        return raw, ref
