"""Dehaze evaluation agrees with independent metric implementations; bad input is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_run import cli
from kornia.metrics import ssim as kornia_ssim
from skimage.metrics import peak_signal_noise_ratio

from snn_perception.offline.evaluate_dehaze import DehazeEvalConfig, evaluate_dehaze
from snn_perception.offline.metrics import classical_enhance
from snn_perception.offline.pairs import read_rgb, resize_float

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def two_pairs(shared: Path, tmp_path: Path) -> Path:
    src = shared / "data" / "euvp_test23"
    names = sorted(p.name for p in (src / "raw").iterdir())[:2]
    for sub in ("raw", "reference"):
        (tmp_path / sub).mkdir()
        for name in names:
            (tmp_path / sub / name).symlink_to(src / sub / name)
    return tmp_path


def _independent(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    out = np.clip(out.astype(np.float64), 0, 1)
    psnr = peak_signal_noise_ratio(ref.astype(np.float64), out, data_range=1.0)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].double()  # noqa: E731
    ssim = float(kornia_ssim(to_t(out), to_t(ref), window_size=11, max_val=1.0).mean())
    return psnr, ssim


def test_raw_and_classical_scores_match_skimage_and_kornia(two_pairs: Path) -> None:
    result = evaluate_dehaze(DehazeEvalConfig(data=[str(two_pairs)], size=(256, 256)), progress=False)
    assert result["images"] == sorted(p.name for p in (two_pairs / "raw").iterdir())
    for i, name in enumerate(result["images"]):
        raw = resize_float(read_rgb(two_pairs / "raw" / name), (256, 256))
        ref = resize_float(read_rgb(two_pairs / "reference" / name), (256, 256))
        for method, out in (("raw", raw), ("classical", classical_enhance(raw).astype(np.float64) / 255)):
            row = result["methods"][method]["per_image"][i]
            psnr, ssim = _independent(out, ref)
            assert row["psnr"] == pytest.approx(psnr, abs=1e-6)
            assert row["ssim"] == pytest.approx(ssim, abs=1e-6)
    means = result["methods"]["raw"]["mean"]
    assert means["psnr"] == pytest.approx(np.mean([r["psnr"] for r in result["methods"]["raw"]["per_image"]]))


def test_model_scores_match_an_independent_run(two_pairs: Path, shared: Path) -> None:
    from snn_perception.runtime.engine import Engine, EngineConfig

    weights = shared / "weights" / "snntrans_dhz_official_T4.pth"
    cfg = DehazeEvalConfig(data=[str(two_pairs)], size=(256, 256), weights=[str(weights)], methods=[])
    result = evaluate_dehaze(cfg, progress=False)
    (name,) = result["methods"]
    engine = Engine.load(weights, EngineConfig())
    for i, image in enumerate(result["images"]):
        raw = resize_float(read_rgb(two_pairs / "raw" / image), (256, 256))
        ref = resize_float(read_rgb(two_pairs / "reference" / image), (256, 256))
        psnr, ssim = _independent(engine.run(raw, timesteps=4).output, ref)
        row = result["methods"][name]["per_image"][i]
        assert row["psnr"] == pytest.approx(psnr, abs=1e-5)
        assert row["ssim"] == pytest.approx(ssim, abs=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "/nonexistent"], "raw/ and reference/"),
        (["--data", ".", "--size", "12xfoo"], "expected HxW"),
        (["--data", ".", "--timesteps", "0"], "between 1 and 64"),
        (["--data", ".", "--weights", "/no/such.safetensors"], "no such file"),
        (["--data", ".", "--val-max", "5"], "with --split val or --split train"),
        (["--data", ".", "--split", "val", "--val-max", "-1"], "must be ≥ 1"),
    ],
)
def test_cli_rejects_bad_input_with_a_reason(args: list[str], message: str) -> None:
    proc = cli("evaluate", "--task", "dehaze", *args, cwd=REPO)
    assert proc.returncode == 2
    assert message in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_weight_labels_stay_distinct_when_file_names_clash() -> None:
    from snn_perception.offline.evaluate_dehaze import weight_labels

    assert weight_labels(["dhz", "runs/a/best.safetensors"]) == ["dhz", "best"]
    assert weight_labels(["runs/a/best.safetensors", "runs/b/best.safetensors", "dhz"]) == [
        "a/best",
        "b/best",
        "dhz",
    ]
    assert weight_labels(["dhz", "dhz"]) == ["dhz", "dhz#2"]


def test_two_runs_best_weights_are_scored_separately(two_pairs: Path, shared: Path, tmp_path: Path) -> None:
    """Two files named best.safetensors once shared a label, and their scores one averaged row."""
    import shutil

    from snn_perception.runtime.weights import resolve

    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        shutil.copy(resolve("dhz"), tmp_path / run / "best.safetensors")
    weights = [str(tmp_path / "a" / "best.safetensors"), str(tmp_path / "b" / "best.safetensors")]
    cfg = DehazeEvalConfig(data=[str(two_pairs)], size=(64, 64), weights=weights, methods=[])
    methods = evaluate_dehaze(cfg, progress=False)["methods"]
    assert list(methods) == ["a/best@T4", "b/best@T4"]
    assert all(len(m["per_image"]) == 2 for m in methods.values())


def test_val_max_scores_exactly_the_trainers_capped_validation_split(tmp_path: Path) -> None:
    """``evaluate --split val --val-max N`` picks the pairs ``train dhz --val-max N`` validated on
    (a source's capped split is the first N of its seeded order, not the first N by name), and
    ``--split train --val-max N`` the pairs it trained on, the cap's overflow included."""
    from snn_perception.offline.dhz_mix import split_sources
    from snn_perception.offline.evaluate_dehaze import select_pairs

    for sub in ("raw", "reference"):
        (tmp_path / sub).mkdir()
        for i in range(30):
            (tmp_path / sub / f"{i:03d}.png").write_bytes(b"")
    trainer = split_sources([str(tmp_path)], [1.0], [None], 0.5, 6, seed=3)[0]
    cfg = DehazeEvalConfig(data=[str(tmp_path)], split="val", val_fraction=0.5, seed=3, val_max=6)
    assert sorted(p[0].name for p in select_pairs(cfg)) == sorted(p[0].name for p in trainer.val)
    assert len(trainer.val) == 6
    trained = DehazeEvalConfig(data=[str(tmp_path)], split="train", val_fraction=0.5, seed=3, val_max=6)
    assert sorted(p[0].name for p in select_pairs(trained)) == sorted(p[0].name for p in trainer.train)
    assert len(trainer.train) == 24  # the 9 pairs the cap moved out of validation were trained on
    by_name = DehazeEvalConfig(data=[str(tmp_path)], split="val", val_fraction=0.5, seed=3, limit=6)
    assert [p[0].name for p in select_pairs(by_name)] != [p[0].name for p in select_pairs(cfg)]


def test_cli_scores_the_trainers_capped_training_split_and_refuses_the_cap_for_segment(
    shared: Path, tmp_path: Path
) -> None:
    """``--split train --val-max N`` is accepted (it was refused, so the trainer's training split,
    which takes the cap's overflow, could not be scored); segmentation has no cap to mirror."""
    src = shared / "data" / "ufo120_sample"
    names = sorted(p.name for p in (src / "raw").iterdir())[:6]
    data = tmp_path / "pairs"
    for sub in ("raw", "reference"):
        (data / sub).mkdir(parents=True)
        for name in names:
            (data / sub / name).symlink_to(src / sub / name)
    split = ["--val-fraction", "0.5", "--seed", "0", "--val-max", "1"]
    proc = cli(
        "evaluate", "--task", "dehaze", "--data", str(data), "--split", "train", *split, "--size", "32x32",
        "--timesteps", "1", "--method", "raw", "--no-uiqm", "--json", str(tmp_path / "t.json"), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import json

    images = json.loads((tmp_path / "t.json").read_text())["images"]
    assert len(images) == 5  # 3 held out, the cap keeps 1 of them: 3 + 2 train
    proc = cli("evaluate", "--task", "segment", "--data", str(data), "--split", "val", *split, cwd=tmp_path)
    assert proc.returncode == 2 and "--val-max 1: is for --task dehaze only" in proc.stderr
