"""Global grading: the dehazer's colour correction carried onto the input frame itself.

``pixels`` (the default) publishes the network's output as it is. ``global`` fits the 3×3 colour
matrix plus offset (12 numbers) that best maps the input frame onto the network's output, and
applies it to the input at the frame's own size. Why: measured on the validation splits of
every pair source (``tools/dhz_colour_oracle.py``), the references differ from the raw images
mostly by such a global grading (a 3×3 fit reaches 41 dB on LSUI, 30 dB on UIEB), while the
spiking network's own pixels lose some of the input's structure; taking only its grading scores
higher on every split, and it lets the network run at a small model size (``max_model_pixels``)
at no cost in sharpness, since the detail comes from the full-size input. What it cannot do is
correct haze that varies across the frame (backscatter growing with distance): use ``pixels``
where that matters.
"""

from __future__ import annotations

import cv2
import numpy as np

#: ``contrast``: ``global`` followed by local contrast of a per-frame strength
#: (:mod:`snn_perception.runtime.contrast`); needs weights that carry a fitted contrast model
GRADINGS: tuple[str, ...] = ("pixels", "global", "contrast")

#: the fit runs on both images shrunk (area average) to at most this many pixels; 12 unknowns need
#: far fewer samples
FIT_PIXELS = 128 * 128
_ROUND_TRIP = np.array([0.125, 0.75, 0.125], np.float32)


def validate_grading(grading: str, where: str = "grading") -> str:
    if grading not in GRADINGS:
        raise ValueError(f"{where} {grading!r} is not one of: {', '.join(GRADINGS)}")
    return grading


def _as01(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def float_to_uint8(rgb01: np.ndarray) -> np.ndarray:
    """Unclamped float image in [0, 1] (e.g. a dehaze output) → uint8, clipped and rounded."""
    return (np.clip(rgb01, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _shrunk(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == hw:
        return image
    return cv2.resize(image, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def fit_grading(
    source: np.ndarray, output: np.ndarray, model_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """The ``4×3`` matrix ``G`` (rows: R, G, B, 1) with ``[source, 1] @ G ≈ output``, least squares.

    Both are ``H×W×3`` of one size (uint8, or float in [0, 1]); ``model_hw``: the size the model
    ran at: the source then takes the output's path (shrunk to that size, blurred as upscaling and
    shrinking back blur), and the two are compared at most at that size. Why: detail in the input
    that the model's output lacks acts as noise in the regressor and flattens the fitted contrast
    (a test scene with detail at the model's pixel scale: slopes 0.6 of the true ones when the
    full-size source was compared). A grey source (R = G = B) leaves the fit under-determined; the
    minimum-norm solution is still the best affine map of its grey level onto each output channel.
    """
    if source.shape[:2] != output.shape[:2]:
        raise ValueError(f"source {source.shape[:2]} and output {output.shape[:2]} must have one size")
    h, w = source.shape[:2]
    scale = min(1.0, (FIT_PIXELS / float(h * w)) ** 0.5)
    hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    x01 = _as01(source)
    if model_hw is not None and int(model_hw[0]) * int(model_hw[1]) < h * w:
        mh, mw = int(model_hw[0]), int(model_hw[1])
        # the detail the model saw, and no more: shrunk to its size, then blurred as its output was
        # by the engine's bilinear upscaling and our area shrinking (together, for large factors,
        # the box average of a linear interpolant: taps 1/8, 3/4, 1/8 on each axis)
        x01 = cv2.sepFilter2D(
            _shrunk(x01, (mh, mw)), -1, _ROUND_TRIP, _ROUND_TRIP, borderType=cv2.BORDER_REPLICATE
        )
        if mh * mw < hw[0] * hw[1]:
            hw = (mh, mw)
    x = _shrunk(x01, hw).reshape(-1, 3).astype(np.float64)
    y = _shrunk(_as01(output), hw).reshape(-1, 3).astype(np.float64)
    a = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    return coef


def apply_grading(source: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``source`` (uint8 or float, ``H×W×3``) through the grading ``coef``: float32 in [0, 1]."""
    x = _as01(source)
    out = cv2.transform(x, coef.T.astype(np.float32))  # per pixel: [r, g, b, 1] @ coef, vectorised
    return np.clip(out, 0.0, 1.0, out=out)


def global_grading(
    source: np.ndarray, output: np.ndarray, model_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """The input frame graded as the network graded it (see the module docstring), float [0, 1];
    ``model_hw``: the size the model ran at (the engine's ``FrameStats.model_hw``)."""
    return apply_grading(source, fit_grading(source, output, model_hw))
