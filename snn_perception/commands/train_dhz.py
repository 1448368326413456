"""``snn-perception train dhz``: surrogate-gradient training of snnTrans-DHZ."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from snn_perception.commands import add_device_argument, add_examples, add_progress_argument

EXAMPLES = (
    "snn-perception train dhz --data pairs/ --epochs 100 --out runs/my_water",
    "snn-perception train dhz --data pairs/ --epochs 100 --out runs/my_water --resume runs/my_water/last.pt",
    "snn-perception train dhz --data pairs/ --synthetic 64 --init dhz --epochs 12 --out runs/water_synth",
    "snn-perception train dhz --data pairs/ more/ --mix 1 0.5 --anytime 1 2 4 8 --init dhz --out runs/v2",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="DIR",
        help="folders with raw/ and reference/ sub-folders of same-named images",
    )
    parser.add_argument("--variant", choices=["official", "paper"], default="official")
    parser.add_argument(
        "--dim",
        type=int,
        default=64,
        help="transformer channels, a multiple of 8 from 64 (the published width, default) to 256, "
        "8 per head; with --init of narrower weights they are widened so training starts from "
        "exactly their output",
    )
    parser.add_argument(
        "--widen-lr",
        type=float,
        default=1.0,
        metavar="X",
        help="with --dim wider than --init's weights: the optimiser's step on the weights widening "
        "adds is X times the rest's, so a short fine-tune can use the new channels (default 1)",
    )
    parser.add_argument("--timesteps", type=int, default=4, help="T used in training (1-64)")
    parser.add_argument("--crop", type=int, default=256, help="random crop size (multiple of 8)")
    parser.add_argument(
        "--resize", type=int, default=512, help="resize pairs to SxS before cropping (0: keep native size)"
    )
    parser.add_argument(
        "--scale-min",
        type=float,
        default=1.0,
        help="random zoom-out before cropping, in [S, 1] (0.5: crops also show whole scenes)",
    )
    parser.add_argument(
        "--extra-water",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that a training raw image is seen through 0.3-2.5 m more of a random water "
        "(reference unchanged): teaches stronger casts than the pairs show (default 0)",
    )
    parser.add_argument(
        "--tone-jitter",
        type=float,
        default=0.0,
        metavar="S",
        help="the same random exposure change for raw and reference (gain 1±S, gamma in "
        "[1/(1+S), 1+S]); teaches keeping a dark scene's tones instead of crushing them (default 0)",
    )
    parser.add_argument(
        "--ema",
        type=float,
        default=0.0,
        metavar="DECAY",
        help="validate and export an exponential moving average of the weights (e.g. 0.99: about the "
        "last 100 steps); steadier than the raw weights when there are few pairs (default 0: off)",
    )
    parser.add_argument(
        "--grad-checkpoint",
        action="store_true",
        help="recompute activations in the backward pass instead of storing them: ~60%% less memory "
        "live per step for ~30%% more time; same results (for large --crop, --batch or --timesteps)",
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--min-lr", type=float, default=1e-5, help="end of the cosine schedule")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--val-size", type=int, default=256, help="validation images resized to SxS")
    parser.add_argument("--seed", type=int, default=0, help="seed of crops, augmentation, order and renders")
    parser.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the train/validation split alone (default: --seed); keep it when "
        "varying --seed, so every run validates on the same held-out pairs",
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="add N pairs rendered through the underwater image-formation model",
    )
    parser.add_argument(
        "--synthetic-from",
        nargs="+",
        default=[],
        metavar="DIR",
        help="render the --synthetic pairs from the images in these folders (e.g. well-lit footage of "
        "your water) instead of the training references and bundled photos",
    )
    parser.add_argument(
        "--synthetic-val",
        type=int,
        default=0,
        metavar="N",
        help="add N pairs rendered from the validation references to the validation set "
        "(model selection then also rewards undoing rendered waters)",
    )
    parser.add_argument(
        "--mix",
        nargs="+",
        type=float,
        default=[],
        metavar="W",
        help="sampling weight of each --data folder, in order (plus one for --synthetic pairs): each epoch "
        "draws --epoch-size pairs, a folder's share being its weight over the sum (default: every pair "
        "once per epoch, so large folders dominate)",
    )
    parser.add_argument(
        "--source-resize",
        nargs="+",
        type=int,
        default=[],
        metavar="S",
        help="square size each --data folder's pairs are resized to before cropping, in order (0: native "
        "size; default: --resize for all)",
    )
    parser.add_argument(
        "--epoch-size",
        type=int,
        default=0,
        metavar="N",
        help="pairs drawn per epoch with --mix (default: the number of training pairs)",
    )
    parser.add_argument(
        "--val-max",
        type=int,
        default=0,
        metavar="N",
        help="at most N validation pairs per --data folder; the rest of its split trains (default 0: no cap)",
    )
    parser.add_argument(
        "--anytime",
        nargs="+",
        type=int,
        default=[],
        metavar="T",
        help="anytime training: the loss is the mean over the outputs read out after each of these steps "
        "(one run of the longest, which must be --timesteps), e.g. 1 2 4 8 with --timesteps 8; "
        "validation reports each. Use with --readout normalized",
    )
    parser.add_argument(
        "--anytime-weights",
        nargs="+",
        type=float,
        default=[],
        metavar="W",
        help="each --anytime read-out's share of the loss, in the same order (default: equal)",
    )
    parser.add_argument(
        "--monotone",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of a hinge charging each --anytime read-out for a higher loss than the one before "
        "it, so quality does not fall as T grows (default 0: off)",
    )
    parser.add_argument(
        "--monotone-per",
        choices=["batch", "image"],
        default="batch",
        help="where the --monotone hinge acts: the batch's mean losses (default) or each image's",
    )
    parser.add_argument(
        "--consistency",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of a term pulling each earlier --anytime read-out toward the last one's image "
        "(which learns nothing from it), so the output changes less with T (default 0: off)",
    )
    parser.add_argument(
        "--readout",
        choices=["leaky", "normalized"],
        default="leaky",
        help="leaky: the published read-out (its scale grows with T, so weights suit one T); normalized: "
        "a weighted mean at every step, so one set of weights serves every T (default leaky)",
    )
    parser.add_argument("--w-mse", type=float, default=1.0)
    parser.add_argument("--w-ssim", type=float, default=0.5)
    parser.add_argument("--w-tv", type=float, default=0.25)
    parser.add_argument("--init", help="start from these weights (name or path) instead of random")
    parser.add_argument("--resume", metavar="CKPT", help="continue from a last.pt of an earlier run")
    add_device_argument(parser, default="auto")
    add_progress_argument(parser)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    parser.add_argument("--out", default="runs/dhz", help="output folder (checkpoints, logs)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --out (default: refuse unless --resume continues it)",
    )


def _check(args: argparse.Namespace) -> str | None:
    """What only the command line can get wrong; every setting is checked by TrainDhzConfig itself."""
    for folder in args.data:
        path = Path(folder)
        if not (path / "raw").is_dir() or not (path / "reference").is_dir():
            return f"--data {folder}: expected a folder with raw/ and reference/ sub-folders"
    for folder in args.synthetic_from:
        if not Path(folder).is_dir():
            return f"--synthetic-from {folder}: not a folder (expected a folder of images)"
    return None


def config_from_args(args: argparse.Namespace):
    """Every command-line option mapped onto the trainer's config (one place, tested field by field)."""
    from snn_perception.offline.losses import LossWeights
    from snn_perception.offline.train_dhz import TrainDhzConfig

    init = None
    if args.init:
        from snn_perception.runtime.checkpoint import WeightsError
        from snn_perception.runtime.weights import resolve

        try:
            init = str(resolve(args.init))
        except WeightsError as exc:
            raise WeightsError(f"--init: {exc}") from None
    return TrainDhzConfig(
        data=[str(Path(d)) for d in args.data],
        out=args.out,
        variant=args.variant,
        dim=args.dim,
        widen_lr=args.widen_lr,
        timesteps=args.timesteps,
        crop=args.crop,
        resize=args.resize or None,
        scale_min=args.scale_min,
        extra_water=args.extra_water,
        tone_jitter=args.tone_jitter,
        ema=args.ema,
        grad_checkpoint=args.grad_checkpoint,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        min_lr=args.min_lr,
        val_fraction=args.val_fraction,
        val_size=args.val_size,
        seed=args.seed,
        split_seed=args.split_seed,
        mix=list(args.mix),
        source_resize=list(args.source_resize),
        epoch_size=args.epoch_size,
        val_max=args.val_max,
        anytime=list(args.anytime),
        anytime_weights=list(args.anytime_weights),
        monotone=args.monotone,
        monotone_per=args.monotone_per,
        consistency=args.consistency,
        readout=args.readout,
        synthetic=args.synthetic,
        synthetic_val=args.synthetic_val,
        synthetic_from=[str(Path(d)) for d in args.synthetic_from],
        init=init,
        resume=args.resume,
        device=args.device,
        threads=args.threads,
        loss=LossWeights(mse=args.w_mse, ssim=args.w_ssim, tv=args.w_tv),
        overwrite=args.overwrite,
        command="snn-perception train dhz " + shlex.join(sys.argv[3:] if len(sys.argv) > 3 else []),
    )


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"snn-perception train: error: {problem}", file=sys.stderr)
        return 2
    from snn_perception.offline.train_dhz import train

    cfg = config_from_args(args)
    summary = train(cfg)
    best = Path(args.out) / "best.safetensors"
    if summary["best_val_loss"] is None:
        print(f"no validation set (--val-fraction 0): the last epoch's weights: {best}")
    else:
        print(f"best validation loss {summary['best_val_loss']:.5f}; weights: {best}")
    return 0
