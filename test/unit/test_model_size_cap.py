"""A default cap on model-input pixels: big frames run the model at a smaller size of their aspect
ratio, outputs keep the frame's size; 0 and an explicit size turn it off."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli, refused

from snn_perception.runtime.engine import Engine, EngineConfig
from snn_perception.runtime.memory import DEFAULT_MAX_MODEL_PIXELS, capped_hw

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("hw", "cap"), [((1080, 1920), DEFAULT_MAX_MODEL_PIXELS), ((3000, 4000), 10**6), ((500, 2000), 50000)]
)
def test_a_capped_size_keeps_the_aspect_ratio_under_the_cap(hw: tuple[int, int], cap: int) -> None:
    h, w = capped_hw(hw, cap)
    assert h * w <= cap and h % 8 == 0 and w % 8 == 0
    assert abs(w / h - hw[1] / hw[0]) / (hw[1] / hw[0]) < 0.1  # within the rounding to multiples of 8
    assert (h + 8) * (w + 8) > cap  # the largest such size, give or take the rounding


def test_frames_under_the_cap_and_a_zero_cap_keep_their_size() -> None:
    assert capped_hw((480, 640), DEFAULT_MAX_MODEL_PIXELS) == (480, 640)
    assert capped_hw((1080, 1920), 0) == (1080, 1920)


def test_the_engine_runs_a_big_frame_small_and_returns_it_at_its_size() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    engine = Engine.load("dhz", EngineConfig(device="cpu", timesteps=1, max_model_pixels=48 * 80))
    res = engine.run(frame)
    assert res.output.shape == frame.shape
    assert res.stats.model_hw == (48, 80) and res.stats.input_hw == (96, 160)
    native = engine.run(frame, max_model_pixels=0)  # a node's hot value for this frame
    assert native.stats.model_hw == (96, 160)
    fixed = Engine.load(
        "dhz", EngineConfig(device="cpu", timesteps=1, input_hw=(64, 64), max_model_pixels=64)
    )
    assert fixed.run(frame).stats.model_hw == (64, 64)  # an explicit size wins


def test_a_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="max_model_pixels"):
        EngineConfig(max_model_pixels=-1)


def test_enhance_caps_a_big_photo_and_writes_it_at_full_size(tmp_path: Path) -> None:
    photo = tmp_path / "big.png"
    cv2.imwrite(str(photo), np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    proc = cli(
        "enhance", photo, "--out", tmp_path / "out", "--max-pixels", 120 * 160, "--timesteps", "1",
        "--json", tmp_path / "s.json", cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((tmp_path / "s.json").read_text())["images"][0]["stats"]
    assert tuple(stats["model_hw"]) == (120, 160) and tuple(stats["input_hw"]) == (240, 320)
    assert cv2.imread(str(tmp_path / "out" / "big.png")).shape == (240, 320, 3)


def test_enhance_refuses_a_negative_max_pixels(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((16, 16, 3), np.uint8))
    refused(cli("enhance", photo, "--out", tmp_path / "o", "--max-pixels", "-5", cwd=REPO), "--max-pixels")
    assert not (tmp_path / "o").exists()
