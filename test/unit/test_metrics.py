"""Quality metrics agree with independent implementations and with their published definitions."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import kornia
import numpy as np
import pytest
import torch
from scipy import stats
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from snn_perception.offline import metrics as M
from snn_perception.offline import seg_metrics


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo and a degraded version of it (blue-green cast, blur, noise)."""
    clean = data.astronaut()[::2, ::2].copy()
    rng = np.random.default_rng(0)
    x = clean.astype(np.float64) * np.array([0.5, 0.9, 1.0]) + np.array([0, 20, 40])
    x = cv2.GaussianBlur(x, (5, 5), 1.2) + rng.normal(0, 6, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8), clean


def _torch(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255.0


def test_psnr_matches_skimage(pair) -> None:
    raw, clean = pair
    expected = peak_signal_noise_ratio(clean, raw, data_range=255)
    assert M.psnr(raw, clean) == pytest.approx(expected, abs=1e-9)


def test_psnr_of_a_constant_error_is_exact_and_identical_images_are_infinite() -> None:
    a = np.full((16, 16, 3), 0.5, np.float32)
    assert M.psnr(a + 0.1, a) == pytest.approx(20.0, abs=1e-4)  # 10·log10(1/0.01)
    assert M.psnr(a, a) == math.inf


def test_psnr_clips_unclamped_float_output_like_the_user_sees_it() -> None:
    ref = np.ones((8, 8, 3), np.float32)
    assert M.psnr(ref * 1.7, ref) == math.inf


def test_ssim_same_padding_matches_kornia(pair) -> None:
    raw, clean = pair
    expected = kornia.metrics.ssim(_torch(raw), _torch(clean), 11).mean().item()
    assert M.ssim(raw, clean) == pytest.approx(expected, abs=1e-7)


def test_ssim_valid_padding_matches_skimage_gaussian(pair) -> None:
    raw, clean = pair
    expected = structural_similarity(
        raw / 255.0,
        clean / 255.0,
        channel_axis=2,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert M.ssim(raw, clean, padding="valid") == pytest.approx(expected, abs=1e-9)


def test_ssim_of_identical_images_is_one_and_bad_shapes_are_named(pair) -> None:
    raw, _ = pair
    assert M.ssim(raw, raw) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        M.ssim(raw, raw[:-1])
    with pytest.raises(ValueError, match="H×W×3"):
        M.psnr(raw[..., 0], raw[..., 0])


def test_dataset_numbers_quoted_in_the_issues_are_reproduced(shared: Path) -> None:
    """EUVP test23: raw 17.23 dB / 0.687, classical baseline 15.77 dB / 0.629 (issue 7)."""
    from snn_perception.offline.pairs import list_pairs, read_rgb

    rows = []
    for raw_p, ref_p in list_pairs(shared / "data" / "euvp_test23"):
        raw, ref = read_rgb(raw_p), read_rgb(ref_p)
        base = M.classical_enhance(raw)
        rows.append((M.psnr(raw, ref), M.ssim(raw, ref), M.psnr(base, ref), M.ssim(base, ref)))
    p_raw, s_raw, p_cls, s_cls = np.mean(rows, axis=0)
    assert (round(p_raw, 2), round(s_raw, 3)) == (17.23, 0.687)
    assert (round(p_cls, 2), round(s_cls, 3)) == (15.77, 0.629)


def test_trimmed_mean_matches_scipy_when_the_trim_is_whole() -> None:
    x = np.random.default_rng(1).normal(size=200)
    assert M._trimmed_mean(x) == pytest.approx(stats.trim_mean(x, 0.1), abs=1e-12)


def test_uicm_is_zero_for_grey_and_follows_the_formula() -> None:
    assert M.uicm(np.full((20, 20, 3), 90, np.uint8)) == pytest.approx(0.0, abs=1e-12)
    # a uniform colour: no variance, |mean| = √(RG² + YB²)
    img = np.zeros((20, 20, 3), np.uint8)
    img[...] = (200, 100, 50)
    rg, yb = 100.0, 150.0 - 50.0
    assert M.uicm(img) == pytest.approx(-0.0268 * math.hypot(rg, yb), abs=1e-9)


def test_eme_matches_an_explicit_block_loop() -> None:
    x = np.random.default_rng(2).uniform(0, 255, (37, 53))
    x[:10, :10] = 0.0  # a block with a zero minimum is skipped
    k1, k2 = 53 // 10, 37 // 10
    total = 0.0
    for i in range(k2):
        for j in range(k1):
            b = x[i * 10 : (i + 1) * 10, j * 10 : (j + 1) * 10]
            if b.min() > 0:
                total += math.log(b.max() / b.min())
    assert M._eme(x) == pytest.approx(2.0 / (k1 * k2) * total, rel=1e-12)


def test_uiqm_parts_are_zero_on_a_flat_image_and_rise_with_contrast(pair) -> None:
    flat = np.full((40, 40, 3), 128, np.uint8)
    assert (M.uism(flat), M.uiconm(flat)) == (0.0, 0.0)
    _, clean = pair
    washed = (clean.astype(np.float64) * 0.4 + 100).astype(np.uint8)
    assert M.uiqm(clean) > M.uiqm(washed)
    assert M.uiqm(clean) == pytest.approx(
        0.0282 * M.uicm(clean) + 0.2953 * M.uism(clean) + 3.5753 * M.uiconm(clean), rel=1e-12
    )


def test_uciqe_matches_an_independent_lab_computation(pair) -> None:
    raw, _ = pair
    lab = color.rgb2lab(raw) / 100.0  # skimage's own sRGB → Lab (D65)
    lum, chroma = lab[..., 0].ravel(), np.hypot(lab[..., 1], lab[..., 2]).ravel()
    n = round(0.01 * lum.size)
    srt = np.sort(lum)
    expected = (
        0.4680 * chroma.std()
        + 0.2745 * (srt[-n:].mean() - srt[:n].mean())
        + 0.2576 * np.mean(chroma / np.hypot(chroma, lum))
    )
    assert M.uciqe(raw) == pytest.approx(expected, abs=2e-3)


def test_uciqe_is_zero_for_flat_grey_and_higher_for_a_vivid_image(pair) -> None:
    assert M.uciqe(np.full((30, 30, 3), 128, np.uint8)) == pytest.approx(0.0, abs=1e-3)
    _, clean = pair
    washed = (clean.astype(np.float64) * 0.4 + 100).astype(np.uint8)
    assert M.uciqe(clean) > M.uciqe(washed)


def test_classical_baseline_neutralises_a_colour_cast() -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    img[...] = (40, 120, 160)  # flat blue-green water
    out = M.classical_enhance(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    r, g, b = out.reshape(-1, 3).mean(0)
    assert max(r, g, b) - min(r, g, b) <= 2.0


def test_segmentation_helpers_on_a_hand_computed_case() -> None:
    target = np.array([[0, 0, 1, 1], [0, 0, 1, 255]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [0, 0, 2, 2]], np.uint8)
    conf = seg_metrics.confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[3, 1, 0], [0, 2, 1], [0, 0, 0]]
    # IoU: class 0 = 3/4, class 1 = 2/4, class 2 = 0/1 → mean 5/12
    assert seg_metrics.miou(conf) == pytest.approx(5 / 12)
    assert M.class_area_fractions(pred, 3).tolist() == pytest.approx([3 / 8, 3 / 8, 2 / 8])
