"""The ``contrast`` grading: a per-frame local-contrast strength (``runtime.contrast``), its fit
(``offline.contrast_fit``), the weights that carry it, and ``finish_dehaze``/``evaluate``/``enhance``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli, refused

from snn_perception.offline.contrast_fit import best_strength, fit_contrast, save_with_contrast, strength_cost
from snn_perception.runtime.contrast import (
    FEATURES,
    ContrastModel,
    clahe_luminance,
    frame_features,
    local_contrast,
)
from snn_perception.runtime.preprocess import finish_dehaze

N = len(FEATURES)
RNG = np.random.default_rng(3)


def _model(intercept: float, coef: float = 0.0, clip: float = 1.5) -> ContrastModel:
    return ContrastModel(clip=clip, mean=(0.0,) * N, std=(1.0,) * N, coef=(coef,) * N, intercept=intercept)


def _scene(hw: tuple[int, int] = (96, 128)) -> np.ndarray:
    noise = RNG.uniform(0.2, 0.6, (hw[0] // 8, hw[1] // 8, 3)).astype(np.float32)
    big = cv2.resize(noise, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)
    return (np.clip(big, 0, 1) * 255).astype(np.uint8)


def test_the_strength_blends_the_graded_frame_with_its_clahe_and_is_clipped_to_0_1() -> None:
    g8 = _scene()
    c = clahe_luminance(g8, 1.5).astype(np.float32) / 255.0
    g = g8.astype(np.float32) / 255.0
    assert np.abs(c - g).mean() > 0.01  # CLAHE does change this frame
    for intercept, alpha in ((0.0, 0.0), (0.3, 0.3), (1.0, 1.0), (-2.0, 0.0), (5.0, 1.0)):
        out, got = local_contrast(g8, g8, _model(intercept))
        assert got == pytest.approx(alpha)
        assert np.abs(out - (g + alpha * (c - g))).max() < 1e-6


def test_statistics_are_taken_at_the_size_the_model_ran_at() -> None:
    """A frame twice the model's size gets (nearly) the strength its model-size copy gets, and the
    output keeps the full size."""
    model = ContrastModel(
        clip=1.5, mean=(0.0,) * N, std=(1.0,) * N, coef=(0.0, 0.0, 0.0, 2.0) + (0.0,) * (N - 4), intercept=0.0
    )  # α = 2 × the mean |Laplacian|, a scale-dependent statistic
    small = _scene((96, 128))
    big = cv2.resize(small, (256, 192), interpolation=cv2.INTER_CUBIC)
    _, alpha_small = local_contrast(small, small, model)
    out, alpha_big = local_contrast(big, big, model, model_hw=(96, 128))
    _, alpha_big_native = local_contrast(big, big, model)
    assert out.shape == big.shape
    assert abs(alpha_big - alpha_small) < 0.25 * abs(alpha_big_native - alpha_small)


def test_the_model_round_trips_and_malformed_ones_say_what_was_expected() -> None:
    model = _model(0.4, 0.1)
    assert ContrastModel.from_dict(model.to_dict()) == model
    bad = model.to_dict()
    for change, words in (
        ({"coef": [0.1] * (N - 1)}, "coef: expected 10 finite numbers"),
        ({"std": [0.0] * N}, "must be > 0"),
        ({"clip": -1}, "clip"),
        ({"features": ["x"]}, "this version reads"),
    ):
        with pytest.raises(ValueError, match=words):
            ContrastModel.from_dict({**bad, **change})
    with pytest.raises(ValueError, match="missing or malformed"):
        ContrastModel.from_dict({k: v for k, v in bad.items() if k != "intercept"})
    with pytest.raises(ValueError, match="JSON object"):
        ContrastModel.from_dict([1, 2])


def test_the_best_strength_is_recovered_and_clipped() -> None:
    g = RNG.uniform(0, 1, (16, 16, 3))
    c = np.clip(g + RNG.normal(0, 0.1, g.shape), 0, 1)
    assert best_strength(g, c, g + 0.4 * (c - g)) == pytest.approx(0.4)
    assert best_strength(g, c, g + 3.0 * (c - g)) == 1.0
    assert best_strength(g, c, g - 0.5 * (c - g)) == 0.0
    assert best_strength(g, g, c) == 0.0  # CLAHE changed nothing: no strength to find


def test_the_fit_recovers_a_linear_strength_with_every_source_weighing_the_same() -> None:
    x = RNG.normal(0, 1, (300, N)) * np.arange(1, N + 1) + 5.0
    truth = 0.5 + 0.05 * (x[:, 0] - 5.0) - 0.02 * (x[:, 3] - 5.0) / 4
    sources = ["many"] * 250 + ["few"] * 50
    model = fit_contrast(x, truth, sources, clip=1.5, ridge=0.0)
    predicted = np.array([model.strength(list(row)) for row in x])
    assert np.abs(predicted - np.clip(truth, 0, 1)).max() < 1e-6
    # frames that look alike, 250 wanting α = 0.1 and 50 wanting 0.9: equal weight meets halfway
    flat = fit_contrast(np.ones((300, N)), np.r_[[0.1] * 250, [0.9] * 50], sources, 1.5)
    assert flat.strength([1.0] * N) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="expected N×10"):
        fit_contrast(x[:, :3], truth, sources, 1.5)


def test_the_cost_is_the_psnr_lost_per_squared_strength_error() -> None:
    g = RNG.uniform(0.2, 0.8, (32, 32, 3))
    c = np.clip(g + RNG.normal(0, 0.1, g.shape), 0, 1)
    ref = g + 0.3 * (c - g) + RNG.normal(0, 0.05, g.shape)
    best = best_strength(g, c, ref)
    cost = strength_cost(g, c, ref, best)

    def psnr(alpha: float) -> float:
        return -10 * np.log10(np.mean((g + alpha * (c - g) - ref) ** 2))

    for err in (-0.2, 0.05, 0.2):  # MSE grows by q·err² exactly (best is not clipped here) ...
        exact = 10 * np.log10(1 + cost * err**2 * np.log(10) / 10)
        assert psnr(best) - psnr(best + err) == pytest.approx(exact, rel=1e-6)
    assert psnr(best) - psnr(best + 0.02) == pytest.approx(cost * 0.02**2, rel=0.01)  # ... ≈ cost·err²
    assert strength_cost(g, g, ref, 0.0) == 0.0


def test_frame_weights_share_out_a_source_and_are_checked() -> None:
    sources = ["a"] * 4 + ["b"] * 4
    x = np.ones((8, N))
    best = np.r_[[0.0, 0.0, 0.0, 1.0], [0.5] * 4]
    # one frame of "a" carries all of a's weight: a counts as wanting 1.0, b 0.5 → 0.75
    heavy = fit_contrast(x, best, sources, 1.5, frame_weights=np.r_[[0, 0, 0, 1.0], [1.0] * 4])
    assert heavy.strength([1.0] * N) == pytest.approx(0.75)
    assert fit_contrast(x, best, sources, 1.5).strength([1.0] * N) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="finite numbers ≥ 0"):
        fit_contrast(x, best, sources, 1.5, frame_weights=np.r_[[-1.0], [1.0] * 7])
    with pytest.raises(ValueError, match="weight > 0"):
        fit_contrast(x, best, sources, 1.5, frame_weights=np.r_[[0.0] * 4, [1.0] * 4])


def test_features_are_finite_on_flat_and_textured_frames() -> None:
    for frame in (np.full((32, 32, 3), 128, np.uint8), _scene()):
        feats = frame_features(frame, frame, clahe_luminance(frame, 1.5))
        assert len(feats) == N and all(np.isfinite(feats))


def test_finish_dehaze_refuses_the_contrast_grading_without_a_model() -> None:
    src = _scene()
    out = src.astype(np.float32) / 255.0
    with pytest.raises(ValueError, match="needs weights that carry a fitted contrast model"):
        finish_dehaze(out, src, grading="contrast")
    graded = finish_dehaze(out, src, grading="global")
    strong = finish_dehaze(out, src, grading="contrast", contrast=_model(1.0))
    assert np.array_equal(finish_dehaze(out, src, grading="contrast", contrast=_model(0.0)), graded)
    assert np.abs(strong.astype(float) - graded).mean() > 1.0


@pytest.fixture(scope="module")
def weights_with_contrast(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("contrast") / "dhz_c.safetensors"
    return save_with_contrast("dhz", _model(0.7), out)


def test_weights_carry_the_model_and_a_malformed_one_is_refused_at_load(
    weights_with_contrast: Path, tmp_path: Path
) -> None:
    from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, save_checkpoint
    from snn_perception.runtime.engine import Engine

    engine = Engine.load(str(weights_with_contrast), task="dehaze")
    assert engine.info.contrast == _model(0.7)
    assert Engine.load("dhz_v2", task="dehaze").info.contrast is None
    ckpt = load_checkpoint(weights_with_contrast)
    meta = {**ckpt.metadata, "contrast": {**ckpt.metadata["contrast"], "std": [0.0] * N}}
    meta.pop("format_version")
    save_checkpoint(tmp_path / "bad.safetensors", ckpt.state_dict, meta)
    with pytest.raises(WeightsError, match=r"bad\.safetensors: contrast model std"):
        Engine.load(str(tmp_path / "bad.safetensors"), task="dehaze")


def test_evaluate_scores_the_contrast_rows_and_refuses_weights_without_a_model(
    weights_with_contrast: Path, shared: Path, tmp_path: Path
) -> None:
    from snn_perception.offline.evaluate_dehaze import DehazeEvalConfig, evaluate_dehaze
    from snn_perception.runtime.checkpoint import WeightsError

    data = str(shared / "data" / "ufo120_sample")
    cfg = DehazeEvalConfig(
        data=[data], size=(64, 64), weights=[str(weights_with_contrast)], gradings=["global", "contrast"],
        limit=2, methods=[],
    )  # fmt: skip
    result = evaluate_dehaze(cfg, progress=False)
    rows = result["methods"]
    (global_row,) = [k for k in rows if k.endswith("+global")]
    (contrast_row,) = [k for k in rows if k.endswith("+contrast")]
    assert rows[global_row]["mean"]["psnr"] != rows[contrast_row]["mean"]["psnr"]
    cfg.weights = ["dhz_v2"]
    with pytest.raises(WeightsError, match="carry no contrast model"):
        evaluate_dehaze(cfg, progress=False)


def test_enhance_refuses_the_contrast_grading_for_weights_without_one(tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), _scene())
    args = [
        "enhance",
        str(image),
        "--out",
        str(tmp_path / "out"),
        "--weights",
        "dhz_v2",
        "--grading",
        "contrast",
    ]
    refused(cli(*args, cwd=tmp_path), "carry no contrast model", "--grading global or pixels")
    assert not (tmp_path / "out").exists()
