"""Fitting the ``contrast`` grading's strength model for one set of dehazer weights.

Per training pair, the best strength α of ``G + α·(C − G)`` against the reference (least squares,
clipped to [0, 1]); then a ridge regression from :data:`runtime.contrast.FEATURES` to α, each
source weighing the same (EUVP's thousands of pairs would otherwise decide it) and, optionally,
each frame within its source by what a wrong α costs it in dB (:func:`strength_cost`). The result is
stored in a copy of the weights' metadata, so it always travels with the network whose ``G`` it
was fitted on. Training pairs only: the validation splits score it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from snn_perception.runtime.contrast import FEATURES, ContrastModel


def best_strength(graded: np.ndarray, clahe: np.ndarray, reference: np.ndarray) -> float:
    """The α in [0, 1] that brings ``G + α·(C − G)`` closest to ``reference`` (float arrays, one
    shape); 0 where CLAHE changes nothing."""
    d = (clahe - graded).ravel().astype(np.float64)
    dd = float(d @ d)
    if dd <= 1e-12:
        return 0.0
    return float(np.clip(d @ (reference - graded).ravel().astype(np.float64) / dd, 0.0, 1.0))


def strength_cost(graded: np.ndarray, clahe: np.ndarray, reference: np.ndarray, best: float) -> float:
    """dB of PSNR lost per unit of squared error in α near ``best``: ``(10 / ln 10)·q / m``, where
    ``q`` is the mean of ``(C − G)²`` and ``m`` the MSE at ``best``.

    Why: the MSE of ``G + α·(C − G)`` is ``m + q·(α − best)²``, so a frame that CLAHE barely changes,
    or that is far from its reference anyway, loses little from a wrong α, and one with strong
    local contrast close to its reference loses much; a fit that weighs frames by this spends its
    accuracy where PSNR is decided. 0 where CLAHE changes nothing.
    """
    d = (clahe - graded).astype(np.float64)
    q = float(np.mean(d * d))
    if q <= 1e-12:
        return 0.0
    m = float(np.mean((graded + best * d - reference) ** 2))
    return 10.0 / math.log(10.0) * q / max(m, 1e-6)


def fit_contrast(
    features: np.ndarray,
    best: np.ndarray,
    sources: list[str],
    clip: float,
    ridge: float = 1.0,
    fitted_on: str = "",
    frame_weights: np.ndarray | None = None,
) -> ContrastModel:
    """Ridge regression of ``best`` (one α per frame) on ``features`` (``N×len(FEATURES)``) with
    every source's frames weighing the same in total; the penalty acts on standardised features.
    ``frame_weights`` (≥ 0, e.g. :func:`strength_cost`) share out each source's weight among its
    frames; without them every frame of a source weighs the same."""
    x = np.asarray(features, np.float64)
    y = np.asarray(best, np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(y) != len(x) or len(sources) != len(x):
        raise ValueError(
            f"fit_contrast: {x.shape} features, {len(y)} strengths and {len(sources)} sources; "
            f"expected N×{len(FEATURES)}, N and N"
        )
    if len(x) < 2 or not ridge >= 0:
        raise ValueError(f"fit_contrast: needs at least 2 frames and ridge ≥ 0 (got {len(x)}, {ridge})")
    fw = np.ones(len(x)) if frame_weights is None else np.asarray(frame_weights, np.float64)
    if fw.shape != (len(x),) or not (np.all(np.isfinite(fw)) and np.all(fw >= 0)):
        raise ValueError(f"fit_contrast: frame_weights must be {len(x)} finite numbers ≥ 0, got {fw.shape}")
    names = np.asarray(sources)
    totals = {s: float(fw[names == s].sum()) for s in set(sources)}
    if min(totals.values()) <= 0:
        raise ValueError(f"fit_contrast: every source needs a frame of weight > 0, totals {totals}")
    w = fw / np.array([totals[s] for s in sources])
    mu = (w @ x) / w.sum()
    sd = np.sqrt((w @ (x - mu) ** 2) / w.sum())
    sd = np.where(sd > 1e-9, sd, 1.0)  # a constant feature: standardised to 0, its weight then 0
    z = np.c_[(x - mu) / sd, np.ones(len(x))]
    penalty = ridge * w.mean() * np.eye(z.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    coef = np.linalg.solve(z.T @ (w[:, None] * z) + penalty, z.T @ (w * y))
    return ContrastModel(
        clip=float(clip),
        mean=tuple(mu.tolist()),
        std=tuple(sd.tolist()),
        coef=tuple(coef[:-1].tolist()),
        intercept=float(coef[-1]),
        fitted_on=fitted_on,
    )


def save_with_contrast(weights: str | Path, model: ContrastModel, out: str | Path) -> Path:
    """A copy of ``weights`` (our safetensors) with ``model`` in its metadata under ``contrast``."""
    from snn_perception.runtime.checkpoint import load_checkpoint, save_checkpoint
    from snn_perception.runtime.weights import resolve

    ckpt = load_checkpoint(resolve(str(weights)))
    meta = {k: v for k, v in ckpt.metadata.items() if k != "format_version"}
    meta["contrast"] = model.to_dict()
    save_checkpoint(out, ckpt.state_dict, meta)
    return Path(out)
