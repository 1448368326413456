"""``snn-perception finetune``: train a converted Spiking-UNet on accumulated spiking flow."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from snn_perception.commands.convert import parse_hw

    parser.add_argument("--weights", required=True, metavar="SNN", help="checkpoint written by 'convert'")
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR",
                        help="training folders (their training split is used)")
    parser.add_argument("--timesteps", type=int, default=4, help="T to fine-tune for (becomes the default)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=parse_hw, help="resize S or HxW (default: the checkpoint's)")
    parser.add_argument("--crop", type=parse_hw, default=(224, 224), help="random training crop")
    parser.add_argument("--max-batches", type=int, help="batches per epoch (default: all)")
    parser.add_argument("--threads", type=int, help="CPU threads")
    parser.add_argument("--resume", metavar="LAST_PT", help="continue from WORKDIR/last.pt")
    parser.add_argument("--workdir", type=Path, help="folder for last.pt and the log (default: beside --out)")
    parser.add_argument("--out", required=True, type=Path, help="output .safetensors")


def run(args: argparse.Namespace) -> int:
    import torch

    from snn_perception.offline.convert import load_unet
    from snn_perception.offline.finetune import FinetuneConfig, finetune
    from snn_perception.offline.seg_data import (
        ImageFolder,
        SegDataError,
        SegDataset,
        image_only_pairs,
        select_split,
        split_pairs,
    )
    from snn_perception.offline.train_unet import class_weights
    from snn_perception.runtime.checkpoint import WeightsError, load_training_state, save_checkpoint
    from snn_perception.runtime.engine import tune_allocator

    tune_allocator()  # keep big activation buffers in the heap: no page faults per batch
    if args.threads:
        torch.set_num_threads(args.threads)
    if not 1 <= args.timesteps <= 64 or args.epochs < 1 or args.batch < 1:
        print("error: --timesteps must be 1..64, --epochs and --batch positive", file=sys.stderr)
        return 2
    if args.out.suffix != ".safetensors":
        print(f"error: --out {args.out}: must end in .safetensors", file=sys.stderr)
        return 2
    try:
        model, ckpt = load_unet(args.weights, expect=("spiking_unet",))
        meta = dict(ckpt.metadata)
        training = meta.get("training", {})
        vf, seed = float(training.get("val_fraction", 0.2)), int(training.get("seed", 0))
        size = args.size or tuple(meta.get("input_hw") or (256, 256))
        if model.config.head == "segment":
            ds = SegDataset(select_split(args.data, "train", vf, seed), size, args.crop,
                            model.config.num_classes, seed=seed)
            weights = class_weights(ds, model.config.num_classes, training.get("class_weights", "sqrt_inv"))
        else:
            pairs = [p for root in args.data for p in split_pairs(image_only_pairs(root), vf, seed)[0]]
            ds, weights = ImageFolder(pairs, size, args.crop, seed=seed), None
        resume = load_training_state(args.resume) if args.resume else None
    except (WeightsError, SegDataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    workdir = args.workdir or args.out.parent / (args.out.stem + "_finetune")
    workdir.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(line, flush=True)
        with open(workdir / "finetune.log", "a") as f:
            f.write(line + "\n")

    cfg = FinetuneConfig(timesteps=args.timesteps, epochs=args.epochs, lr=args.lr, batch=args.batch,
                         class_weights=weights, max_batches=args.max_batches)
    log(f"fine-tuning {ckpt.path} at T={args.timesteps} on {len(ds)} images, {args.epochs} epochs")
    history = finetune(model, ds, cfg, workdir, log, resume)
    meta.update({
        "default_timesteps": args.timesteps,
        "finetune": {"timesteps": args.timesteps, "epochs": args.epochs, "lr": args.lr, "batch": args.batch,
                     "crop": list(args.crop), "history": history, "source_sha256": ckpt.sha256},
        "command": "snn-perception finetune " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
    })
    sha = save_checkpoint(args.out, model.state_dict(), meta)
    print(json.dumps(history[-1]) if history else "no epochs run")
    print(f"wrote {args.out} (sha256 {sha[:12]})")
    return 0
