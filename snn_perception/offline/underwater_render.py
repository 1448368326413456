"""Synthetic underwater footage from clean photographs, with the clean frames as ground truth.

The demo's clean frames are real underwater photographs from the shared SUIM data when it is beside
the repository (already blue and hazy: the rendered water comes on top of theirs; scikit-image's
sample photographs otherwise), and ``train --synthetic`` renders pairs from clean references, through
the simplified underwater image-formation model (Jaffe-McGlamery, as used by e.g. Akkaynak &
Treibitz, CVPR 2018, without forward scatter)::

    I_c = J_c · t_c + B_c · (1 − t_c),   t_c = exp(−β_c · d)

per colour channel c, in linear light: ``J`` the clean scene, ``d`` the camera-to-scene distance in
metres, ``β_c`` the attenuation coefficient and ``B_c`` the veiling (background) light. Water
absorbs red far faster than green and blue (β_R ≫ β_G > β_B), so red fades first as the distance
grows and far scenes tend to the blue-green veiling light.

:func:`render_dive` turns those photographs into a slow pan along a "reef wall" whose distance
changes over the dive (approach, then retreat) and whose upper part is farther away than its lower
part, with a little sensor noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: the demo dive's wall: six real underwater photographs of SUIM (MIT licence; images this project's
#: fixed-seed split puts in validation), read from the shared data when it is there
SUIM_PHOTOS: tuple[str, ...] = ("d_r_195_", "f_r_1584_", "w_r_170_", "f_r_502_", "f_r_536_", "f_r_1594_")
SUIM_IMAGES = Path("data") / "suim_trainval" / "images"
#: skimage.data photographs bundled with the wheel (no download), all public domain or CC0: the
#: dive's wall without the shared data, and extra sources of synthetic training pairs
SKIMAGE_PHOTOS: tuple[str, ...] = ("coffee", "chelsea", "rocket", "astronaut")


def _suim_folder() -> Path | None:
    from snn_perception.runtime.weights import shared_dirs

    for d in shared_dirs():
        if all((d / SUIM_IMAGES / f"{name}.jpg").is_file() for name in SUIM_PHOTOS):
            return d / SUIM_IMAGES
    return None


def dive_photos() -> tuple[str, ...]:
    """The SUIM photographs where the shared data is present, else scikit-image's."""
    return SUIM_PHOTOS if _suim_folder() is not None else SKIMAGE_PHOTOS


@dataclass(frozen=True)
class WaterType:
    """Per-channel (R, G, B) attenuation in 1/m and veiling light in linear [0, 1].

    The default is a green-blue coastal water: red loses ~45 % per metre, blue ~7 %.
    """

    attenuation: tuple[float, float, float] = (0.45, 0.11, 0.07)
    veiling_light: tuple[float, float, float] = (0.02, 0.22, 0.30)

    def __post_init__(self) -> None:
        if len(self.attenuation) != 3 or min(self.attenuation) < 0:
            raise ValueError(f"WaterType.attenuation must be three values ≥ 0 (1/m), got {self.attenuation}")
        if len(self.veiling_light) != 3 or not all(0.0 <= v <= 1.0 for v in self.veiling_light):
            raise ValueError(
                f"WaterType.veiling_light must be three values in [0, 1], got {self.veiling_light}"
            )


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def transmission(distance_m: float | np.ndarray, water: WaterType) -> np.ndarray:
    """``t_c = exp(−β_c·d)``: shape ``d.shape + (3,)``."""
    d = np.asarray(distance_m, dtype=np.float64)
    if np.any(d < 0):
        raise ValueError("distance must be ≥ 0 metres")
    return np.exp(-d[..., None] * np.asarray(water.attenuation, dtype=np.float64))


