"""The segmentation class legend: its swatches are the mask colours, its shares sum to 1.

Unit tests of :mod:`snn_perception.runtime.legend`, and ``segment`` run for real (subprocess,
shipped SUIM weights, tiny images) to check that ``legend.png`` and the printed table explain
exactly the ``NAME_color.png`` files it wrote.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli, refused

from snn_perception.runtime.legend import (
    class_palette,
    class_shares,
    colorize,
    legend_entries,
    legend_image,
    legend_table,
    swatch_boxes,
)

SUIM_LIKE = [(0, 0, 0), (0, 0, 255), (0, 255, 0)]


def test_palette_keeps_the_weights_colours_and_fixes_the_rest() -> None:
    lut = class_palette(SUIM_LIKE, 5)
    assert [tuple(c) for c in lut[:3]] == SUIM_LIKE
    assert np.array_equal(lut, class_palette(SUIM_LIKE, 5))  # the same fallback colours every run
    ids = np.array([[0, 1], [2, 4]], np.uint8)
    assert np.array_equal(colorize(ids, SUIM_LIKE), lut[ids])


def test_entries_name_unnamed_classes_and_use_the_mask_colours() -> None:
    names, colors = legend_entries(("water", "diver"), SUIM_LIKE[:2], 4)
    assert names == ["water", "diver", "class 2", "class 3"]
    ids = np.arange(4, dtype=np.uint8).reshape(2, 2)
    coloured = colorize(ids, SUIM_LIKE[:2])
    assert [tuple(int(v) for v in coloured.reshape(-1, 3)[i]) for i in range(4)] == colors


def test_shares_sum_to_one_and_are_zero_without_pixels() -> None:
    shares = class_shares([3, 0, 1])
    assert shares == [0.75, 0.0, 0.25] and sum(shares) == pytest.approx(1.0)
    assert class_shares([0, 0]) == [0.0, 0.0]


def test_legend_image_swatches_are_the_class_colours() -> None:
    names, colors = ["water", "a much longer class name", "rock"], [(0, 0, 0), (255, 255, 255), (9, 200, 7)]
    img = legend_image(names, colors, [0.5, 0.25, 0.25])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    for (top, left, bottom, right), rgb in zip(swatch_boxes(3), colors, strict=True):
        patch = img[top:bottom, left:right].reshape(-1, 3)
        assert (patch == rgb).all()
    assert legend_image(names, colors).shape[0] == img.shape[0]  # shares are optional


def test_legend_table_lists_name_colour_and_share() -> None:
    text = legend_table(["water", "diver"], [(0, 0, 0), (0, 0, 255)], [0.9, 0.1])
    lines = text.splitlines()
    assert lines[0].split() == ["class", "colour", "(RGB)", "share"]
    assert lines[2].split() == ["water", "(", "0,", "0,", "0)", "90.0", "%"]
    assert lines[3].endswith("10.0 %") and "(  0,   0, 255)" in lines[3]


# --- segment writes legend.png and prints the table


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1) + rng.integers(0, 40, (48, 64, 3))
    assert cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("legend")
    for i in range(2):
        _image(root / "imgs" / f"{i}.png", i)
    proc = cli(
        "segment", "imgs", "--out", "o", "--size", "32", "--timesteps", "1", "--threads", "1", cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    return root, proc


def test_segment_legend_swatches_equal_the_mask_colours(segmented) -> None:
    root, _ = segmented
    legend = _rgb(root / "o" / "legend.png")
    boxes = swatch_boxes(8)  # SUIM: 8 classes
    seen = set()
    for stem in ("0", "1"):
        ids = cv2.imread(str(root / "o" / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        color = _rgb(root / "o" / f"{stem}_color.png")
        for cls in np.unique(ids):
            top, left, bottom, right = boxes[int(cls)]
            swatch = legend[top:bottom, left:right].reshape(-1, 3)
            assert (swatch == swatch[0]).all()
            assert (color[ids == cls] == swatch[0]).all(), f"class {cls}"
            seen.add(int(cls))
    assert seen  # at least one class was checked


def test_segment_prints_the_legend_table_with_shares_summing_to_one(segmented) -> None:
    root, proc = segmented
    rows = re.findall(r"^(\S+)\s+\(\s*(\d+),\s*(\d+),\s*(\d+)\)\s+([\d.]+) %$", proc.stdout, re.M)
    assert len(rows) == 8, proc.stdout
    shares = np.array([float(r[4]) for r in rows]) / 100
    assert shares.sum() == pytest.approx(1.0, abs=8 * 0.0005)
    counts = sum(
        np.bincount(cv2.imread(str(root / "o" / f"{s}_mask.png"), cv2.IMREAD_UNCHANGED).ravel(), minlength=8)
        for s in ("0", "1")
    )
    assert shares == pytest.approx(counts / counts.sum(), abs=0.0006)  # over all segmented images
    assert rows[0][0] == "background_waterbody" and "legend.png" in proc.stdout


def test_an_earlier_legend_is_replaced_only_with_overwrite(segmented) -> None:
    root, _ = segmented
    _image(root / "other" / "x.png", 5)
    before = (root / "o" / "legend.png").read_bytes()
    proc = cli("segment", "other", "--out", "o", "--size", "32", "--timesteps", "1", cwd=root)
    refused(proc, "legend.png", "--overwrite")
    assert (root / "o" / "legend.png").read_bytes() == before and not (root / "o" / "x_mask.png").exists()
