"""Segmentation data: any ``images/`` + ``masks/`` folder pair, with a fixed-seed train/val split.

Masks may be palette PNGs (pixel value = class id, as in ``shared/data/suim_trainval``), grey PNGs
holding class ids, or SUIM-style colour masks (id = 4·R + 2·G + B with each channel thresholded at
128). OpenCV expands palettes to colours, so for palette PNGs the palette is read from the file's
``PLTE`` chunk and every colour is mapped back to its first index.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

SUIM_CLASSES: tuple[str, ...] = (
    "background_waterbody",
    "human_divers",
    "plants_seagrass",
    "wrecks_ruins",
    "robots",
    "reefs_invertebrates",
    "fish_vertebrates",
    "seafloor_rocks",
)
#: RGB colour of each SUIM class (the dataset's own colour code)
SUIM_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (0, 0, 255),
    (0, 255, 0),
    (0, 255, 255),
    (255, 0, 0),
    (255, 0, 255),
    (255, 255, 0),
    (255, 255, 255),
)


class SegDataError(ValueError):
    """A segmentation folder or file is unusable; the message names it and what is expected."""


def _png_palette(path: Path) -> np.ndarray | None:
    """The ``PLTE`` palette (N×3 RGB) of an indexed PNG, else None."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, color_type = 8, None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            color_type = body[9]
        elif kind == b"PLTE":
            return np.frombuffer(body, np.uint8).reshape(-1, 3) if color_type == 3 else None
        elif kind == b"IDAT":
            return None
        pos += 12 + length
    return None


def read_mask(path: str | Path) -> np.ndarray:
    """Class-id mask (H×W uint8) from a palette, grey or SUIM colour PNG."""
    from snn_perception.runtime.image_containers import ImageDecodeError, check_complete

    path = Path(path)
    try:
        data = path.read_bytes()
        check_complete(data)  # a truncated mask would decode with its lower part as class 0
    except (OSError, ImageDecodeError) as exc:
        raise SegDataError(f"{path}: not a readable mask ({exc})") from None
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if raw is None:
        raise SegDataError(f"{path}: not a readable image (expected a palette, grey or colour PNG mask)")
    if raw.ndim == 2:
        return raw.astype(np.uint8)
    rgb = np.ascontiguousarray(raw[..., 2::-1])  # BGR(A) → RGB
    palette = _png_palette(path) if path.suffix.lower() == ".png" else None
    if palette is not None:
        code = rgb[..., 0].astype(np.int32) << 16 | rgb[..., 1].astype(np.int32) << 8 | rgb[..., 2]
        pal_code = palette[:, 0].astype(np.int32) << 16 | palette[:, 1].astype(np.int32) << 8 | palette[:, 2]
        lut: dict[int, int] = {}
        for idx in range(len(pal_code) - 1, -1, -1):  # first index wins for repeated colours
            lut[int(pal_code[idx])] = idx
        keys = np.array(sorted(lut), dtype=np.int32)
        vals = np.array([lut[k] for k in keys], dtype=np.uint8)
        pos = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
        if not np.all(keys[pos] == code):
            raise SegDataError(f"{path}: pixel colours outside the file's own palette")
        return vals[pos]
    bits = (rgb >= 128).astype(np.uint8)
    return 4 * bits[..., 0] + 2 * bits[..., 1] + bits[..., 2]


def read_rgb(path: str | Path) -> np.ndarray:
    """An image as RGB uint8; damaged or truncated files are a :class:`SegDataError` naming the file."""
    from snn_perception.runtime.image_codec import ImageDecodeError, read_image_file

    try:
        return read_image_file(path)
    except ImageDecodeError as exc:
        raise SegDataError(str(exc)) from None


