"""Image-quality metrics shared by evaluation, replay reports and benchmarks.

Full-reference: :func:`psnr`, :func:`ssim` (against a ground-truth image). No-reference, for
underwater footage without ground truth: :func:`uiqm` and :func:`uciqe`. Segmentation:
:func:`class_area_fractions` (confusion matrix and mIoU: :mod:`.seg_metrics`). Plus the classical
enhancement baseline every report compares against, :func:`classical_enhance`.

Every function takes ``H×W×3`` RGB arrays, uint8 (0..255) or float (nominally [0, 1]; float
inputs are clipped to [0, 1] first, because a dehazer's raw output is unclamped and the user
sees the clipped image). One implementation everywhere means the replay report, ``evaluate``
and the model cards compute their numbers the same way (on the same images they agree; see
:mod:`snn_perception.offline.evaluate_dehaze` for how their ``--size`` options differ).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from snn_perception.runtime.contrast import clahe_luminance

__all__ = [
    "as_float01",
    "class_area_fractions",
    "classical_enhance",
    "psnr",
    "ssim",
    "uciqe",
    "uicm",
    "uiconm",
    "uiqm",
    "uism",
]


def as_float01(image: np.ndarray, where: str = "image") -> np.ndarray:
    """``H×W×3`` uint8 or float → float64 in [0, 1] (floats are clipped)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"{where} must be an H×W×3 RGB array, got {shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(image.astype(np.float64), 0.0, 1.0)
    raise ValueError(f"{where} dtype must be uint8 or float in [0, 1], got {image.dtype}")


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = as_float01(pred, "prediction"), as_float01(target, "reference")
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and reference {t.shape} must have the same shape")
    return p, t


# -- full reference ----------------------------------------------------------------------------


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels, data range 1.

    Identical images give ``inf``. Computed per image; dataset numbers are means of these.
    """
    p, t = _pair(pred, target)
    mse = float(np.mean((p - t) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


_SSIM_WIN, _SSIM_SIGMA, _SSIM_K1, _SSIM_K2 = 11, 1.5, 0.01, 0.03


def ssim(pred: np.ndarray, target: np.ndarray, padding: str = "same") -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 13(4), 2004).

    The paper's settings: 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1,
    population statistics, per RGB channel, averaged over channels and pixels.

    ``padding='same'`` (default, the project's convention and that of the training loss and of
    the numbers quoted in the issues) filters with reflect padding and averages the whole map:
    equal to ``kornia.metrics.ssim(a, b, 11).mean()``. ``padding='valid'`` averages only pixels
    whose window lies inside the image: equal to ``skimage.metrics.structural_similarity(...,
    channel_axis=2, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
    The two differ by a few thousandths on 256×256 images. The tests check both equalities.
    """
    if padding not in ("same", "valid"):
        raise ValueError(f"ssim padding must be 'same' or 'valid', got {padding!r}")
    p, t = _pair(pred, target)
    h, w = p.shape[:2]
    if min(h, w) < _SSIM_WIN:
        raise ValueError(f"SSIM needs images of at least {_SSIM_WIN}×{_SSIM_WIN} pixels, got {h}×{w}")
    g = cv2.getGaussianKernel(_SSIM_WIN, _SSIM_SIGMA, cv2.CV_64F)
    c1, c2 = _SSIM_K1**2, _SSIM_K2**2
    r = _SSIM_WIN // 2 if padding == "valid" else 0

    def blur(x: np.ndarray) -> np.ndarray:
        # BORDER_REFLECT_101 is torch's (and so kornia's) 'reflect'
        y = cv2.sepFilter2D(x, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT_101)
        return y[r : h - r, r : w - r]

    mu_p, mu_t = blur(p), blur(t)
    var_p = blur(p * p) - mu_p * mu_p
    var_t = blur(t * t) - mu_t * mu_t
    cov = blur(p * t) - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return float(s.mean())