def render_underwater(
    clean: np.ndarray, distance_m: float | np.ndarray, water: WaterType = WaterType()
) -> np.ndarray:
    """Apply ``I = J·t + B·(1 − t)`` to an ``H×W×3`` RGB image (uint8 or float in [0, 1]).

    ``distance_m`` is a scalar or an ``H×W`` map. Returns float64 sRGB in [0, 1] (no noise).
    """
    if clean.ndim != 3 or clean.shape[2] != 3:
        raise ValueError(f"clean image must be H×W×3 RGB, got shape {clean.shape}")
    j = clean.astype(np.float64) / 255.0 if clean.dtype == np.uint8 else np.clip(clean, 0.0, 1.0)
    d = np.broadcast_to(np.asarray(distance_m, dtype=np.float64), j.shape[:2])
    t = transmission(d, water)
    veil = np.asarray(water.veiling_light, dtype=np.float64)
    return linear_to_srgb(srgb_to_linear(j) * t + veil * (1.0 - t))


@dataclass(frozen=True)
class DiveConfig:
    """A synthetic dive: ``seconds × rate_hz`` frames of ``size`` (H, W)."""

    seconds: float = 10.0
    rate_hz: float = 10.0
    size: tuple[int, int] = (240, 320)
    #: distance at the start/end of the dive and at its closest point (mid-dive), metres
    far_m: float = 6.0
    near_m: float = 1.5
    #: the top row is this much farther than the bottom row (a wall leaning away), fraction
    depth_gradient: float = 0.6
    noise_sigma: float = 2.0  # sensor noise, 8-bit units
    seed: int = 0
    photos: tuple[str, ...] = field(default_factory=dive_photos)
    water: WaterType = field(default_factory=WaterType)

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.rate_hz <= 0:
            raise ValueError(
                f"DiveConfig: seconds and rate_hz must be > 0, got {self.seconds}, {self.rate_hz}"
            )
        if len(self.size) != 2 or min(self.size) < 16:
            raise ValueError(f"DiveConfig.size must be (H, W) with H, W ≥ 16, got {self.size}")
        if not 0 < self.near_m <= self.far_m:
            raise ValueError(f"DiveConfig: need 0 < near_m ≤ far_m, got {self.near_m}, {self.far_m}")

    @property
    def num_frames(self) -> int:
        return max(1, round(self.seconds * self.rate_hz))


@dataclass
class DiveFrame:
    index: int
    time_s: float
    raw: np.ndarray  # H×W×3 uint8 RGB, what the camera sees
    clean: np.ndarray  # H×W×3 uint8 RGB, ground truth
    distance_m: float  # distance to the bottom row of the frame
    mask: np.ndarray | None = None  # H×W uint8 SUIM class ids (SUIM photographs only), ground truth


def _photo(name: str) -> np.ndarray:
    """A SUIM photograph of the shared data by stem, else a scikit-image sample photograph by name."""
    folder = _suim_folder() if name in SUIM_PHOTOS else None
    if folder is not None:
        from snn_perception.runtime.image_codec import read_image_file

        return read_image_file(folder / f"{name}.jpg")
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def panorama(height: int, photos: tuple[str, ...] | None = None) -> np.ndarray:
    """The photos (default :func:`dive_photos`) scaled to ``height`` and placed side by side: the
    wall the camera pans along."""
    parts = []
    for name in photos or dive_photos():
        img = _photo(name)
        w = max(1, round(img.shape[1] * height / img.shape[0]))
        parts.append(cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA))
    return np.concatenate(parts, axis=1)


def _photo_mask(name: str) -> np.ndarray | None:
    """The SUIM class-id mask of a SUIM photograph (``masks/`` beside ``images/``), else None."""
    folder = _suim_folder() if name in SUIM_PHOTOS else None
    path = folder.parent / "masks" / f"{name}.png" if folder is not None else None
    if path is None or not path.is_file():
        return None
    from snn_perception.offline.seg_data import read_mask

    return read_mask(path)


def panorama_masks(height: int, photos: tuple[str, ...] | None = None) -> np.ndarray | None:
    """The class-id masks laid out as :func:`panorama` lays out the photos (nearest-neighbour, so
    ids stay ids); None unless every photo has a mask of its size."""
    parts = []
    for name in photos or dive_photos():
        img, mask = _photo(name), _photo_mask(name)
        if mask is None or mask.shape != img.shape[:2]:
            return None
        w = max(1, round(img.shape[1] * height / img.shape[0]))
        parts.append(cv2.resize(mask, (w, height), interpolation=cv2.INTER_NEAREST))
    return np.concatenate(parts, axis=1)