def list_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of ``root/images`` and ``root/masks`` matched by file stem, sorted."""
    root = Path(root)
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise SegDataError(f"{root}: expected a folder with images/ and masks/ sub-folders")
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS}
    pairs = [
        (p, masks[p.stem])
        for p in sorted(img_dir.iterdir())
        if p.suffix.lower() in IMAGE_EXTS and p.stem in masks
    ]
    if not pairs:
        raise SegDataError(f"{root}: no image in images/ has a mask of the same name in masks/")
    return pairs


def split_pairs(
    pairs: list[tuple[Path, Path]], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """Deterministic train/val split: a seeded shuffle of the sorted list (same on every machine)."""
    if not 0.0 < val_fraction < 1.0:
        raise SegDataError(f"val_fraction={val_fraction}: must be strictly between 0 and 1")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(pairs) * val_fraction))
    val_idx = set(order[:n_val])
    train = [p for i, p in enumerate(pairs) if i not in val_idx]
    val = [p for i, p in enumerate(pairs) if i in val_idx]
    return train, val


def select_split(
    roots: list[str | Path], split: str = "all", val_fraction: float = 0.2, seed: int = 0
) -> list[tuple[Path, Path]]:
    """Pairs of every root, split per root ('all', 'train' or 'val')."""
    if split not in ("all", "train", "val"):
        raise SegDataError(f"split={split!r}: expected all, train or val")
    out: list[tuple[Path, Path]] = []
    for root in roots:
        pairs = list_pairs(root)
        if split == "all":
            out += pairs
        else:
            train, val = split_pairs(pairs, val_fraction, seed)
            out += train if split == "train" else val
    return out


@dataclass
class SegSample:
    image: torch.Tensor  # [3, H, W] float in [0, 1]
    mask: torch.Tensor  # [H, W] int64


def load_pairs(
    pairs: list[tuple[Path, Path]], size: tuple[int, int] | None, num_classes: int, ignore_index: int = 255
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images (RGB uint8) and class-id masks of ``pairs``, resized to ``size`` (None: as stored);
    ids ≥ ``num_classes`` become ``ignore_index``. A pair of two sizes is a :class:`SegDataError`."""
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for img_path, mask_path in pairs:
        img, mask = read_rgb(img_path), read_mask(mask_path)
        if img.shape[:2] != mask.shape[:2]:
            raise SegDataError(
                f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but {img_path.name} is "
                f"{img.shape[1]}x{img.shape[0]}; image and mask must have the same size"
            )
        if size is not None and img.shape[:2] != tuple(size):
            img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        mask = mask.copy()
        mask[mask >= num_classes] = ignore_index
        images.append(img)
        masks.append(mask)
    return images, masks


class SegDataset(Dataset):
    """Pairs resized to ``size`` (H, W) and held in memory as uint8 (SUIM at 256² is ~300 MB).

    ``crop`` (training): random crops of that size plus horizontal flips; ``None`` returns whole
    images. Ids ≥ ``num_classes`` become ``ignore_index``.
    """

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        size: tuple[int, int] | None = (256, 256),
        crop: tuple[int, int] | None = None,
        num_classes: int = 8,
        ignore_index: int = 255,
        seed: int = 0,
    ) -> None:
        self.pairs = list(pairs)
        self.size = size
        self.crop = crop
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.rng = np.random.default_rng(seed)
        self.images, self.masks = load_pairs(self.pairs, size, num_classes, ignore_index)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, mask = self.images[idx], self.masks[idx]
        if self.crop is not None:
            ch, cw = self.crop
            h, w = mask.shape
            if h < ch or w < cw:
                raise SegDataError(f"{self.pairs[idx][0]}: {w}x{h} is smaller than the crop {cw}x{ch}")
            y = int(self.rng.integers(0, h - ch + 1))
            x = int(self.rng.integers(0, w - cw + 1))
            img, mask = img[y : y + ch, x : x + cw], mask[y : y + ch, x : x + cw]
            if self.rng.random() < 0.5:
                img, mask = img[:, ::-1], mask[:, ::-1]
        image = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
        return image, torch.from_numpy(np.ascontiguousarray(mask)).long()


def image_only_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    folder = Path(root) / "images" if (Path(root) / "images").is_dir() else Path(root)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise SegDataError(f"{root}: no images found (expected images/ or a folder of images)")
    return [(p, p) for p in files]


class ImageFolder(Dataset):
    """Clean images for denoising (``(image, image)`` so it drops in where masks go)."""

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        size: tuple[int, int] | None = (256, 256),
        crop: tuple[int, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.pairs, self.crop = list(pairs), crop
        self.rng = np.random.default_rng(seed)
        self.images = []
        for p, _ in self.pairs:
            img = read_rgb(p)
            if size is not None and img.shape[:2] != tuple(size):
                img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            self.images.append(img)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int):
        img = self.images[idx]
        if self.crop is not None:
            ch, cw = self.crop
            y = int(self.rng.integers(0, img.shape[0] - ch + 1))
            x = int(self.rng.integers(0, img.shape[1] - cw + 1))
            img = img[y : y + ch, x : x + cw]
            if self.rng.random() < 0.5:
                img = img[:, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
        return t, t
