"""Local contrast, as strong as the frame calls for: the ``contrast`` grading's second step.

After the global grading (:mod:`snn_perception.runtime.grading`) the frame ``G`` gets
``G + α·(CLAHE(G) − G)``, CLAHE acting on the luminance only, with the strength ``α ∈ [0, 1]``
predicted per frame by a ridge regression on ten statistics of the raw frame and of ``G``. Why:
the references of real photos (UIEB) carry a local-contrast boost that neither the network nor
a global grading gives, while those of synthetic water (EUVP) and UFO-120 carry none, so any
fixed strength costs some source 1–4 dB (``docs/results/dhz_v2/contrast_probe``); the best
strength per training pair can largely be told from the frame. The regression is fitted for one
set of dehazer weights (its ``G`` is theirs) on their training pairs only, and travels in those
weights' metadata under ``"contrast"`` (``tools/dhz_contrast_fit.py --save``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from snn_perception.runtime.grading import _shrunk, float_to_uint8  # _shrunk: as the global fit shrinks

#: statistics the strength is predicted from, in order (see :func:`frame_features`)
FEATURES: tuple[str, ...] = (
    "raw_luminance_mean",
    "raw_luminance_std",
    "raw_luminance_p95_minus_p5",
    "raw_laplacian_mean",
    "raw_a_mean",
    "raw_b_mean",
    "raw_a_std",
    "raw_b_std",
    "graded_luminance_std",
    "clahe_change_mean",
)
CLAHE_TILES = (8, 8)


def clahe_luminance(image: np.ndarray, clip: float, tiles: tuple[int, int] = CLAHE_TILES) -> np.ndarray:
    """CLAHE on the L channel of Lab (OpenCV), colours kept: local contrast alone. uint8 RGB in
    and out; ``clip``: OpenCV's clip limit (> 0; larger, stronger)."""
    if not clip > 0:
        raise ValueError(f"CLAHE clip limit {clip!r}: must be > 0, e.g. 1.0")
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=float(clip), tileGridSize=tiles)
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def frame_features(raw8: np.ndarray, graded8: np.ndarray, clahe8: np.ndarray) -> list[float]:
    """:data:`FEATURES` of one frame: brightness, global and local contrast and colour cast of the
    raw frame, the graded frame's contrast, and how much CLAHE changes it (uint8 RGB, one size)."""
    lab = cv2.cvtColor(raw8, cv2.COLOR_RGB2LAB).astype(np.float32) / 255.0
    lum = lab[..., 0]
    p5, p95 = np.percentile(lum, [5, 95])
    graded = cv2.cvtColor(graded8, cv2.COLOR_RGB2LAB).astype(np.float32)[..., 0] / 255.0
    change = np.abs(clahe8.astype(np.float32) - graded8.astype(np.float32)).mean() / 255.0
    return [
        float(lum.mean()), float(lum.std()), float(p95 - p5),
        float(np.abs(cv2.Laplacian(lum, cv2.CV_32F)).mean()),
        float(lab[..., 1].mean()), float(lab[..., 2].mean()),
        float(lab[..., 1].std()), float(lab[..., 2].std()),
        float(graded.std()), float(change),
    ]  # fmt: skip


@dataclass(frozen=True)
class ContrastModel:
    """The fitted strength predictor: ``α = clip(((x − mean) / std) · coef + intercept, 0, 1)``."""

    clip: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    #: what it was fitted on, for the model card (free text)
    fitted_on: str = ""

    def __post_init__(self) -> None:
        n = len(FEATURES)
        for name in ("mean", "std", "coef"):
            values = getattr(self, name)
            if len(values) != n or not all(math.isfinite(float(v)) for v in values):
                raise ValueError(f"contrast model {name}: expected {n} finite numbers, got {values!r}")
        if not all(float(s) > 0 for s in self.std):
            raise ValueError(f"contrast model std: every entry must be > 0, got {self.std!r}")
        if not (math.isfinite(self.clip) and self.clip > 0 and math.isfinite(self.intercept)):
            raise ValueError(f"contrast model: clip {self.clip!r} must be > 0, intercept finite")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "features": list(FEATURES)}

    @classmethod
    def from_dict(cls, data: Any) -> ContrastModel:
        """From checkpoint metadata; anything malformed is a ValueError saying what was expected."""
        if not isinstance(data, dict):
            raise ValueError(f"contrast model: expected a JSON object, got {type(data).__name__}")
        if list(data.get("features", FEATURES)) != list(FEATURES):
            found = data.get("features")
            raise ValueError(f"contrast model: features {found!r}, this version reads {FEATURES}")
        try:
            return cls(
                clip=float(data["clip"]),
                mean=tuple(float(v) for v in data["mean"]),
                std=tuple(float(v) for v in data["std"]),
                coef=tuple(float(v) for v in data["coef"]),
                intercept=float(data["intercept"]),
                fitted_on=str(data.get("fitted_on", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"contrast model: missing or malformed field ({exc})") from None

    def strength(self, features: list[float]) -> float:
        z = (np.asarray(features, np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        return float(np.clip(z @ np.asarray(self.coef) + self.intercept, 0.0, 1.0))


def _u8(image: np.ndarray) -> np.ndarray:
    return image if image.dtype == np.uint8 else float_to_uint8(image)


def local_contrast(
    source: np.ndarray,
    graded: np.ndarray,
    model: ContrastModel,
    model_hw: tuple[int, int] | None = None,
) -> tuple[np.ndarray, float]:
    """``graded`` (the globally graded ``source``, float [0, 1] or uint8, ``H×W×3``) with local
    contrast of the strength ``model`` predicts, float32 [0, 1], and that strength.

    The statistics are taken at ``model_hw`` (the size the dehazer ran at; the fit saw frames at
    that size, and the Laplacian's mean depends on scale); CLAHE runs on the full frame.
    """
    g8 = _u8(graded)
    c8 = clahe_luminance(g8, model.clip)
    hw = tuple(model_hw) if model_hw is not None else g8.shape[:2]
    if hw != g8.shape[:2]:
        small_g = _shrunk(g8, hw)
        feats = frame_features(_shrunk(_u8(source), hw), small_g, clahe_luminance(small_g, model.clip))
    else:
        feats = frame_features(_u8(source), g8, c8)
    alpha = model.strength(feats)
    # (1 − α)·G + α·C in [0, 1], in one pass straight from the uint8 frames
    out = cv2.addWeighted(g8, (1.0 - alpha) / 255.0, c8, alpha / 255.0, 0.0, dtype=cv2.CV_32F)
    return out, alpha
