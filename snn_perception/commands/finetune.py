"""``snn-perception finetune``: train a converted Spiking-UNet on accumulated spiking flow."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from snn_perception.commands import (
    add_device_argument,
    add_examples,
    add_progress_argument,
    check_threads,
    unet_size_type,
)

EXAMPLES = (
    "snn-perception finetune --weights snn.safetensors --data suim/ --timesteps 4 --out snn_ft.safetensors",
    "snn-perception finetune --weights snn.safetensors --data suim/ --out ft/snn_ft.safetensors "
    "--resume ft/last.pt",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument("--weights", required=True, metavar="SNN", help="checkpoint written by 'convert'")
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="DIR",
        help="training folders (their training split is used)",
    )
    parser.add_argument("--timesteps", type=int, default=4, help="T to fine-tune for (becomes the default)")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the training split")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    parser.add_argument("--batch", type=int, default=8, help="images per step")
    parser.add_argument(
        "--size", type=unet_size_type("--size"), help="resize S or HxW (default: the checkpoint's)"
    )
    parser.add_argument(
        "--crop",
        type=unet_size_type("--crop"),
        help="random training crop S or HxW, at most the size (default: 224, or the whole "
        "image on a side shorter than 224)",
    )
    parser.add_argument("--max-batches", type=int, help="batches per epoch, at least 1 (default: all)")
    parser.add_argument("--threads", type=int, help="CPU threads")
    add_device_argument(parser)
    add_progress_argument(parser)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--resume", metavar="LAST_PT", help="continue from WORKDIR/last.pt")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="folder for last.pt and the log (default: OUT's folder / OUT-name_finetune)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output .safetensors (never the --weights file)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out and start WORKDIR afresh (default: refuse)",
    )


#: the default training crop per side (smaller images are used whole)
DEFAULT_CROP = 224


def _check_crop(crop: tuple[int, int], size: tuple[int, int], source: str) -> None:
    if crop[0] > size[0] or crop[1] > size[1]:
        raise ValueError(
            f"--crop {crop[0]}x{crop[1]}: must be at most the image size {size[0]}x{size[1]} "
            f"({source}) on each side"
        )


def _check_workdir(workdir: Path, args: argparse.Namespace) -> None:
    """WORKDIR's last.pt is an earlier fine-tune's progress: continue it (--resume) or replace it."""
    from snn_perception.runtime.paths import check_output_dir

    check_output_dir(workdir, "--workdir")
    if (workdir / "last.pt").exists() and not args.resume and not args.overwrite:
        raise ValueError(
            f"--workdir {workdir} already holds an earlier fine-tune (last.pt); pass --resume "
            f"{workdir / 'last.pt'} to continue it, --overwrite to start afresh, or choose another --workdir"
        )


def run(args: argparse.Namespace) -> int:
    import torch

    from snn_perception.offline.convert import load_unet
    from snn_perception.offline.finetune import RESUME_KEYS, FinetuneConfig, finetune
    from snn_perception.offline.run_checks import check_outside, load_resume, prepare_run_dir
    from snn_perception.offline.seg_data import (
        ImageFolder,
        SegDataError,
        SegDataset,
        image_only_pairs,
        select_split,
        split_pairs,
    )
    from snn_perception.offline.train_unet import class_weights
    from snn_perception.runtime.checkpoint import WeightsError, save_checkpoint
    from snn_perception.runtime.engine import tune_allocator
    from snn_perception.runtime.paths import check_output_file, make_dir
    from snn_perception.runtime.weights import resolve

    # every setting, output path and the crop are checked before the model or any image is loaded
    check_threads(args.threads)
    cfg = FinetuneConfig(
        timesteps=args.timesteps,
        epochs=args.epochs,
        lr=args.lr,
        batch=args.batch,
        max_batches=args.max_batches,
    )
    if args.workers < 0:
        print(f"snn-perception finetune: error: --workers {args.workers}: must be 0 or more", file=sys.stderr)
        return 2
    if args.out.suffix != ".safetensors":
        print(f"snn-perception finetune: error: --out {args.out}: must end in .safetensors", file=sys.stderr)
        return 2
    if args.size and args.crop:
        _check_crop(args.crop, args.size, "--size")
    workdir = args.workdir or args.out.parent / (args.out.stem + "_finetune")
    try:
        weights = resolve(args.weights)
        inputs = [weights, *([Path(args.resume)] if args.resume else [])]
        check_output_file(args.out, inputs=inputs, overwrite=args.overwrite)
        _check_workdir(workdir, args)
        check_outside(args.out, args.data, "--out")
        check_outside(workdir, args.data, "--workdir")
        tune_allocator()  # keep big activation buffers in the heap: no page faults per batch
        if args.threads:
            torch.set_num_threads(args.threads)
        model, ckpt = load_unet(weights, expect=("spiking_unet", "spiking_lite_unet"))
        meta = dict(ckpt.metadata)
        training = meta.get("training", {})
        vf, seed = float(training.get("val_fraction", 0.2)), int(training.get("seed", 0))
        size = args.size or tuple(meta.get("input_hw") or (256, 256))
        crop = args.crop or (min(DEFAULT_CROP, size[0]), min(DEFAULT_CROP, size[1]))
        _check_crop(crop, size, "--size" if args.size else f"stored in {ckpt.path}; set --size")
        resume = None
        if args.resume:
            resume = load_resume(
                args.resume, model, kind="finetune", required=RESUME_KEYS, hint="WORKDIR/last.pt"
            )
        if getattr(model.config, "head", "segment") == "segment":
            ds = SegDataset(
                select_split(args.data, "train", vf, seed), size, crop, model.config.num_classes, seed=seed
            )
            mode = training.get("class_weights", "sqrt_inv")
            cls_weights = class_weights(ds, model.config.num_classes, mode)
        else:
            pairs = [p for root in args.data for p in split_pairs(image_only_pairs(root), vf, seed)[0]]
            ds, cls_weights = ImageFolder(pairs, size, crop, seed=seed), None
        make_dir(args.out.parent, "--out", args.out)
        prepare_run_dir(
            workdir,
            ("last.pt", "finetune.log"),
            overwrite=args.overwrite and not args.resume,
            what="--workdir",
        )
    except (WeightsError, SegDataError, ValueError) as exc:
        print(f"snn-perception finetune: error: {exc}", file=sys.stderr)
        return 2
    cfg.class_weights = cls_weights

    def log(line: str) -> None:
        print(line, flush=True)
        with open(workdir / "finetune.log", "a") as f:
            f.write(line + "\n")

    log(f"fine-tuning {ckpt.path} at T={args.timesteps} on {len(ds)} images, {args.epochs} epochs")
    from snn_perception.runtime.engine import resolve_device

    history = finetune(
        model, ds, cfg, workdir, log, resume, device=resolve_device(args.device), workers=args.workers
    )
    meta.update(
        {
            "default_timesteps": args.timesteps,
            "finetune": {
                "timesteps": args.timesteps,
                "epochs": args.epochs,
                "lr": args.lr,
                "batch": args.batch,
                "crop": list(crop),
                "history": history,
                "source_sha256": ckpt.sha256,
            },
            "command": "snn-perception finetune " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
        }
    )
    sha = save_checkpoint(args.out, model.state_dict(), meta)
    done = f"after {len(history)} epoch(s)" if history else "(no epochs run: the weights are unchanged)"
    print(f"wrote {args.out} {done} (sha256 {sha[:12]})")
    return 0
