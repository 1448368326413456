"""The Spiking-UNet paper's ablation on our data: normalisation × neuron × T, before and after fine-tuning.

Regenerates ``docs/results/spiking_unet_ablation.{json,md}``::

    python tools/unet_ablation.py --ann runs/unet_suim_w8/best.safetensors \\
        --data ../shared/data/suim_trainval --out-dir docs/results

One calibration (activation percentiles do not depend on the normalisation or the neuron) feeds
four conversions: {layer-wise, connection-wise} × {single threshold 1.0, multi-threshold}. Each is
scored at every T from one run of max(T) steps, then fine-tuned by spiking flow at each short T
for the same budget and scored again. Every fine-tuned model is kept under ``--keep-dir``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from snn_perception.models.multithreshold import DEFAULT_THRESHOLDS
from snn_perception.models.unet import class_ids
from snn_perception.offline.convert import (
    ConvertConfig,
    calibrate,
    calibration_batches,
    conversion_metadata,
    convert,
    fold_batchnorm,
    load_unet,
    pooled_scales,
)
from snn_perception.offline.finetune import FinetuneConfig, evaluate_snn_segment, finetune
from snn_perception.offline.run_checks import require
from snn_perception.offline.seg_data import SegDataset, select_split
from snn_perception.offline.seg_metrics import ConfusionMatrix
from snn_perception.offline.train_unet import class_weights

NEURONS = {"single": (1.0,), "multi": DEFAULT_THRESHOLDS}


def _ann_scores(model, ds, names, batch=8) -> dict:
    cm = ConfusionMatrix(model.config.num_classes)
    with torch.no_grad():
        for i in range(0, len(ds), batch):
            xs, ys = zip(*(ds[j] for j in range(i, min(i + batch, len(ds)))), strict=True)
            cm.update(class_ids(model(torch.stack(xs))), torch.stack(ys))
    return cm.scores(names)


def _brief(scores: dict) -> dict:
    return {k: scores[k] for k in ("miou", "pixel_acc", "mean_f1", "per_class_iou")}


def run_ablation(args: argparse.Namespace, log=print, checkpoint=None) -> dict:
    """``checkpoint(result)`` is called after every cell, so a cut-short run still leaves numbers."""
    from snn_perception.runtime.checkpoint import save_checkpoint

    torch.manual_seed(args.seed)
    ann, ckpt = load_unet(args.ann, expect=("unet",))
    meta = ckpt.metadata
    names = meta.get("class_names")
    training = meta.get("training", {})
    vf, seed = float(training.get("val_fraction", 0.2)), int(training.get("seed", 0))
    size = tuple(meta.get("input_hw") or (256, 256))
    folded = fold_batchnorm(ann)

    val_pairs = select_split(args.data, "val", vf, seed)
    if args.val_limit:
        val_pairs = val_pairs[: args.val_limit]
    val = SegDataset(val_pairs, size, None, folded.config.num_classes)
    train = SegDataset(
        select_split(args.data, "train", vf, seed),
        size,
        tuple(args.crop),
        folded.config.num_classes,
        seed=seed,
    )
    weights = class_weights(train, folded.config.num_classes, training.get("class_weights", "sqrt_inv"))
    batches = list(calibration_batches(args.data, args.calib, size, "segment", val_fraction=vf, seed=seed))
    calib = calibrate(folded, batches, ConvertConfig(percentile=args.percentile))
    log(f"calibrated on {sum(len(b) for b in batches)} training images; {len(val)} validation images")

    t0 = time.time()
    result: dict = {
        "ann": {"weights": str(ckpt.path), "sha256": ckpt.sha256, **_brief(_ann_scores(folded, val, names))},
        "setup": {
            "data": [str(d) for d in args.data],
            "val_images": len(val),
            "val_of": len(select_split(args.data, "val", vf, seed)),
            "size": list(size),
            "split_seed": seed,
            "val_fraction": vf,
            "calibration_images": sum(len(b) for b in batches),
            "percentile": args.percentile,
            "timesteps": args.timesteps,
            "finetune_timesteps": args.ft_timesteps,
            "finetune_batches": args.ft_batches,
            "finetune_batch_size": args.ft_batch,
            "finetune_lr": args.ft_lr,
            "finetune_crop": list(args.crop),
            "width": folded.config.width,
            "threads": torch.get_num_threads(),
        },
        "converted": [],
        "finetuned": [],
    }
    log(f"ANN mIoU {result['ann']['miou']:.4f}")
    keep = Path(args.keep_dir) if args.keep_dir else None
    cells = [(norm, neuron, 0.0) for norm in ("layer", "connection") for neuron in NEURONS]
    cells += [(norm, "multi", v) for v in args.membrane_inits if v for norm in ("layer", "connection")]
    for norm, neuron, v_init in cells:
        thresholds = NEURONS[neuron]
        cfg = ConvertConfig(
            norm=norm, thresholds=thresholds, percentile=args.percentile, membrane_init=v_init
        )
        snn = convert(folded, calib, cfg)
        tic = time.time()
        scores = evaluate_snn_segment(snn, val, args.timesteps, args.eval_batch, names, progress=True)
        for t, sc in scores.items():
            result["converted"].append(
                {"norm": norm, "neuron": neuron, "membrane_init": v_init, "timesteps": t, **_brief(sc)}
            )
        log(
            f"{norm:>10}/{neuron:<6}/v0={v_init} converted: "
            + ", ".join(f"T={t} {sc['miou']:.4f}" for t, sc in scores.items())
            + f"  ({time.time() - tic:.0f}s)"
        )
        for t in args.ft_timesteps:
            if f"{norm}:{neuron}:{v_init:g}" not in args.ft_configs:
                continue
            tuned = convert(folded, calib, cfg)
            torch.manual_seed(args.seed)
            tic = time.time()
            hist = finetune(
                tuned,
                train,
                FinetuneConfig(
                    timesteps=t,
                    epochs=1,
                    lr=args.ft_lr,
                    batch=args.ft_batch,
                    class_weights=weights,
                    max_batches=args.ft_batches,
                ),
                log=lambda _line: None,
            )
            sc = evaluate_snn_segment(tuned, val, [t], args.eval_batch, names)[t]
            result["finetuned"].append(
                {
                    "norm": norm,
                    "neuron": neuron,
                    "membrane_init": v_init,
                    "timesteps": t,
                    "train_loss": hist[-1]["loss"],
                    **_brief(sc),
                }
            )
            if checkpoint:
                checkpoint(result)
            log(
                f"{norm:>10}/{neuron:<6}/v0={v_init} fine-tuned at T={t}: {sc['miou']:.4f}  "
                f"({time.time() - tic:.0f}s)"
            )
            if keep is not None:
                out_meta = {k: v for k, v in meta.items() if k not in ("arch", "command", "metrics")}
                out_meta.update(
                    {
                        "arch": "spiking_unet",
                        "unet": folded.config.to_dict(),
                        "thresholds": list(thresholds),
                        "default_timesteps": t,
                        "membrane_init": v_init,
                        "conversion": conversion_metadata(cfg, pooled_scales(calib).scales, args.calib),
                        "finetune": {
                            "timesteps": t,
                            "batches": args.ft_batches,
                            "batch": args.ft_batch,
                            "lr": args.ft_lr,
                            "train_loss": hist[-1]["loss"],
                        },
                        "ann": {"sha256": ckpt.sha256, "metrics": meta.get("metrics", {})},
                    }
                )
                name = f"{norm}_{neuron}_v{v_init:g}_T{t}.safetensors"
                save_checkpoint(keep / name, tuned.state_dict(), out_meta)
    result["seconds"] = time.time() - t0
    result["command"] = "python tools/unet_ablation.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result["environment"] = {"torch": torch.__version__, "python": platform.python_version()}
    return result


def _label(neuron: str, v: float) -> str:
    base = "single θ=1.0" if neuron == "single" else "multi θ=2,1,0.5,0.25"
    return base + (f", v₀={v:g}·θ_min" if v else "")


def to_markdown(r: dict) -> str:
    s = r["setup"]
    ts = s["timesteps"]
    lines = [
        "# Spiking-UNet ablation on SUIM (validation split)",
        "",
        f"U-Net width {s['width']}, {s['size'][0]}×{s['size'][1]} input, {s['val_images']} validation images "
        f"(the first {s['val_images']} of the {s['val_of']}-image fixed-seed validation split, seed "
        f"{s['split_seed']}), mIoU over the 8 SUIM classes from one confusion matrix. Calibration: "
        f"{s['calibration_images']} training images, {s['percentile']}th percentile. Fine-tuning: "
        f"{s['finetune_batches']} batches of {s['finetune_batch_size']} {s['finetune_crop'][0]}² crops, "
        f"Adam lr {s['finetune_lr']}, at the T it is evaluated at.",
        "",
        f"**ANN mIoU: {r['ann']['miou']:.4f}** (pixel accuracy {r['ann']['pixel_acc']:.4f})",
        "",
        "## Converted, before fine-tuning (mIoU)",
        "",
        "| normalisation | neuron | " + " | ".join(f"T={t}" for t in ts) + " |",
        "|---|---|" + "---|" * len(ts),
    ]
    conv = {
        (c["norm"], c["neuron"], c.get("membrane_init", 0.0), c["timesteps"]): c["miou"]
        for c in r["converted"]
    }
    rows = sorted({k[:3] for k in conv}, key=lambda k: (k[2], k[0] != "layer", k[1] != "single"))
    for norm, neuron, v in rows:
        cells = [f"{conv[(norm, neuron, v, t)]:.4f}" for t in ts if (norm, neuron, v, t) in conv]
        lines.append(f"| {norm}-wise | {_label(neuron, v)} | " + " | ".join(cells) + " |")
    if r["finetuned"]:
        fts = s["finetune_timesteps"]
        lines += [
            "",
            "## After fine-tuning by accumulated spiking flow (mIoU; gap to the ANN)",
            "",
            "| normalisation | neuron | " + " | ".join(f"T={t}" for t in fts) + " |",
            "|---|---|" + "---|" * len(fts),
        ]
        ft = {
            (c["norm"], c["neuron"], c.get("membrane_init", 0.0), c["timesteps"]): c["miou"]
            for c in r["finetuned"]
        }
        order = sorted({k[:3] for k in ft}, key=lambda k: (k[2], k[0] != "layer", k[1] != "single"))
        for norm, neuron, v in order:
            cells = [
                f"{ft[(norm, neuron, v, t)]:.4f} ({ft[(norm, neuron, v, t)] - r['ann']['miou']:+.3f})"
                if (norm, neuron, v, t) in ft
                else "–"
                for t in fts
            ]
            lines.append(f"| {norm}-wise | {_label(neuron, v)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Findings",
        "",
        *r.get("findings", ["(see the tables)"]),
        "",
        "## Reproduce",
        "",
        "```",
        r["command"],
        "```",
        "",
        f"Run time {r['seconds'] / 60:.1f} min on {s['threads']} CPU thread(s); numbers in "
        "`spiking_unet_ablation.json` (per-class IoU, pixel accuracy, F1 for every cell).",
        "",
    ]
    return "\n".join(lines)


def findings(r: dict) -> list[str]:
    """Plain statements checked against the numbers (the paper's three claims)."""
    conv = {
        (c["norm"], c["neuron"], c.get("membrane_init", 0.0), c["timesteps"]): c["miou"]
        for c in r["converted"]
    }
    ts = r["setup"]["timesteps"]
    out = []
    cw_ge = [conv[("connection", n, 0.0, t)] >= conv[("layer", n, 0.0, t)] for n in NEURONS for t in ts]
    out.append(
        f"- Paper's neuron (v₀ = 0): connection-wise ≥ layer-wise in {sum(cw_ge)} of {len(cw_ge)} "
        "converted cells."
    )
    t0 = min(ts)
    for norm in ("layer", "connection"):
        m, s1 = conv[(norm, "multi", 0.0, t0)], conv[(norm, "single", 0.0, t0)]
        out.append(
            f"- {norm}-wise at T={t0}: multi-threshold {m:.4f} vs single threshold {s1:.4f} ({m - s1:+.4f})."
        )
    ann = r["ann"]["miou"]
    for c in r["finetuned"]:
        if c["norm"] == "connection" and c["neuron"] == "multi":
            gap = c["miou"] - ann
            v0 = c.get("membrane_init", 0.0)
            out.append(
                f"- Fine-tuned connection-wise multi-threshold (v₀ = {v0:g}) at "
                f"T={c['timesteps']}: {c['miou']:.4f}, {gap:+.4f} from the ANN "
                f"({'within' if -gap <= 0.03 else 'outside'} 0.03)."
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python tools/unet_ablation.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ann", required=True, help="ANN checkpoint from 'train unet'")
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--out-dir", type=Path, default=Path("docs/results"))
    p.add_argument("--keep-dir", help="save every fine-tuned model here")
    p.add_argument("--calib", type=int, default=64)
    p.add_argument("--percentile", type=float, default=99.9)
    p.add_argument("--val-limit", type=int, default=None, help="score only the first N validation images")
    p.add_argument("--timesteps", type=lambda s: [int(v) for v in s.split(",")], default=[4, 8, 16, 32])
    p.add_argument("--ft-timesteps", type=lambda s: [int(v) for v in s.split(",") if v], default=[4, 8])
    p.add_argument(
        "--ft-configs",
        default="layer:single:0,layer:multi:0,connection:single:0,connection:multi:0,connection:multi:0.5",
        help="norm:neuron:membrane_init cells to fine-tune",
    )
    p.add_argument(
        "--membrane-inits",
        type=lambda s: [float(v) for v in s.split(",")],
        default=[0.0, 0.5],
        help="initial membranes to convert with (0 = the paper's neuron; others: multi only)",
    )
    p.add_argument("--ft-batches", type=int, default=40)
    p.add_argument("--ft-batch", type=int, default=8)
    p.add_argument("--ft-lr", type=float, default=1e-4)
    p.add_argument("--crop", type=int, nargs=2, default=[224, 224])
    p.add_argument("--eval-batch", type=int, default=4)
    p.add_argument("--threads", type=int)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    require(args.threads is None or args.threads >= 1, "--threads", args.threads, "at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    from snn_perception.runtime.engine import tune_allocator

    tune_allocator()  # keep big activation buffers in the heap: no page faults per batch
    args.ft_configs = set(args.ft_configs.split(","))
    partial = args.out_dir / "spiking_unet_ablation.partial.json"

    def checkpoint(r: dict) -> None:  # the folder appears with the first result, not before the inputs load
        args.out_dir.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(r, indent=2))

    result = run_ablation(args, checkpoint=checkpoint)
    partial.unlink(missing_ok=True)
    result["findings"] = findings(result)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "spiking_unet_ablation.json").write_text(json.dumps(result, indent=2))
    (args.out_dir / "spiking_unet_ablation.md").write_text(to_markdown(result))
    print("\n".join(result["findings"]))
    print(f"wrote {args.out_dir / 'spiking_unet_ablation.md'} and .json")
    return 0