def iter_dive(config: DiveConfig = DiveConfig()) -> Iterator[DiveFrame]:
    """Frames of the dive in order; deterministic for a given config (seed). With SUIM photographs
    each frame carries its class-id mask too (the same pan), so the demo can score segmentation."""
    h, w = config.size
    pan_h = round(h * 1.2)  # room for a slow vertical bob
    wall = panorama(pan_h, config.photos)
    masks = panorama_masks(pan_h, config.photos)
    if wall.shape[1] < w:
        reps = math.ceil(w / wall.shape[1]) + 1
        wall = np.concatenate([wall] * reps, axis=1)
        masks = None if masks is None else np.concatenate([masks] * reps, axis=1)
    rng = np.random.default_rng(config.seed)
    n = config.num_frames
    span_x, span_y = wall.shape[1] - w, pan_h - h
    rows = 1.0 + config.depth_gradient * (1.0 - np.linspace(0.0, 1.0, h))[:, None]  # top farther
    for i in range(n):
        s = i / max(1, n - 1)  # 0..1 through the dive
        x0 = round(s * span_x)
        y0 = round(0.5 * span_y * (1.0 - math.cos(2 * math.pi * s)))
        clean = wall[y0 : y0 + h, x0 : x0 + w]
        # approach then retreat: far → near (mid-dive) → far
        dist = config.near_m + (config.far_m - config.near_m) * 0.5 * (1.0 + math.cos(2 * math.pi * s))
        raw = render_underwater(clean, np.broadcast_to(dist * rows, (h, w)), config.water) * 255.0
        if config.noise_sigma > 0:
            raw = raw + rng.normal(0.0, config.noise_sigma, raw.shape)
        yield DiveFrame(
            index=i,
            time_s=i / config.rate_hz,
            raw=np.clip(raw + 0.5, 0, 255).astype(np.uint8),
            clean=np.ascontiguousarray(clean),
            distance_m=float(dist),
            mask=None if masks is None else np.ascontiguousarray(masks[y0 : y0 + h, x0 : x0 + w]),
        )


def render_dive(config: DiveConfig = DiveConfig()) -> list[DiveFrame]:
    return list(iter_dive(config))


def random_water(rng: np.random.Generator) -> WaterType:
    """A plausible random water (for synthetic training pairs): red always attenuates most."""
    beta_b = rng.uniform(0.03, 0.15)
    beta_g = beta_b * rng.uniform(1.1, 2.0)
    beta_r = max(beta_g * 1.5, rng.uniform(0.3, 0.7))
    blue = rng.uniform(0.15, 0.4)
    veil = (rng.uniform(0.0, 0.05), blue * rng.uniform(0.6, 1.1), blue)
    return WaterType((beta_r, beta_g, beta_b), tuple(float(min(v, 1.0)) for v in veil))


def synthetic_pair(
    clean: np.ndarray, rng: np.random.Generator, distance_range: tuple[float, float] = (1.0, 8.0)
) -> tuple[np.ndarray, np.ndarray]:
    """(raw, clean) uint8 pair: random water and distance, a vertical depth gradient, noise."""
    h, w = clean.shape[:2]
    d = rng.uniform(*distance_range)
    rows = 1.0 + rng.uniform(0.0, 0.8) * (1.0 - np.linspace(0.0, 1.0, h))[:, None]
    raw = render_underwater(clean, np.broadcast_to(d * rows, (h, w)), random_water(rng)) * 255.0
    raw = raw + rng.normal(0.0, rng.uniform(0.0, 3.0), raw.shape)
    base = clean if clean.dtype == np.uint8 else (np.clip(clean, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.clip(raw + 0.5, 0, 255).astype(np.uint8), base
