"""Training augmentation of paired images: extra water changes only the raw side."""

from __future__ import annotations

import random

import numpy as np
import pytest

from snn_perception.offline.pairs import PairAugment, PairedImages, add_water, adjust_tone


def _pair(seed: int = 0, hw: tuple[int, int] = (96, 80)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    raw = (ref * 0.6).astype(np.uint8)
    return raw, ref


def test_add_water_is_identity_at_zero_metres_and_drains_red_with_distance() -> None:
    raw, _ = _pair()
    same = add_water(raw, 0.0, np.random.default_rng(1))
    assert np.abs(same.astype(int) - raw.astype(int)).max() <= 1  # rounding only
    far = add_water(raw, 2.5, np.random.default_rng(1)).reshape(-1, 3).astype(float).mean(0)
    near = raw.reshape(-1, 3).astype(float).mean(0)
    # red is attenuated most in every random water, so red/blue falls
    assert far[0] / far[2] < 0.8 * near[0] / near[2], (near, far)


def _sample(extra_water: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    raw, ref = _pair()
    data = PairedImages([(raw, ref)], augment=PairAugment(crop=64, extra_water=extra_water))
    random.seed(seed)
    a, b = data[0]
    return a.numpy(), b.numpy()


def test_extra_water_changes_the_raw_crop_and_never_the_reference() -> None:
    for seed in range(5):
        plain_raw, plain_ref = _sample(0.0, seed)
        wet_raw, wet_ref = _sample(1.0, seed)
        assert np.array_equal(plain_ref, wet_ref), "the reference must stay the clean scene"
        assert np.abs(plain_raw - wet_raw).mean() > 0.01, "the raw crop was not changed"
        assert plain_raw.shape == wet_raw.shape == (3, 64, 64)


def test_extra_water_probability_is_respected() -> None:
    raw, ref = _pair()
    data = PairedImages([(raw, ref)], augment=PairAugment(crop=64, hflip=False, vflip=False, extra_water=0.5))
    plain = PairedImages([(raw, ref)], augment=PairAugment(crop=64, hflip=False, vflip=False))
    changed = 0
    for seed in range(40):
        random.seed(seed)
        a, _ = data[0]
        random.seed(seed)
        b, _ = plain[0]
        changed += int(not np.array_equal(a.numpy(), b.numpy()))
    assert 8 <= changed <= 32, f"{changed}/40 samples got extra water at p=0.5"


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_extra_water_outside_0_1_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="--extra-water"):
        PairAugment(extra_water=p)


def test_adjust_tone_is_identity_at_unit_gain_and_gamma_and_darkens_below_one() -> None:
    _, ref = _pair()
    assert np.array_equal(adjust_tone(ref, 1.0, 1.0), ref)
    assert adjust_tone(ref, 0.7, 1.0).mean() < 0.75 * ref.mean()
    assert adjust_tone(ref, 1.0, 1.3).mean() < ref.mean()  # gamma > 1 darkens mid-tones


def test_tone_jitter_gives_raw_and_reference_the_same_change() -> None:
    _, ref = _pair()
    same = PairedImages([(ref, ref.copy())], augment=PairAugment(crop=64, tone=0.3))
    plain = PairedImages([(ref, ref.copy())], augment=PairAugment(crop=64))
    changed = 0
    for seed in range(10):
        random.seed(seed)
        raw_t, ref_t = same[0]
        assert np.array_equal(raw_t.numpy(), ref_t.numpy()), "raw and reference got different tones"
        random.seed(seed)
        changed += int(not np.array_equal(ref_t.numpy(), plain[0][1].numpy()))
    assert changed >= 9, f"only {changed}/10 crops changed tone"


@pytest.mark.parametrize("s", [-0.1, 0.95, float("nan")])
def test_tone_jitter_outside_its_range_is_refused(s: float) -> None:
    with pytest.raises(ValueError, match="--tone-jitter"):
        PairAugment(tone=s)


def test_a_pair_of_two_sizes_is_refused_naming_both_files(tmp_path) -> None:
    import cv2

    from snn_perception.offline.pairs import PairedImages, PairsError

    raw, ref = tmp_path / "raw.png", tmp_path / "ref.png"
    cv2.imwrite(str(raw), np.zeros((48, 64, 3), np.uint8))
    cv2.imwrite(str(ref), np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(PairsError, match=r"raw\.png is 64x48 but its reference .*ref\.png is 50x40"):
        PairedImages.from_paths([(raw, ref)])
