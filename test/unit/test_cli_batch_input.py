"""Batch input of ``enhance`` and ``segment``: nothing is left out without saying so.

``--skip-unreadable`` leaves damaged images out and lists them with the reason; other files and
sub-folders in an input folder are listed too (videos are inputs: test_cli_video.py); ``--out
result.png`` is refused (``--out`` is a folder); a dropped alpha channel is noted in one line. The
real CLI runs in a subprocess on tiny images (smallest size, T = 1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli, refused, snapshot

from snn_perception.commands.image_batch import check_images, collect_images
from snn_perception.runtime.image_codec import has_alpha

SMALL = ["--size", "16x16", "--timesteps", "1", "--threads", "1"]
VERBS = ["enhance", "segment"]


def _image(path: Path, seed: int = 0, channels: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (24, 32, channels), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


def _truncated(path: Path) -> Path:
    data = _image(path, 7).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc


def _outputs(verb: str, stem: str) -> list[str]:
    return [f"{stem}.png"] if verb == "enhance" else [f"{stem}_{k}.png" for k in ("mask", "color", "overlay")]


# --- --skip-unreadable


@pytest.mark.parametrize("verb", VERBS)
def test_skip_unreadable_leaves_damaged_files_out_and_lists_them(tmp_path: Path, verb: str) -> None:
    _image(tmp_path / "imgs" / "a.png", 1)
    _truncated(tmp_path / "imgs" / "b.png")
    (tmp_path / "imgs" / "c.jpg").write_bytes(b"not a jpeg at all")
    _image(tmp_path / "imgs" / "d.png", 2)
    proc = _ok(cli(verb, "imgs", "--out", "o", "--skip-unreadable", *SMALL, cwd=tmp_path))
    written = sorted(p.name for p in (tmp_path / "o").iterdir() if p.name != "legend.png")
    assert written == sorted(_outputs(verb, "a") + _outputs(verb, "d"))
    summary = proc.stdout[proc.stdout.index("left out 2 input(s):") :]
    assert "imgs/b.png: corrupt PNG: truncated" in summary
    assert "imgs/c.jpg: not a readable image" in summary


@pytest.mark.parametrize("verb", VERBS)
def test_without_the_flag_a_damaged_file_refuses_and_names_the_flag(tmp_path: Path, verb: str) -> None:
    _image(tmp_path / "imgs" / "a.png")
    _truncated(tmp_path / "imgs" / "b.png")
    before = snapshot(tmp_path)
    refused(
        cli(verb, "imgs", "--out", "o", *SMALL, cwd=tmp_path),
        "imgs/b.png",
        "--skip-unreadable",
        one_line=True,
    )
    assert snapshot(tmp_path) == before and not (tmp_path / "o").exists()


def test_skip_unreadable_with_nothing_readable_refuses(tmp_path: Path) -> None:
    _truncated(tmp_path / "imgs" / "a.png")
    (tmp_path / "imgs" / "b.png").write_bytes(b"")
    refused(
        cli("enhance", "imgs", "--out", "o", "--skip-unreadable", *SMALL, cwd=tmp_path),
        "none of the 2 inputs can be read",
        one_line=True,
    )
    assert not (tmp_path / "o").exists()


# --- what a folder holds besides images is listed, not skipped silently


def test_other_files_and_sub_folders_in_a_folder_are_listed(tmp_path: Path) -> None:
    _image(tmp_path / "imgs" / "a.png")
    (tmp_path / "imgs" / "notes.txt").write_text("dive log\n")
    _image(tmp_path / "imgs" / "more" / "b.png")
    (tmp_path / "imgs" / ".hidden").write_text("")
    proc = _ok(cli("enhance", "imgs", "--out", "o", *SMALL, cwd=tmp_path))
    listed = proc.stdout[proc.stdout.index("left out 2 input(s):") :].splitlines()[1:]
    assert [line.split(":")[0].strip() for line in listed] == ["imgs/more", "imgs/notes.txt"]
    assert "not searched recursively" in listed[0] and "not an image or video file" in listed[1]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.png"]


def test_collect_and_check_report_what_they_leave_out(tmp_path: Path) -> None:
    good = _image(tmp_path / "imgs" / "a.png")
    bad = _truncated(tmp_path / "imgs" / "b.png")
    (tmp_path / "imgs" / "sub").mkdir()
    batch = collect_images([str(tmp_path / "imgs")])
    assert batch.images == [good, bad] and [p.name for p, _ in batch.left_out] == ["sub"]
    checked = check_images(batch, skip_unreadable=True)
    assert checked.images == [good]
    assert [p.name for p, _ in checked.left_out] == ["sub", "b.png"] and "truncated" in checked.left_out[1][1]


# --- a folder with nothing to read


@pytest.mark.parametrize("verb", VERBS)
def test_a_folder_without_images_or_videos_is_refused_with_what_it_holds(tmp_path: Path, verb: str) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "dive.csv").write_text("t,depth\n")
    refused(
        cli(verb, "logs", "--out", "o", *SMALL, cwd=tmp_path),
        "folder logs holds no images or videos (images .bmp",
        "e.g. dive.csv",
        one_line=True,
    )
    assert not (tmp_path / "o").exists()


# --- --out is a folder


@pytest.mark.parametrize(
    ("verb", "out"), [("enhance", "result.png"), ("segment", "frames.jpg"), ("enhance", "stats.json")]
)
def test_an_out_that_looks_like_a_file_is_refused(tmp_path: Path, verb: str, out: str) -> None:
    _image(tmp_path / "a.png")
    before = snapshot(tmp_path)
    refused(
        cli(verb, "a.png", "--out", out, *SMALL, cwd=tmp_path),
        f"--out {out}",
        "--out is a folder",
        one_line=True,
    )
    assert snapshot(tmp_path) == before and not (tmp_path / out).exists()


def test_an_existing_folder_with_a_file_like_name_is_still_a_folder(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    (tmp_path / "res.png").mkdir()
    _ok(cli("enhance", "a.png", "--out", "res.png", *SMALL, cwd=tmp_path))
    assert (tmp_path / "res.png" / "a.png").is_file()


# --- alpha channels


def test_a_dropped_alpha_channel_is_noted_in_one_line(tmp_path: Path) -> None:
    _image(tmp_path / "imgs" / "rgba.png", 3, channels=4)
    _image(tmp_path / "imgs" / "rgb.png", 4)
    proc = _ok(cli("segment", "imgs", "--out", "o", *SMALL, cwd=tmp_path))
    notes = [line for line in proc.stderr.splitlines() if "alpha" in line]
    assert notes == [
        "snn-perception segment: note: alpha channel (transparency) dropped in 1 input(s): imgs/rgba.png; "
        "the models see the RGB colours only"
    ]
    quiet = _ok(cli("enhance", "imgs/rgb.png", "--out", "o2", *SMALL, cwd=tmp_path))
    assert "alpha" not in quiet.stderr


def test_alpha_is_detected_in_png_webp_and_never_in_jpeg(tmp_path: Path) -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    rgb = rgba[..., :3]
    cases = [
        (".png", rgba, True),
        (".png", rgb, False),
        (".jpg", rgb, False),
        (".webp", rgba, True),
        (".webp", rgb, False),
    ]
    for ext, img, expected in cases:
        params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []
        ok, buf = cv2.imencode(ext, img, params)
        assert ok and has_alpha(buf.tobytes()) is expected, (ext, img.shape)
    grey = np.zeros((4, 4), np.uint8)
    ok, buf = cv2.imencode(".png", grey)
    raw = bytearray(buf.tobytes())
    # a tRNS chunk (transparent colour key) before the image data is transparency too
    idat = raw.index(b"IDAT") - 4
    trns = b"\x00\x00\x00\x02tRNS\x00\x00" + b"\x00\x00\x00\x00"  # CRC is not checked by the header walk
    assert has_alpha(bytes(raw[:idat] + trns + raw[idat:])) and not has_alpha(bytes(raw))


# --- output into a closed pipe (`… | head`)


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """`enhance … | true`: the pipe is closed before the first line is written (torch takes longer
    to import than `true` to exit); the command ends as Unix tools do, without an error message."""
    _image(tmp_path / "a.png")
    cmd = f"{sys.executable} -m snn_perception.cli enhance a.png --out o {' '.join(SMALL)} 2>err.txt | true"
    proc = subprocess.run(
        ["bash", "-c", cmd + "; echo ${PIPESTATUS[0]}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.stdout.strip() == "141", (proc.stdout, (tmp_path / "err.txt").read_text())
    assert (tmp_path / "err.txt").read_text() == ""
    assert (tmp_path / "o" / "a.png").is_file(), "the work was done before the output was written"
