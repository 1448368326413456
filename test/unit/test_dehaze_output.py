"""What a person sees from the dehazer: mono in, mono out, and a strength that blends with the input.

The network learned colour water; on a mono camera or a greyscale photo it adds a tint (pink), and
on neutral scenes it can overshoot. ``finish_dehaze`` (node and ``enhance`` alike) keeps mono input
mono and blends the output with the input by ``strength``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli, refused

from snn_perception.runtime.image_codec import output_encoding
from snn_perception.runtime.preprocess import finish_dehaze, float_to_uint8, is_grey

RNG = np.random.default_rng(0)
SRC = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)
OUT = RNG.uniform(-0.1, 1.1, (12, 16, 3)).astype(np.float32)


def test_strength_blends_from_the_input_to_the_full_output() -> None:
    assert np.array_equal(finish_dehaze(OUT, SRC, 1.0), float_to_uint8(OUT))
    assert np.array_equal(finish_dehaze(OUT, SRC, 0.0), SRC)
    half = finish_dehaze(OUT, SRC, 0.5).astype(np.float64)
    expected = (SRC / 255.0 + OUT) / 2 * 255
    assert np.abs(half - np.clip(expected, 0, 255)).max() <= 1.0
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0"):
            finish_dehaze(OUT, SRC, bad)


def test_mono_input_gives_a_mono_output_of_the_outputs_luminance() -> None:
    grey = finish_dehaze(OUT, SRC, 1.0, mono=True)
    assert grey.shape == (12, 16) and grey.dtype == np.uint8
    assert np.array_equal(grey, cv2.cvtColor(float_to_uint8(OUT), cv2.COLOR_RGB2GRAY))
    assert is_grey(np.repeat(SRC[..., :1], 3, axis=2)) and not is_grey(SRC)
    for enc in ("mono8", "mono16", "8UC1", "16UC1"):
        assert output_encoding(enc) == "mono8"


def test_enhance_writes_a_grey_photo_grey_and_refuses_a_bad_strength(tmp_path: Path) -> None:
    grey = cv2.cvtColor(cv2.imread(str(_photo(tmp_path / "in" / "colour.png"))), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "in" / "grey.png"), grey)
    small = ["--size", "32x32", "--timesteps", "1", "--threads", "1"]
    proc = cli("enhance", "in", "--out", "out", *small, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out_grey = cv2.imread(str(tmp_path / "out" / "grey.png"), cv2.IMREAD_UNCHANGED)
    out_colour = cv2.imread(str(tmp_path / "out" / "colour.png"), cv2.IMREAD_UNCHANGED)
    assert out_grey.ndim == 2 and out_colour.ndim == 3
    proc = cli("enhance", "in", "--out", "zero", "--strength", "0", *small, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    same = cv2.imread(str(tmp_path / "zero" / "colour.png"))
    assert np.array_equal(same, cv2.imread(str(tmp_path / "in" / "colour.png")))
    refused(cli("enhance", "in", "--out", "o2", "--strength", "2", *small, cwd=tmp_path), "--strength 2.0")
    assert not (tmp_path / "o2").exists()


def _photo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:40, 0:48]
    img = np.stack([xx * 5, yy * 6, (xx + yy) * 3], axis=2).clip(0, 255).astype(np.uint8)
    cv2.imwrite(str(path), img)
    return path
