"""The ablation report: tables and findings follow the numbers they are given."""

from snn_perception.offline.ablation import findings, to_markdown


def fake_result():
    conv = []
    for norm, base in (("layer", 0.10), ("connection", 0.12)):
        for neuron, bonus in (("single", 0.0), ("multi", 0.05)):
            for t in (4, 8):
                conv.append(
                    {
                        "norm": norm,
                        "neuron": neuron,
                        "membrane_init": 0.0,
                        "timesteps": t,
                        "miou": base + bonus + t / 100,
                    }
                )
    ft = [{"norm": "connection", "neuron": "multi", "membrane_init": 0.5, "timesteps": 4, "miou": 0.29}]
    setup = {
        "width": 8,
        "size": [256, 256],
        "val_images": 10,
        "val_of": 294,
        "split_seed": 0,
        "calibration_images": 8,
        "percentile": 99.9,
        "finetune_batches": 5,
        "finetune_batch_size": 2,
        "finetune_crop": [224, 224],
        "finetune_lr": 1e-4,
        "timesteps": [4, 8],
        "finetune_timesteps": [4],
        "threads": 1,
    }
    return {
        "ann": {"miou": 0.30, "pixel_acc": 0.7},
        "setup": setup,
        "converted": conv,
        "finetuned": ft,
        "seconds": 60.0,
        "command": "python tools/unet_ablation.py --ann a --data d",
    }


def test_findings_compare_the_cells_they_name():
    r = fake_result()
    lines = findings(r)
    assert lines[0].endswith("connection-wise ≥ layer-wise in 4 of 4 converted cells.")
    assert "multi-threshold 0.1900 vs single threshold 0.1400 (+0.0500)" in lines[1]
    assert "0.2900, -0.0100 from the ANN (within 0.03)" in lines[-1]


def test_markdown_has_every_cell_and_the_command():
    r = fake_result()
    r["findings"] = findings(r)
    md = to_markdown(r)
    assert "| connection-wise | multi θ=2,1,0.5,0.25 | 0.2100 | 0.2500 |" in md
    assert "| connection-wise | multi θ=2,1,0.5,0.25, v₀=0.5·θ_min | 0.2900 (-0.010) |" in md
    assert r["command"] in md and "**ANN mIoU: 0.3000**" in md
