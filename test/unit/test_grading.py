"""Global grading: the dehazer's colour correction carried onto the input frame itself
(``snn_perception.runtime.grading``), in ``finish_dehaze``, ``enhance`` and ``evaluate``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli, refused

from snn_perception.runtime.grading import apply_grading, fit_grading, global_grading, validate_grading
from snn_perception.runtime.preprocess import finish_dehaze, float_to_uint8

RNG = np.random.default_rng(1)
MATRIX = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.0], [0.1, 0.2, 1.2]])
OFFSET = np.array([0.05, 0.02, -0.03])


def _scene(hw: tuple[int, int] = (300, 400)) -> np.ndarray:
    """A textured float image in [0.1, 0.8] (detail at every scale)."""
    noise = RNG.uniform(0.1, 0.8, (hw[0] // 4, hw[1] // 4, 3)).astype(np.float32)
    big = cv2.resize(noise, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(big + RNG.normal(0, 0.03, big.shape).astype(np.float32), 0.1, 0.8)


def test_a_global_grading_is_recovered_from_a_blurred_low_resolution_output() -> None:
    """The output the network gives is graded, smaller (the model ran at a capped size) and
    blurred; the fit still recovers the grading, and applying it keeps the input's full detail."""
    src = _scene()
    graded = np.clip(src @ MATRIX.T + OFFSET, 0, 1).astype(np.float32)
    small = cv2.resize(graded, (100, 75), interpolation=cv2.INTER_AREA)
    blurry = cv2.resize(small, (400, 300), interpolation=cv2.INTER_LINEAR)  # what the engine returns
    coef = fit_grading(src, blurry, model_hw=(75, 100))
    assert np.allclose(coef[:3].T, MATRIX, atol=0.03) and np.allclose(coef[3], OFFSET, atol=0.02)
    out = global_grading(src, blurry, (75, 100))
    assert np.abs(out - graded).mean() < 0.01  # the detail is the input's
    assert np.abs(blurry - graded).mean() > 2 * np.abs(out - graded).mean()


def test_uint8_and_float_inputs_agree_and_the_output_stays_in_range() -> None:
    src = _scene((64, 80))
    out = np.clip(src * 1.8 - 0.3, -0.2, 1.2).astype(np.float32)  # unclamped, like the network's
    a = global_grading(float_to_uint8(src), out)
    b = global_grading(src, out)
    assert a.dtype == np.float32 and a.shape == src.shape
    assert np.abs(a - b).max() < 0.02 and a.min() >= 0.0 and a.max() <= 1.0
    assert np.allclose(apply_grading(src, fit_grading(src, src)), src, atol=1e-4)  # identity fits


def test_a_grey_source_is_fitted_without_failing() -> None:
    grey = np.repeat(_scene((32, 32))[..., :1], 3, axis=2)
    out = np.stack([grey[..., 0] * 0.5, grey[..., 0], grey[..., 0] * 0.8 + 0.1], axis=2)
    assert np.abs(global_grading(grey, out) - out).max() < 1e-3


def test_finish_dehaze_grades_before_strength_and_mono_and_refuses_other_words() -> None:
    src = float_to_uint8(_scene((24, 32)))
    out = RNG.uniform(0, 1, src.shape).astype(np.float32)
    graded = finish_dehaze(out, src, grading="global")
    assert np.array_equal(graded, float_to_uint8(global_grading(src, out)))
    assert np.array_equal(finish_dehaze(out, src, 0.0, grading="global"), src)
    assert finish_dehaze(out, src, mono=True, grading="global").ndim == 2
    with pytest.raises(ValueError, match="is not one of: pixels, global"):
        finish_dehaze(out, src, grading="local")
    with pytest.raises(ValueError, match="must have one size"):
        fit_grading(src, out[:10])
    assert validate_grading("pixels") == "pixels"


def test_enhance_grading_global_writes_the_graded_input_and_refuses_other_words(tmp_path: Path) -> None:
    img = float_to_uint8(_scene((48, 64)))
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), img[..., ::-1])
    small = ["--timesteps", "1", "--threads", "1", "--max-pixels", "1024"]
    for grading in ("pixels", "global"):
        proc = cli("enhance", "in", "--out", grading, "--grading", grading, *small, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    pixels = cv2.imread(str(tmp_path / "pixels" / "a.png")).astype(np.float32)
    graded = cv2.imread(str(tmp_path / "global" / "a.png")).astype(np.float32)
    # the model ran at 32×24 and its output was scaled back up: graded keeps the input's detail
    detail = cv2.Laplacian(img[..., ::-1].astype(np.float32), cv2.CV_32F).std()
    assert cv2.Laplacian(graded, cv2.CV_32F).std() > 0.5 * detail
    assert cv2.Laplacian(pixels, cv2.CV_32F).std() < 0.5 * detail
    proc = cli("enhance", "in", "--out", "o2", "--grading", "local", *small, cwd=tmp_path)
    refused(proc, "--grading")
    assert "pixels" in proc.stderr and not (tmp_path / "o2").exists()


def test_evaluate_scores_both_gradings_as_rows_and_refuses_them_for_segmentation(tmp_path: Path) -> None:
    import json

    for i in range(2):
        src = float_to_uint8(_scene((40, 40)))
        ref = float_to_uint8(np.clip(_scene((40, 40)) @ MATRIX.T, 0, 1))
        for sub, img in (("raw", src), ("reference", ref)):
            (tmp_path / "pairs" / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "pairs" / sub / f"{i}.png"), img)
    args = ["--data", "pairs", "--size", "32", "--timesteps", "1", "--no-uiqm", "--threads", "1"]
    proc = cli(
        "evaluate",
        "--task",
        "dehaze",
        *args,
        "--grading",
        "pixels",
        "global",
        "--max-pixels",
        "256",
        "--json",
        "e.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "e.json").read_text())
    assert {"dhz@T1", "dhz@T1+global"} <= set(result["methods"])
    assert (
        result["config"]["gradings"] == ["pixels", "global"] and result["config"]["max_model_pixels"] == 256
    )
    refused(
        cli("evaluate", "--task", "segment", "--data", "pairs", "--grading", "global", cwd=tmp_path),
        "dehaze only",
    )
    refused(cli("evaluate", "--task", "dehaze", *args, "--max-pixels", "-1", cwd=tmp_path), "--max-pixels -1")
