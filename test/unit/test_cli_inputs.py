"""Bad input to the CLI verbs is refused before any work: one line, exit code 2, no input touched.

Every case runs the real CLI in a subprocess (the way a user meets it) on tiny images made here, and
checks the exit code, the key words of the message, that no traceback leaks and that every input
file still holds the same bytes. Only the weights shipped in the package are used.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli as _cli
from cli_run import refused as _refused
from cli_run import snapshot as _snapshot

REPO = Path(__file__).resolve().parents[2]


def _image(path: Path, hw: tuple[int, int] = (24, 32), value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    img = np.clip(rng.normal(value, 30, (*hw, 3)), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """victim.jpg, a dehaze folder (dh/raw + dh/reference), a seg folder (seg/images + seg/masks)."""
    _image(tmp_path / "victim.jpg")
    (tmp_path / "seg" / "masks").mkdir(parents=True)
    for name in ("a", "b"):
        _image(tmp_path / "dh" / "raw" / f"{name}.png", (32, 32), 80)
        _image(tmp_path / "dh" / "reference" / f"{name}.png", (32, 32), 120)
        _image(tmp_path / "seg" / "images" / f"{name}.png", (32, 32), 100)
        mask = np.zeros((32, 32), np.uint8)
        mask[8:24, 8:24] = 1
        assert cv2.imwrite(str(tmp_path / "seg" / "masks" / f"{name}.png"), mask)
    return tmp_path


# --- 1. --json never replaces an input, and is checked before any work


@pytest.mark.parametrize(
    "argv",
    [
        ["enhance", "victim.jpg", "--out", "o", "--size", "64", "--json", "victim.jpg"],
        ["segment", "victim.jpg", "--out", "o", "--json", "victim.jpg"],
        ["bench", "--image", "victim.jpg", "--json", "victim.jpg", "--runs", "1", "--warmup", "0"],
        ["evaluate", "--task", "dehaze", "--data", "dh", "--json", "dh/raw/a.png", "--weights"],
        ["evaluate", "--task", "segment", "--data", "seg", "--json", "seg/masks/a.png"],
    ],
    ids=["enhance", "segment", "bench", "evaluate-dehaze", "evaluate-segment"],
)
def test_json_naming_an_input_is_refused(work: Path, argv: list[str]) -> None:
    before = _snapshot(work)
    _refused(_cli(*argv, cwd=work), "--json", ".json")
    assert _snapshot(work) == before  # nothing written, nothing replaced
    assert not (work / "o").exists()


@pytest.mark.parametrize(
    ("json_arg", "words"),
    [("nodir/stats.json", ("does not exist",)), ("dir.json", ("is a folder",))],
)
def test_enhance_checks_json_before_processing_any_image(work: Path, json_arg: str, words) -> None:
    (work / "dir.json").mkdir()
    before = _snapshot(work)
    _refused(_cli("enhance", "victim.jpg", "--out", "o", "--json", json_arg, cwd=work), "--json", *words)
    assert _snapshot(work) == before and not (work / "o").exists()


def test_json_inside_the_out_folder_still_works(work: Path) -> None:
    proc = _cli("enhance", "victim.jpg", "--out", "o", "--json", "o/stats.json", "--timesteps", "1", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert (work / "o" / "stats.json").is_file() and (work / "o" / "victim.png").is_file()


# --- 2. --out equal to an input folder never overwrites an input


def test_enhance_into_its_input_folder_is_refused(work: Path) -> None:
    _image(work / "same" / "a.png")
    before = _snapshot(work)
    _refused(_cli("enhance", "same", "--out", "same", cwd=work), "same/a.png", "also an input")
    assert _snapshot(work) == before


def test_segment_into_its_input_folder_is_refused_naming_the_clash(work: Path) -> None:
    _image(work / "segsame" / "a.png")
    assert cv2.imwrite(str(work / "segsame" / "a_mask.png"), np.ones((24, 32), np.uint8))
    before = _snapshot(work)
    _refused(_cli("segment", "segsame", "--out", "segsame", cwd=work), "segsame/a_mask.png", "also an input")
    assert _snapshot(work) == before


def test_segment_duplicate_names_name_the_output_files(work: Path) -> None:
    _image(work / "other" / "victim.png")
    before = _snapshot(work)
    proc = _cli("segment", "victim.jpg", "other", "--out", "o", cwd=work)
    _refused(proc, "victim_mask.png", "victim_color.png", "victim_overlay.png", "same output")
    assert _snapshot(work) == before and not (work / "o").exists()


# --- 3. segment --out naming a file


def test_segment_out_that_is_a_file_is_refused(work: Path) -> None:
    (work / "existing_file").write_bytes(b"keep me")
    before = _snapshot(work)
    proc = _cli("segment", "victim.jpg", "--out", "existing_file", cwd=work)
    _refused(proc, "existing_file", "not a folder")
    assert _snapshot(work) == before


# --- 4. evaluate


DEHAZE = ["--task", "dehaze", "--data", "dh"]
SEGMENT = ["--task", "segment", "--data", "seg"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([*DEHAZE, "--weights", "spiking_unet"], ["segment model", "dehaze weights"]),
        ([*SEGMENT, "--weights", "dhz"], ["dehaze model", "segmentation weights"]),
        ([*DEHAZE, "--split", "val", "--val-fraction", "0"], ["--val-fraction"]),
        ([*DEHAZE, "--split", "val", "--val-fraction", "1.5"], ["--val-fraction", "between 0 and 1"]),
        ([*SEGMENT, "--val-fraction", "1.5"], ["--val-fraction"]),
        ([*DEHAZE, "--limit", "0"], ["--limit", "≥ 1"]),
        ([*DEHAZE, "--limit", "-1"], ["--limit", "≥ 1"]),
        ([*SEGMENT, "--limit", "0"], ["--limit", "≥ 1"]),
        ([*SEGMENT, "--batch", "0"], ["--batch", "≥ 1"]),
        ([*SEGMENT, "--batch", "-2"], ["--batch", "≥ 1"]),
        ([*DEHAZE, "--timesteps", "1,,2"], ["--timesteps", "empty item"]),
        ([*SEGMENT, "--method", "raw"], ["--method", "dehaze only"]),
        ([*SEGMENT, "--method", "classical"], ["--method", "dehaze only"]),
        (["--task", "dehaze", "--data", "missing"], ["--data missing", "does not exist", "raw/"]),
        (["--task", "segment", "--data", "missing"], ["--data missing", "does not exist", "masks/"]),
        (["--task", "dehaze", "--data", "victim.jpg"], ["not a folder"]),
    ],
)
def test_evaluate_refuses_bad_input_with_its_prefix(work: Path, argv: list[str], words: list[str]) -> None:
    before = _snapshot(work)
    _refused(_cli("evaluate", *argv, cwd=work), "snn-perception evaluate: error:", *words)
    assert _snapshot(work) == before


def test_evaluate_native_names_the_pair_of_different_sizes(work: Path) -> None:
    _image(work / "dh" / "raw" / "c.png", (32, 32))
    _image(work / "dh" / "reference" / "c.png", (40, 32))
    before = _snapshot(work)
    proc = _cli("evaluate", *DEHAZE, "--native", "--weights", "--no-uiqm", cwd=work)
    _refused(proc, "snn-perception evaluate: error:", "raw/c.png", "reference/c.png", "--size")
    assert _snapshot(work) == before


def test_evaluate_accepts_a_single_number_as_square_size(work: Path) -> None:
    proc = _cli(
        "evaluate",
        "--task",
        "dehaze",
        "--data",
        "dh",
        "--size",
        "64",
        "--method",
        "raw",
        "--weights",
        "--no-uiqm",
        "--json",
        "r.json",
        "--threads",
        "1",
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| raw |" in proc.stdout and (work / "r.json").is_file()


# --- 5. bench refuses weights of another model than --model


@pytest.mark.parametrize(
    ("model", "weights", "words"),
    [
        ("dhz", "spiking_unet", ["--model dhz", "spiking_unet", "segment model"]),
        ("unet_ann", "dhz", ["--model unet_ann", "dhz", "dehaze model"]),
        ("spiking_unet", "unet_suim_ann", ["--model spiking_unet", "unet_suim_ann", "--model unet_ann"]),
    ],
)
def test_bench_refuses_weights_of_another_model(work: Path, model: str, weights: str, words) -> None:
    proc = _cli(
        "bench",
        "--model",
        model,
        "--weights",
        weights,
        "--image",
        "victim.jpg",
        "--size",
        "32",
        "--runs",
        "1",
        "--warmup",
        "0",
        cwd=work,
    )
    _refused(proc, *words)
    assert "median ms" not in proc.stdout  # nothing was measured


def test_bench_refuses_sizes_under_8_and_measures_each_setting_once(work: Path) -> None:
    once = ["--image", "victim.jpg", "--runs", "1", "--warmup", "0"]
    proc = _cli("bench", "--size", "32", "7", *once, cwd=work)
    _refused(proc, "--size 7x7", "at least 8 pixels")
    proc = _cli("bench", "--size", "16", "16x16", "--timesteps", "1", "1", *once, "--no-counting", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert sum(line.lstrip().startswith("16x16") for line in proc.stdout.splitlines()) == 1, proc.stdout


# --- 6. make-bag topics and rate


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--topic", "bad topic"], ["--topic", "not a valid ROS topic name"]),
        (["--topic", "/a//b"], ["--topic", "not a valid ROS topic name"]),
        (["--topic", "/cam/"], ["--topic", "not a valid ROS topic name"]),
        (["--reference-topic", "9ref"], ["--reference-topic", "not a valid ROS topic name"]),
        (["--topic", "/cam", "--reference-topic", "/cam"], ["--reference-topic", "/cam", "two topics"]),
        (["--rate", "inf"], ["--rate", "finite"]),
        (["--rate", "nan"], ["--rate", "finite"]),
        (["--rate", "0"], ["--rate", "> 0"]),
    ],
)
def test_make_bag_refuses_bad_topics_and_rates(work: Path, extra: list[str], words: list[str]) -> None:
    before = _snapshot(work)
    proc = _cli("make-bag", "dh", "--out", "bag", *extra, cwd=work)
    _refused(proc, "snn-perception make-bag: error:", *words)
    assert _snapshot(work) == before and not (work / "bag").exists()


# --- 7. a folder given as --weights


@pytest.mark.parametrize(
    "argv",
    [
        ["enhance", "victim.jpg", "--out", "o", "--weights", "wdir"],
        ["segment", "victim.jpg", "--out", "o", "--weights", "wdir"],
        ["bench", "--image", "victim.jpg", "--weights", "wdir"],
        ["evaluate", "--task", "dehaze", "--data", "dh", "--weights", "wdir"],
    ],
    ids=["enhance", "segment", "bench", "evaluate"],
)
def test_weights_folder_says_a_file_is_expected(work: Path, argv: list[str]) -> None:
    (work / "wdir").mkdir()
    before = _snapshot(work)
    _refused(_cli(*argv, cwd=work), "wdir", "folder")
    assert _snapshot(work) == before and not (work / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["enhance", "victim.jpg", "--out", "o"],
        ["segment", "victim.jpg", "--out", "o"],
        ["bench", "--image", "victim.jpg"],
        ["replay", "nobag", "--out", "o"],
        ["demo", "--out", "o"],
        ["evaluate", "--task", "dehaze", "--data", "dh", "--json", "o"],
        ["evaluate", "--task", "segment", "--data", "seg", "--json", "o"],
    ],
    ids=["enhance", "segment", "bench", "replay", "demo", "evaluate-dehaze", "evaluate-segment"],
)
def test_threads_below_one_is_refused_with_one_wording(work: Path, argv: list[str]) -> None:
    before = _snapshot(work)
    _refused(_cli(*argv, "--threads", "0", cwd=work), "--threads 0", "at least 1", "torch's choice")
    assert _snapshot(work) == before and not (work / "o").exists()


@pytest.mark.parametrize("verb", ["bench", "evaluate", "replay", "demo"])
def test_timestep_lists_take_commas_spaces_or_both(verb: str) -> None:
    import argparse
    import importlib

    module = importlib.import_module(f"snn_perception.commands.{verb}")
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    required = {"evaluate": ["--task", "dehaze", "--data", "d"], "replay": ["bag"]}.get(verb, [])
    forms = [["1,2,4"], ["1", "2", "4"], ["1,2", "4"]]
    parsed = [parser.parse_args([*required, "--timesteps", *form]).timesteps for form in forms]
    if verb in ("evaluate", "bench"):  # parsed to ints by the shared argparse type
        parsed = [[t for group in p for t in group] for p in parsed]
        assert parsed == [[1, 2, 4]] * 3
    else:  # joined with commas before the verb's own parsing
        assert {",".join(p) for p in parsed} == {"1,2,4"}


@pytest.mark.parametrize(
    ("verb", "flag", "required"),
    [
        ("train_unet", "--size", ["--data", "d", "--out", "o"]),
        ("train_unet", "--crop", ["--data", "d", "--out", "o"]),
        ("convert", "--size", ["--weights", "w", "--data", "d", "--out", "o"]),
        ("finetune", "--crop", ["--weights", "w", "--data", "d", "--out", "o"]),
        ("evaluate", "--size", ["--task", "dehaze", "--data", "d"]),
    ],
)
def test_size_options_share_one_parser_and_one_wording(
    verb: str, flag: str, required: list[str], capsys
) -> None:
    """N or HxW everywhere; a refusal names the option, the value and the rule (argparse exit 2)."""
    import argparse
    import importlib

    module = importlib.import_module(f"snn_perception.commands.{verb}")
    parser = argparse.ArgumentParser(prog=verb)
    module.add_arguments(parser)
    dest = flag.lstrip("-")
    assert getattr(parser.parse_args([*required, flag, "64"]), dest) == (64, 64)
    assert getattr(parser.parse_args([*required, flag, "48x80"]), dest) == (48, 80)
    for bad, words in (("big", "expected HxW or N"), ("8x8", "at least 16"), ("0", "positive")):
        with pytest.raises(SystemExit):
            parser.parse_args([*required, flag, bad])
        err = capsys.readouterr().err
        assert f"{flag} {bad!r}" in err and words in err, err
    if verb != "evaluate":  # the U-Nets pool four times
        with pytest.raises(SystemExit):
            parser.parse_args([*required, flag, "40"])
        assert "multiples of 16" in capsys.readouterr().err


def test_bench_of_an_ann_has_no_timesteps(work: Path) -> None:
    """``bench --model unet_ann --timesteps 1 2`` printed rows labelled T=1 and T=2 for a network that
    runs once: refused now; without it, one row per size with T "–"."""
    common = ("bench", "--model", "unet_ann", "--image", "victim.jpg", "--size", "32", "--runs", "1")
    _refused(_cli(*common, "--timesteps", "1", "2", cwd=work), "--timesteps 1,2", "ANN", "no timesteps")
    proc = _cli(*common, "--warmup", "0", "--no-counting", "--json", "b.json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads((work / "b.json").read_text())["rows"]
    assert row["timesteps"] is None and " 32x32     –   off" in proc.stdout, proc.stdout