# -- no reference: UIQM ------------------------------------------------------------------------
#
# K. Panetta, C. Gao, S. Agaian, "Human-Visual-System-Inspired Underwater Image Quality
# Measures", IEEE Journal of Oceanic Engineering 41(3):541-551, 2016, doi:10.1109/JOE.2015.2469915.
# UIQM = c1·UICM + c2·UISM + c3·UIConM with c1 = 0.0282, c2 = 0.2953, c3 = 3.5753, on 0..255 RGB.

UIQM_C = (0.0282, 0.2953, 3.5753)
UIQM_BLOCK = 10  # block size of the EME / logAMEE measures (as in the FUnIE-GAN evaluation code)


def _to255(image: np.ndarray) -> np.ndarray:
    return as_float01(image) * 255.0


def _trimmed_mean(x: np.ndarray, alpha_l: float = 0.1, alpha_r: float = 0.1) -> float:
    """Asymmetric alpha-trimmed mean: drop the ⌈αL·K⌉ smallest and ⌊αR·K⌋ largest values."""
    x = np.sort(x.ravel())
    k = x.size
    lo, hi = math.ceil(alpha_l * k), math.floor(alpha_r * k)
    return float(x[lo : k - hi].mean())


def uicm(image: np.ndarray) -> float:
    """Colourfulness: −0.0268·√(μ²RG + μ²YB) + 0.1586·√(σ²RG + σ²YB) (Panetta 2016, eq. 3).

    RG = R − G, YB = (R + G)/2 − B; μ are α-trimmed means (αL = αR = 0.1), σ² the variances
    about them.
    """
    x = _to255(image)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    mu_rg, mu_yb = _trimmed_mean(rg), _trimmed_mean(yb)
    var_rg, var_yb = float(np.mean((rg - mu_rg) ** 2)), float(np.mean((yb - mu_yb) ** 2))
    return -0.0268 * math.hypot(mu_rg, mu_yb) + 0.1586 * math.sqrt(var_rg + var_yb)


