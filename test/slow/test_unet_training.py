"""Slow: the U-Net learns SUIM, converts, and fine-tunes (a few minutes on one CPU core)."""

import json

import pytest
import torch

from snn_perception.cli import main
from snn_perception.runtime.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow


def test_unet_learns_suim_and_the_snn_follows(shared, tmp_path):
    torch.set_num_threads(1)
    data = str(shared / "data" / "suim_trainval")
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "unet",
                "--data",
                data,
                "--width",
                "8",
                "--size",
                "128",
                "--crop",
                "112",
                "--epochs",
                "4",
                "--batch",
                "8",
                "--limit",
                "96",
                "--threads",
                "1",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    hist = json.loads((run / "summary.json").read_text())["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    ann_miou = load_checkpoint(run / "best.safetensors").metadata["metrics"]["val_miou"]
    assert ann_miou > 0.08  # above predicting one class everywhere on 8 classes
    snn = tmp_path / "snn.safetensors"
    assert (
        main(
            [
                "convert",
                "--weights",
                str(run / "best.safetensors"),
                "--data",
                data,
                "--calib",
                "16",
                "--size",
                "128",
                "--out",
                str(snn),
            ]
        )
        == 0
    )
    tuned = tmp_path / "tuned.safetensors"
    assert (
        main(
            [
                "finetune",
                "--weights",
                str(snn),
                "--data",
                data,
                "--size",
                "128",
                "--crop",
                "112",
                "--timesteps",
                "4",
                "--epochs",
                "1",
                "--max-batches",
                "10",
                "--out",
                str(tuned),
            ]
        )
        == 0
    )
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "segment",
                "--data",
                data,
                "--split",
                "val",
                "--limit",
                "32",
                "--size",
                "128x128",
                "--weights",
                str(run / "best.safetensors"),
                str(tuned),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    ann_row, snn_row = json.loads(out.read_text())
    assert snn_row["timesteps"] == 4
    assert snn_row["miou"] > ann_row["miou"] - 0.1
