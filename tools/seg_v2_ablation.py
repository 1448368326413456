#!/usr/bin/env python3
"""Ablation of the segmenter v2 conversion: normalisation (connection- vs layer-wise), neuron
(multi- vs single-threshold), before/after spiking-flow fine-tuning; validation mIoU at each T.

    tools/seg_v2_ablation.py --ann ANN.safetensors --finetuned SNN_FT.safetensors \\
        --data ../shared/data/suim_trainval --out docs/results/spiking_lite_unet_ablation.json

Every variant converts the same ANN with the same calibration images (its training split) and is
scored on the validation split (294 SUIM images at 256²) from one run of max(T) steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import snn_perception  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)

VARIANTS = (
    ("connection", (2.0, 1.0, 0.5, 0.25)),
    ("layer", (2.0, 1.0, 0.5, 0.25)),
    ("connection", (1.0,)),
    ("layer", (1.0,)),
)


def main(argv: list[str] | None = None) -> int:
    import torch

    from snn_perception.commands.evaluate_segment import evaluate_models
    from snn_perception.offline.convert import calibration_batches, load_unet
    from snn_perception.offline.convert_lite import LiteConvertConfig, convert_lite, lite_snn_metadata
    from snn_perception.runtime.checkpoint import save_checkpoint

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ann", required=True, help="LiteUNet ANN checkpoint (train unet --arch lite)")
    p.add_argument("--finetuned", help="the fine-tuned spiking checkpoint, scored as the last row")
    p.add_argument("--data", nargs="+", required=True, help="folders with images/ + masks/")
    p.add_argument("--timesteps", default="1,2,4,8", help="T values to score (default 1,2,4,8)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--out", type=Path, required=True, help="JSON results (a .md table is written beside it)")
    args = p.parse_args(argv)
    try:
        ts = sorted({int(t) for t in args.timesteps.replace(",", " ").split()})
    except ValueError:
        p.error(f"--timesteps {args.timesteps!r}: expected integers like 1,2,4,8")
    torch.set_num_threads(args.threads)
    ann, ckpt = load_unet(args.ann, expect=("lite_unet",))
    batches = list(calibration_batches(args.data, 64, (256, 256), "segment"))
    rows = []
    tmp = args.out.with_suffix(".variant.safetensors")
    for norm, thresholds in VARIANTS:
        cfg = LiteConvertConfig(norm=norm, thresholds=thresholds)
        t0 = time.time()
        snn, conv = convert_lite(ann, batches, cfg)
        save_checkpoint(
            tmp, snn.state_dict(), lite_snn_metadata(ckpt.metadata, conv, cfg, ckpt.sha256, args.ann)
        )
        for r in evaluate_models([str(tmp)], args.data, "val", 0.2, 0, (256, 256), ts, progress=False):
            rows.append(
                {
                    "variant": f"{norm}-wise, {len(thresholds)} threshold(s)",
                    "norm": norm,
                    "thresholds": list(thresholds),
                    "finetuned": False,
                    **_keep(r),
                }
            )
        print(f"{norm}, {thresholds}: done in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    tmp.unlink(missing_ok=True)
    extra = [(args.ann, "ANN (reference)")] + (
        [(args.finetuned, "connection-wise, 4 thresholds, fine-tuned")] if args.finetuned else []
    )
    for weights, label in extra:
        for r in evaluate_models([weights], args.data, "val", 0.2, 0, (256, 256), ts, progress=False):
            rows.append({"variant": label, "finetuned": "fine-tuned" in label, **_keep(r)})
    doc = {
        "command": "tools/seg_v2_ablation.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "ann": str(args.ann),
        "ann_sha256": ckpt.sha256,
        "split": "val",
        "size": [256, 256],
        "rows": rows,
    }
    args.out.write_text(json.dumps(doc, indent=2))
    args.out.with_suffix(".md").write_text(_markdown(doc, ts))
    print(_markdown(doc, ts))
    return 0


def _keep(r: dict) -> dict:
    return {k: r[k] for k in ("timesteps", "miou", "pixel_acc", "per_class_iou", "sha256") if k in r}


def _markdown(doc: dict, ts: list[int]) -> str:
    lines = ["| variant | " + " | ".join(f"T = {t}" for t in ts) + " |", "|---|" + "---:|" * len(ts)]
    seen: dict[str, dict] = {}
    for r in doc["rows"]:
        seen.setdefault(r["variant"], {})[r["timesteps"]] = r["miou"]
    for name, by_t in seen.items():
        cells = [f"{by_t[None]:.3f}" if None in by_t else f"{by_t.get(t, float('nan')):.3f}" for t in ts]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nmIoU, SUIM validation split ({doc['size'][0]}²), 8 classes.\n"


if __name__ == "__main__":
    sys.exit(main())
