"""The synthetic dive follows the underwater image-formation model and moves like a dive."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from snn_perception.offline.underwater_render import (
    DiveConfig,
    WaterType,
    linear_to_srgb,
    render_dive,
    render_underwater,
    srgb_to_linear,
    synthetic_pair,
    transmission,
)

WATER = WaterType()


@pytest.fixture(scope="module")
def dive():
    return render_dive(DiveConfig(seconds=2.0, rate_hz=10.0, size=(64, 96), noise_sigma=0.0))


def test_model_is_identity_at_zero_distance_and_veiling_light_far_away() -> None:
    clean = np.random.default_rng(0).uniform(0, 1, (8, 8, 3))
    assert np.allclose(render_underwater(clean, 0.0, WATER), clean, atol=1e-9)
    far = render_underwater(clean, 500.0, WATER)
    assert np.allclose(far, linear_to_srgb(np.array(WATER.veiling_light)) * np.ones_like(clean), atol=1e-6)


def test_model_is_the_formation_equation_in_linear_light() -> None:
    clean = np.random.default_rng(1).uniform(0, 1, (5, 7, 3))
    d = np.random.default_rng(2).uniform(0, 10, (5, 7))
    t = np.exp(-d[..., None] * np.array(WATER.attenuation))
    expected = srgb_to_linear(clean) * t + np.array(WATER.veiling_light) * (1 - t)
    assert np.allclose(srgb_to_linear(render_underwater(clean, d, WATER)), expected, atol=1e-9)


def test_red_fades_first() -> None:
    t = transmission(np.array([1.0, 3.0, 6.0]), WATER)
    assert np.all(t[:, 0] < t[:, 1]) and np.all(t[:, 1] < t[:, 2])
    white = np.ones((4, 4, 3))
    ratios = [
        render_underwater(white, d, WATER)[..., 0].mean() / render_underwater(white, d, WATER)[..., 2].mean()
        for d in (1.0, 3.0, 6.0)
    ]
    assert ratios[0] > ratios[1] > ratios[2]


def test_dive_has_ten_hz_frames_with_clean_ground_truth(dive) -> None:
    assert len(dive) == 20
    assert [f.index for f in dive] == list(range(20))
    assert np.allclose(np.diff([f.time_s for f in dive]), 0.1)
    for f in dive:
        assert f.raw.shape == f.clean.shape == (64, 96, 3)
        assert f.raw.dtype == f.clean.dtype == np.uint8


def test_raw_frames_are_the_clean_frames_seen_through_water(dive) -> None:
    f = dive[0]
    rows = 1.0 + 0.6 * (1.0 - np.linspace(0, 1, 64))[:, None]
    expected = render_underwater(f.clean, np.broadcast_to(f.distance_m * rows, (64, 96)), WATER) * 255
    assert np.abs(f.raw.astype(float) - expected).max() <= 0.51
    raw_rgb, clean_rgb = f.raw.reshape(-1, 3).mean(0), f.clean.reshape(-1, 3).mean(0)
    assert raw_rgb[0] / raw_rgb[2] < clean_rgb[0] / clean_rgb[2]  # red lost relative to blue


def test_distance_varies_and_the_camera_pans(dive) -> None:
    d = [f.distance_m for f in dive]
    assert d[0] == pytest.approx(6.0) and min(d) < 2.0
    shifts = []
    for a, b in itertools.pairwise(dive):
        assert not np.array_equal(a.clean, b.clean)
        err = [np.abs(a.clean[:, s:].astype(int) - b.clean[:, : 96 - s]).mean() for s in range(40)]
        shifts.append(int(np.argmin(err)))
    assert all(0 < s < 40 for s in shifts)  # a slow pan: a few pixels per frame, always moving right


def test_dive_is_deterministic_for_a_seed() -> None:
    cfg = DiveConfig(seconds=0.3, size=(32, 48))
    a, b = render_dive(cfg), render_dive(cfg)
    assert all(np.array_equal(x.raw, y.raw) for x, y in zip(a, b, strict=True))


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="near_m"):
        DiveConfig(near_m=5.0, far_m=2.0)
    with pytest.raises(ValueError, match="size"):
        DiveConfig(size=(8, 8))


def test_synthetic_pair_degrades_a_clean_image() -> None:
    clean = np.full((32, 32, 3), 200, np.uint8)
    raw, ref = synthetic_pair(clean, np.random.default_rng(3))
    assert ref is clean and raw.shape == clean.shape
    assert raw[..., 0].mean() < raw[..., 2].mean()


def test_the_dive_uses_the_shared_suim_photographs_or_falls_back(tmp_path, monkeypatch) -> None:
    """Beside ../shared the dive pans over six SUIM photographs; a user's clone without it gets
    scikit-image's sample photographs, so ``make demo`` still runs."""
    from snn_perception.offline import underwater_render as u
    from snn_perception.runtime import weights

    monkeypatch.setattr(weights, "shared_dirs", lambda: [tmp_path / "nowhere"])
    assert u.dive_photos() == u.SKIMAGE_PHOTOS
    assert u.panorama(32).shape[0] == 32
    folder = tmp_path / "shared" / u.SUIM_IMAGES
    folder.mkdir(parents=True)
    import cv2
    import numpy as np

    for name in u.SUIM_PHOTOS:
        cv2.imwrite(str(folder / f"{name}.jpg"), np.full((24, 32, 3), 80, np.uint8))
    monkeypatch.setattr(weights, "shared_dirs", lambda: [tmp_path / "shared"])
    assert u.dive_photos() == u.SUIM_PHOTOS
    assert u.panorama(24).shape == (24, 6 * 32, 3)


def test_suim_photographs_bring_their_class_masks_panned_with_the_frames(tmp_path, monkeypatch) -> None:
    """Each SUIM photograph's mask (``masks/NAME.png`` beside ``images/``) is laid out and panned
    exactly as the photograph, nearest-neighbour, so the demo can score the segmenter; without
    masks (or with scikit-image's photographs) frames carry none."""
    import cv2

    from snn_perception.offline import underwater_render as u
    from snn_perception.runtime import weights

    images = tmp_path / "shared" / u.SUIM_IMAGES
    images.mkdir(parents=True)
    for i, name in enumerate(u.SUIM_PHOTOS):
        cv2.imwrite(str(images / f"{name}.jpg"), np.full((24, 32, 3), 40 * i, np.uint8))
    monkeypatch.setattr(weights, "shared_dirs", lambda: [tmp_path / "shared"])
    cfg = DiveConfig(seconds=1.0, size=(16, 24), noise_sigma=0.0)
    assert all(f.mask is None for f in u.iter_dive(cfg))  # photographs without masks
    masks = images.parent / "masks"
    masks.mkdir()
    for i, name in enumerate(u.SUIM_PHOTOS):
        ids = np.full((24, 32), i + 1, np.uint8)
        ids[:, :16] = 0
        cv2.imwrite(str(masks / f"{name}.png"), ids)
    wall = u.panorama_masks(round(16 * 1.2))
    assert wall is not None and wall.shape == (19, 6 * 25) and set(np.unique(wall)) == set(range(7))
    for f in u.iter_dive(cfg):
        assert f.mask is not None and f.mask.shape == (16, 24) and f.mask.dtype == np.uint8
    first = next(u.iter_dive(cfg))
    assert np.array_equal(first.mask, wall[:16, :24])  # the frame's window of the wall
