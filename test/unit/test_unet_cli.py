"""train unet → convert → finetune → evaluate --task segment → segment, on a tiny folder."""

import json

import cv2
import numpy as np
import pytest

from snn_perception.cli import main
from snn_perception.runtime.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    data = root / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        mask = np.zeros((32, 32), np.uint8)
        mask[:, 16:] = 1 + i % 2
        noise = rng.integers(0, 20, (32, 32, 3), np.uint8)
        img = np.where(mask[..., None] > 0, 200, 40).astype(np.uint8) + noise
        cv2.imwrite(str(data / "images" / f"{i}.jpg"), img)
        cv2.imwrite(str(data / "masks" / f"{i}.png"), mask)
    run = root / "run"
    assert (
        main(
            [
                "train",
                "unet",
                "--data",
                str(data),
                "--width",
                "4",
                "--classes",
                "3",
                "--size",
                "32",
                "--crop",
                "32",
                "--epochs",
                "2",
                "--batch",
                "4",
                "--threads",
                "1",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    snn = root / "snn.safetensors"
    assert (
        main(
            [
                "convert",
                "--weights",
                str(run / "best.safetensors"),
                "--data",
                str(data),
                "--calib",
                "4",
                "--timesteps",
                "4",
                "--out",
                str(snn),
            ]
        )
        == 0
    )
    tuned = root / "tuned.safetensors"
    assert (
        main(
            [
                "finetune",
                "--weights",
                str(snn),
                "--data",
                str(data),
                "--timesteps",
                "2",
                "--epochs",
                "1",
                "--batch",
                "4",
                "--crop",
                "32",
                "--out",
                str(tuned),
            ]
        )
        == 0
    )
    return root, data, run, snn, tuned


def test_training_writes_resumable_state_and_a_checkpoint_with_metadata(pipeline):
    _, data, run, _, _ = pipeline
    meta = load_checkpoint(run / "best.safetensors").metadata
    assert meta["arch"] == "unet" and meta["unet"]["width"] == 4 and "val_miou" in meta["metrics"]
    assert (
        main(
            [
                "train",
                "unet",
                "--data",
                str(data),
                "--width",
                "4",
                "--classes",
                "3",
                "--size",
                "32",
                "--crop",
                "32",
                "--epochs",
                "3",
                "--batch",
                "4",
                "--out",
                str(run),
                "--resume",
                str(run / "last.pt"),
            ]
        )
        == 0
    )
    assert json.loads((run / "summary.json").read_text())["history"][-1]["epoch"] == 3


def test_init_starts_from_an_ann_and_refuses_a_different_network(pipeline, tmp_path, capsys):
    import torch

    from snn_perception.models.unet import UNet, UNetConfig
    from snn_perception.offline.train_unet import load_init

    _, data, run, snn, _ = pipeline
    ann = load_checkpoint(run / "best.safetensors")
    model = UNet(UNetConfig(width=4, num_classes=3))
    load_init(model, UNetConfig(width=4, num_classes=3), str(run / "best.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, ann.state_dict[key]), key
    base = [
        "train",
        "unet",
        "--data",
        str(data),
        "--classes",
        "3",
        "--size",
        "32",
        "--crop",
        "32",
        "--epochs",
        "1",
        "--batch",
        "4",
        "--threads",
        "1",
    ]
    best = str(run / "best.safetensors")
    assert main([*base, "--width", "4", "--init", best, "--out", str(tmp_path / "a")]) == 0
    assert "initialised from" in (tmp_path / "a" / "train.log").read_text()
    assert main([*base, "--width", "8", "--init", best, "--out", str(tmp_path / "b")]) == 2
    assert "a different network: width 4 (ours 8)" in capsys.readouterr().err
    assert main([*base, "--width", "4", "--init", str(snn), "--out", str(tmp_path / "c")]) == 2
    assert "holds architecture 'spiking_unet', expected 'unet'" in capsys.readouterr().err
    assert main([*base, "--width", "4", "--init", "no_such_model", "--out", str(tmp_path / "d")]) == 2
    assert "--init" in capsys.readouterr().err


def test_conversion_and_finetuning_record_what_they_did(pipeline):
    _, _, _, snn, tuned = pipeline
    meta = load_checkpoint(snn).metadata
    assert meta["arch"] == "spiking_unet" and meta["conversion"]["norm"] == "connection"
    assert meta["thresholds"] == [2.0, 1.0, 0.5, 0.25] and meta["default_timesteps"] == 4
    tmeta = load_checkpoint(tuned).metadata
    assert tmeta["default_timesteps"] == 2 and tmeta["finetune"]["timesteps"] == 2


def test_evaluate_segment_writes_json_for_ann_and_snn(pipeline, capsys):
    root, data, run, snn, _ = pipeline
    out = root / "eval.json"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "segment",
                "--data",
                str(data),
                "--split",
                "val",
                "--weights",
                str(run / "best.safetensors"),
                str(snn),
                "--timesteps",
                "2,4",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())
    assert [r["timesteps"] for r in rows] == [None, 2, 4]
    assert all(0.0 <= r["miou"] <= 1.0 and r["images"] == 2 for r in rows)
    capsys.readouterr()
    ann_only = [
        "evaluate",
        "--task",
        "segment",
        "--data",
        str(data),
        "--weights",
        str(run / "best.safetensors"),
    ]
    assert main([*ann_only, "--timesteps", "2"]) == 2  # an ANN alone: --timesteps would change nothing
    err = capsys.readouterr().err
    assert "is an ANN U-Net, which runs once and has no timesteps" in err, err


def test_segment_writes_id_colour_and_overlay_images(pipeline):
    root, data, _, _, tuned = pipeline
    out = root / "seg"
    assert main(["segment", str(data / "images" / "0.jpg"), "--weights", str(tuned), "--out", str(out)]) == 0
    ids = cv2.imread(str(out / "0_mask.png"), cv2.IMREAD_UNCHANGED)
    assert ids.shape == (32, 32) and ids.dtype == np.uint8 and ids.max() < 3
    assert cv2.imread(str(out / "0_color.png")).shape == (32, 32, 3)
    assert (out / "0_overlay.png").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "--weights", "/nonexistent.safetensors", "--data", ".", "--out", "x.safetensors"],
        ["finetune", "--weights", "/nonexistent.safetensors", "--data", ".", "--out", "x.safetensors"],
        ["evaluate", "--task", "segment", "--data", "/nonexistent", "--weights", "/nonexistent.safetensors"],
        ["segment", "/nonexistent.jpg", "--out", "/tmp/never"],
        ["train", "unet", "--data", "/nonexistent"],
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_convert_refuses_bad_thresholds():
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--weights", "w", "--data", ".", "--out", "x.safetensors", "--thresholds", "1,2"])
    assert exc.value.code == 2