def _blocks(x: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size×size blocks (remainder rows/columns cut) → [k2, k1, size, size, ...]."""
    k2, k1 = x.shape[0] // size, x.shape[1] // size
    if k1 == 0 or k2 == 0:
        raise ValueError(f"image of {x.shape[0]}×{x.shape[1]} is smaller than one {size}×{size} block")
    x = x[: k2 * size, : k1 * size]
    return x.reshape(k2, size, k1, size, *x.shape[2:]).swapaxes(1, 2)


def _eme(x: np.ndarray, size: int = UIQM_BLOCK) -> float:
    """Measure of enhancement: 2/(k1·k2) · Σ log(max/min) over blocks (blocks with a zero skipped)."""
    b = _blocks(x, size)
    flat = b.reshape(b.shape[0], b.shape[1], -1)
    mx, mn = flat.max(-1), flat.min(-1)
    ok = (mn > 0) & (mx > 0)
    total = float(np.log(mx[ok] / mn[ok]).sum())
    return 2.0 / (b.shape[0] * b.shape[1]) * total


def _sobel_magnitude(channel: np.ndarray) -> np.ndarray:
    dx = cv2.Sobel(channel, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    dy = cv2.Sobel(channel, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    mag = np.hypot(dx, dy)
    peak = mag.max()
    return mag * (255.0 / peak) if peak > 0 else mag


def uism(image: np.ndarray) -> float:
    """Sharpness: Σc λc·EME(Sobel(c)·c), λ = (0.299, 0.587, 0.114) (Panetta 2016, eqs. 6-7).

    The Sobel magnitude is scaled to 0..255 per channel before it weights the channel.
    """
    x = _to255(image)
    lambdas = (0.299, 0.587, 0.114)
    return sum(lam * _eme(_sobel_magnitude(x[..., c]) * x[..., c]) for c, lam in enumerate(lambdas))


def uiconm(image: np.ndarray) -> float:
    """Contrast: logAMEE = −1/(k1·k2) · Σ r·log r, r = (max − min)/(max + min) per block (eq. 8).

    The paper defines ⊖/⊕ with PLIP arithmetic; like the widely used FUnIE-GAN evaluation code we
    use ordinary arithmetic, max/min over all three channels of a block. Blocks with r = 0 add 0.
    """
    x = _to255(image)
    b = _blocks(x, UIQM_BLOCK)
    flat = b.reshape(b.shape[0], b.shape[1], -1)
    mx, mn = flat.max(-1), flat.min(-1)
    top, bot = mx - mn, mx + mn
    ok = (top > 0) & (bot > 0)
    r = top[ok] / bot[ok]
    return -float((r * np.log(r)).sum()) / (b.shape[0] * b.shape[1])


def uiqm(image: np.ndarray) -> float:
    """Underwater Image Quality Measure (Panetta, Gao, Agaian 2016): higher is better."""
    c1, c2, c3 = UIQM_C
    return c1 * uicm(image) + c2 * uism(image) + c3 * uiconm(image)


# -- no reference: UCIQE -----------------------------------------------------------------------

UCIQE_C = (0.4680, 0.2745, 0.2576)


def uciqe(image: np.ndarray) -> float:
    """Underwater Colour Image Quality Evaluation (M. Yang, A. Sowmya, IEEE TIP 24(12):6062-6071,
    2015, doi:10.1109/TIP.2015.2491020): c1·σc + c2·con_l + c3·μs, c = (0.4680, 0.2745, 0.2576).

    In CIELab (D65) with L, a, b divided by 100 (L ∈ [0, 1]): σc is the standard deviation of
    chroma C = √(a² + b²); con_l the mean of the brightest 1 % of L minus the mean of the darkest
    1 %; μs the mean saturation C/√(C² + L²) (0 where both are 0), the definition used by the
    authors' group's reference code (JOU-UIP/UCIQE), with a and b centred on 0 (that code reads
    OpenCV's offset 8-bit a/b, which pins chroma near 0.7 for every image). Higher is better.
    """
    rgb = as_float01(image).astype(np.float32)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float64) / 100.0
    lum, a, b = lab[..., 0].ravel(), lab[..., 1].ravel(), lab[..., 2].ravel()
    chroma = np.hypot(a, b)
    sigma_c = float(chroma.std())
    n = max(1, round(0.01 * lum.size))
    srt = np.sort(lum)
    con_l = float(srt[-n:].mean() - srt[:n].mean())
    denom = np.hypot(chroma, lum)
    sat = np.divide(chroma, denom, out=np.zeros_like(chroma), where=denom > 0)
    c1, c2, c3 = UCIQE_C
    return c1 * sigma_c + c2 * con_l + c3 * float(sat.mean())


# -- the classical baseline --------------------------------------------------------------------

CLAHE_CLIP = 2.0


def classical_enhance(image: np.ndarray) -> np.ndarray:
    """Gray-world white balance, then CLAHE on the L channel of Lab (OpenCV, clip 2.0, 8×8 tiles).

    The obvious few-millisecond alternative a user would try first, so every report shows it.
    Gray world scales each channel so its mean equals the mean of the three channel means
    (truncated to uint8, as the quoted baseline numbers were computed). Returns uint8 RGB.
    """
    x = as_float01(image, "image") * 255.0
    means = x.reshape(-1, 3).mean(0)
    gains = means.mean() / np.maximum(means, 1e-6)
    balanced = np.clip(x * gains, 0, 255).astype(np.uint8)
    return clahe_luminance(balanced, CLAHE_CLIP)


# -- segmentation ------------------------------------------------------------------------------


def class_area_fractions(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Fraction of pixels per class id (length ``num_classes``; ids ≥ num_classes are ignored)."""
    counts = np.bincount(mask.ravel().astype(np.int64), minlength=num_classes)[:num_classes]
    return counts / max(1, mask.size)
