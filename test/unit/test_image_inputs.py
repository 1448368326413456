"""Image inputs of ``enhance``, ``segment`` and dehaze ``evaluate`` are checked before any work.

Every input is decoded (truncated JPEG and PNG refused, as the nodes refuse them) before the model
runs or any output is written; ``--out`` never holds the inputs, and earlier results in it are
replaced only with ``--overwrite``. ANN segmentation weights do not claim spiking timesteps. Each
case runs the real CLI in a subprocess on tiny images, at the smallest size and T = 1.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli as _cli
from cli_run import refused
from cli_run import snapshot as _snapshot

from snn_perception.offline.pairs import PairsError, read_rgb


def _refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    refused(proc, *words, one_line=True)


SMALL = ["--size", "16x16", "--timesteps", "1", "--threads", "1"]
VERBS = ["enhance", "segment"]


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc


def _pixels(hw: tuple[int, int] = (24, 32), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(100, 30, (*hw, 3)), 0, 255).astype(np.uint8)


def _image(path: Path, hw: tuple[int, int] = (24, 32), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), _pixels(hw, seed))
    return path


def _encoded(ext: str, hw: tuple[int, int] = (24, 32)) -> bytes:
    ok, buf = cv2.imencode(ext, _pixels(hw))
    assert ok
    return buf.tobytes()


def _outputs(verb: str, stem: str) -> list[str]:
    return [f"{stem}.png"] if verb == "enhance" else [f"{stem}_{k}.png" for k in ("mask", "color", "overlay")]


# --- 1. every input is decoded before the model runs or anything is written


@pytest.mark.parametrize("verb", VERBS)
def test_a_damaged_image_in_a_folder_is_refused_before_any_output(tmp_path: Path, verb: str) -> None:
    _image(tmp_path / "imgs" / "1.png")
    (tmp_path / "imgs" / "2.png").write_bytes(b"garbage, not an image")
    _image(tmp_path / "imgs" / "3.png", seed=3)
    before = _snapshot(tmp_path)
    _refused(_cli(verb, "imgs", "--out", "o", *SMALL, cwd=tmp_path), "imgs/2.png", "not a readable image")
    assert _snapshot(tmp_path) == before and not (tmp_path / "o").exists()


@pytest.mark.parametrize("verb", VERBS)
def test_several_damaged_images_are_named_with_their_count(tmp_path: Path, verb: str) -> None:
    _image(tmp_path / "imgs" / "1.png")
    for name in ("2.png", "3.jpg", "4.png"):
        (tmp_path / "imgs" / name).write_bytes(b"junk")
    proc = _cli(verb, "imgs", "--out", "o", *SMALL, cwd=tmp_path)
    _refused(proc, "3 of 4 inputs", "imgs/2.png", "imgs/3.jpg", "1 more")
    assert not (tmp_path / "o").exists()


# --- 2. nothing is created for an undecodable single input


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize(
    ("name", "data", "words"),
    [("garbage.jpg", b"xx", ["not a readable image"]), ("empty.png", b"", ["empty file"])],
    ids=["garbage", "empty"],
)
def test_an_undecodable_input_leaves_no_out_folder(tmp_path: Path, verb, name, data, words) -> None:
    (tmp_path / name).write_bytes(data)
    _refused(_cli(verb, name, "--out", "o", *SMALL, cwd=tmp_path), name, *words)
    assert not (tmp_path / "o").exists()


# --- 3. truncated JPEG and PNG files are refused everywhere, naming the file


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_a_truncated_file_is_refused_not_read_half_grey(tmp_path: Path, verb: str, ext: str) -> None:
    data = _encoded(ext, (64, 64))
    (tmp_path / f"trunc{ext}").write_bytes(data[: len(data) * 2 // 3])
    _refused(_cli(verb, f"trunc{ext}", "--out", "o", *SMALL, cwd=tmp_path), f"trunc{ext}", "truncated")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_training_and_evaluation_reader_refuses_a_truncated_file(tmp_path: Path, ext: str) -> None:
    data = _encoded(ext, (64, 64))
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(PairsError, match=rf"cut\{ext}: corrupt .*truncated"):
        read_rgb(path)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tif", ".webp", ".ppm"])
def test_every_accepted_format_still_reads_as_opencv_reads_it(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"img{ext}"
    assert cv2.imwrite(str(path), _pixels())
    expected = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(read_rgb(path), expected)


@pytest.mark.parametrize(
    ("ext", "tail"),
    [(".jpg", bytes(64)), (".jpg", b"ftypmp42 an appended motion-photo video"), (".png", b"trailer")],
    ids=["jpeg-zero-padding", "jpeg-appended-data", "png-trailer"],
)
def test_bytes_after_a_complete_image_do_no_harm(tmp_path: Path, ext: str, tail: bytes) -> None:
    data = _encoded(ext)
    path = tmp_path / f"img{ext}"
    path.write_bytes(data + tail)
    expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(read_rgb(path), expected)


def test_every_image_of_the_shared_data_still_reads(shared: Path) -> None:
    paths = [
        p
        for sub in ("lsui_pairs", "euvp_test23", "suim_trainval/images", "suim_trainval/masks")
        for p in sorted((shared / "data" / sub).rglob("*"))
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    assert len(paths) > 1000
    for path in paths:
        expected = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.array_equal(read_rgb(path), expected), path


# --- 4. --out is never the folder of the inputs


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("given", ["folder", "file"])
def test_out_in_the_input_folder_is_refused(tmp_path: Path, verb: str, given: str) -> None:
    _image(tmp_path / "imgs" / "a.jpg")
    before = _snapshot(tmp_path)
    source = "imgs" if given == "folder" else "imgs/a.jpg"
    proc = _cli(verb, source, "--out", "imgs/.", *SMALL, cwd=tmp_path)
    _refused(proc, "--out imgs", "input", "another folder")
    assert _snapshot(tmp_path) == before


def test_a_sub_folder_of_the_inputs_is_a_fine_out(tmp_path: Path) -> None:
    _image(tmp_path / "imgs" / "a.jpg")
    _ok(_cli("segment", "imgs", "--out", "imgs/masks", *SMALL, cwd=tmp_path))
    written = sorted(p.name for p in (tmp_path / "imgs" / "masks").iterdir())
    assert written == sorted([*_outputs("segment", "a"), "legend.png"])  # legend.png: once per run


# --- 5. earlier results are replaced only with --overwrite


@pytest.mark.parametrize("verb", VERBS)
def test_earlier_results_are_refused_unless_overwrite(tmp_path: Path, verb: str) -> None:
    for name in ("a", "b"):
        _image(tmp_path / "imgs" / f"{name}.png", seed=ord(name))
    _ok(_cli(verb, "imgs", "--out", "o", *SMALL, cwd=tmp_path))
    written = sorted(p.name for p in (tmp_path / "o").iterdir())
    legend = ["legend.png"] if verb == "segment" else []  # the class legend, once per run
    assert written == sorted(_outputs(verb, "a") + _outputs(verb, "b") + legend)

    (tmp_path / "o" / written[0]).write_bytes(b"an earlier result")
    before = _snapshot(tmp_path)
    proc = _cli(verb, "imgs", "--out", "o", *SMALL, cwd=tmp_path)
    count = f"{len(written)} of the {len(written)}"
    _refused(proc, "--out o", count, f"o/{_outputs(verb, 'a')[0]}", "--overwrite")
    assert _snapshot(tmp_path) == before

    _ok(_cli(verb, "imgs", "--out", "o", *SMALL, "--overwrite", cwd=tmp_path))
    assert (tmp_path / "o" / written[0]).read_bytes() != b"an earlier result"


def test_a_new_output_beside_unrelated_files_needs_no_overwrite(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    _image(tmp_path / "o" / "notes.png")
    _ok(_cli("enhance", "a.png", "--out", "o", *SMALL, cwd=tmp_path))
    assert (tmp_path / "o" / "a.png").is_file()


# --- 6. dehaze evaluation checks every image before any model runs


def _pairs(root: Path, hw: tuple[int, int] = (32, 32)) -> Path:
    for name in ("a", "b"):
        _image(root / "raw" / f"{name}.png", hw, 1)
        _image(root / "reference" / f"{name}.png", hw, 2)
    return root


def test_evaluate_refuses_a_corrupt_reference_naming_it(tmp_path: Path) -> None:
    _pairs(tmp_path / "dh")
    (tmp_path / "dh" / "reference" / "b.png").write_bytes(b"junk")
    proc = _cli(
        "evaluate",
        "--task",
        "dehaze",
        "--data",
        "dh",
        "--size",
        "16",
        "--weights",
        "dhz",
        "--timesteps",
        "1",
        "--no-uiqm",
        cwd=tmp_path,
    )
    _refused(proc, "snn-perception evaluate: error:", "reference/b.png", "not a readable image")
    assert "evaluate:" not in proc.stderr.replace("snn-perception evaluate:", "")  # no progress bar started


@pytest.mark.parametrize(
    ("damage", "native", "words"),
    [("corrupt", False, ["reference/b.png", "not a readable image"]), ("tiny", True, ["raw/a.png", "11x11"])],
)
def test_evaluate_refuses_before_scoring_any_image(tmp_path: Path, monkeypatch, damage, native, words):
    from snn_perception.offline import evaluate_dehaze as ev

    _pairs(tmp_path, (1, 1) if damage == "tiny" else (32, 32))
    if damage == "corrupt":
        (tmp_path / "reference" / "b.png").write_bytes(b"junk")

    def no_scoring(*args, **kwargs):
        raise AssertionError("an image was scored before the bad input was found")

    monkeypatch.setattr(ev, "_score", no_scoring)
    cfg = ev.DehazeEvalConfig(data=[str(tmp_path)], methods=["raw"], size=None if native else (16, 16))
    with pytest.raises(PairsError) as err:
        ev.evaluate_dehaze(cfg, progress=False)
    for word in words:
        assert word in str(err.value)


def test_evaluate_native_refuses_images_smaller_than_the_ssim_window(tmp_path: Path) -> None:
    _pairs(tmp_path / "tiny", (1, 1))
    proc = _cli(
        "evaluate",
        "--task",
        "dehaze",
        "--data",
        "tiny",
        "--native",
        "--weights",
        "dhz",
        "--timesteps",
        "1",
        "--no-uiqm",
        cwd=tmp_path,
    )
    _refused(proc, "--native", "tiny/raw/a.png", "1x1", "11x11", "--size")


# --- 7. ANN segmentation weights claim no spiking timesteps


def test_segment_with_ann_weights_reports_no_timesteps(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    proc = _ok(
        _cli(
            "segment",
            "a.png",
            "--out",
            "o",
            "--weights",
            "unet_suim_ann",
            "--size",
            "16x16",
            "--json",
            "o/stats.json",
            cwd=tmp_path,
        )
    )
    assert "T=– (ANN)" in proc.stdout and "T=4" not in proc.stdout
    (record,) = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert record["stats"]["timesteps"] is None


def test_segment_refuses_timesteps_for_ann_weights(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    argv = ["segment", "a.png", "--out", "o", "--weights", "unet_suim_ann", "--timesteps", "2"]
    proc = _cli(*argv, cwd=tmp_path)
    _refused(proc, "--timesteps 2", "unet_suim_ann", "ANN", "no timesteps")
    assert not (tmp_path / "o").exists()


def test_segment_with_spiking_weights_still_reports_its_timesteps(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    proc = _ok(_cli("segment", "a.png", "--out", "o", *SMALL, cwd=tmp_path))
    assert "(T=1)" in proc.stdout
