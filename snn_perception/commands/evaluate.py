"""``snn-perception evaluate --task {dehaze,segment}``: score models on a labelled folder."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from snn_perception.commands import (
    add_device_argument,
    add_examples,
    add_progress_argument,
    joined,
    size_type,
    timestep_list,
)
from snn_perception.runtime.grading import GRADINGS

SEGMENT_MODULE = "snn_perception.commands.evaluate_segment"
#: the non-learned dehaze baselines ``--method`` can score
METHODS = ("raw", "classical")
#: what ``--data`` must hold, per task
LAYOUT = {"dehaze": "raw/ and reference/ sub-folders", "segment": "images/ and masks/ sub-folders"}


EXAMPLES = (
    "snn-perception evaluate --task dehaze --data pairs/ --size 512x512 --weights dhz dhz_v2",
    "snn-perception evaluate --task dehaze --data pairs/ --split val --timesteps 1,2,4,8 --json val.json",
    "snn-perception evaluate --task segment --data suim/ --split val --timesteps 2,4,8",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument(
        "--task",
        choices=["dehaze", "segment"],
        required=True,
        help="dehaze: PSNR/SSIM/UIQM/UCIQE of raw/ vs reference/; segment: mIoU on masks/",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="DIR",
        help="dehaze: folders with raw/ + reference/; segment: images/ + masks/",
    )
    parser.add_argument(
        "--weights",
        nargs="*",
        default=None,
        metavar="NAME|PATH",
        help="models to evaluate (default: the shipped default for the task)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--size",
        type=size_type("--size", minimum=16),
        help="resize inputs and references to N×N or HxW (default: 512 for dehaze; for "
        "segment the weights' size, a multiple of 16)",
    )
    size.add_argument("--native", action="store_true", help="dehaze only: evaluate at each image's own size")
    parser.add_argument(
        "--timesteps",
        type=timestep_list,
        nargs="+",
        help="T values to sweep, e.g. 1,2,4,8 or 1 2 4 8 (default: the weights' T)",
    )
    parser.add_argument(
        "--method",
        nargs="*",
        default=None,
        choices=list(METHODS),
        help="dehaze only: non-learned methods to score beside the weights (default: both)",
    )
    parser.add_argument(
        "--split",
        choices=["all", "train", "val"],
        default="all",
        help="score only the training or validation split (same seed as training)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="share of each folder held out for validation, 0 < f < 1 (default 0.2; with --split train "
        "or val)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="split seed: the training run's --split-seed, or its --seed if it had none (default 0; with "
        "--split train or val)",
    )
    parser.add_argument(
        "--val-max",
        type=int,
        default=0,
        help="cap each folder's validation split as the training run's --val-max did, so --split val "
        "and --split train pick exactly the pairs the trainer validated and trained on (default 0: no cap)",
    )
    parser.add_argument(
        "--grading",
        nargs="+",
        choices=GRADINGS,
        default=None,
        help="dehaze only: score the network's pixels, the input graded as the network graded it "
        "(rows named NAME@T+global), or both (default: pixels)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=0,
        metavar="N",
        help="dehaze only: run the model at the largest size of the image's aspect ratio with at most "
        "N pixels, scoring at --size (0: at --size, the default)",
    )
    parser.add_argument("--no-uiqm", action="store_true", help="skip the no-reference metrics (faster)")
    add_device_argument(parser, what="where the models run")
    add_progress_argument(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images (N ≥ 1)")
    parser.add_argument("--json", type=Path, help="write every per-image number here")
    try:
        importlib.import_module(SEGMENT_MODULE).add_segment_arguments(parser)
    except ModuleNotFoundError:
        pass


def fail(message: str) -> int:
    """One line with the prefix every verb uses; exit code 2."""
    print(f"snn-perception evaluate: error: {message}", file=sys.stderr)
    return 2


def check_arguments(args: argparse.Namespace) -> None:
    """Every check that needs no model or image, so bad input is refused before any work."""
    from snn_perception.commands import check_threads
    from snn_perception.runtime.paths import check_json_output

    check_threads(args.threads)
    expected = f"expected a folder with {LAYOUT[args.task]}"
    for d in args.data:
        if not Path(d).exists():
            raise ValueError(f"--data {d}: folder does not exist ({expected})")
        if not Path(d).is_dir():
            raise ValueError(f"--data {d}: is a file, not a folder ({expected})")
    seen: dict[Path, str] = {}
    for d in args.data:  # one folder twice would count its images twice in every mean
        if Path(d).resolve() in seen:
            raise ValueError(
                f"--data {d}: the same folder as {seen[Path(d).resolve()]}; give each folder once"
            )
        seen[Path(d).resolve()] = d
    given = [f for f, v in (("--val-fraction", args.val_fraction), ("--seed", args.seed)) if v is not None]
    if given and args.split == "all":  # they choose the split; --split all scores every pair
        raise ValueError(
            f"{' and '.join(given)}: only with --split train or --split val (they choose the split)"
        )
    args.val_fraction = 0.2 if args.val_fraction is None else args.val_fraction
    args.seed = 0 if args.seed is None else args.seed
    if not 0.0 < args.val_fraction < 1.0:
        raise ValueError(
            f"--val-fraction {args.val_fraction}: must be strictly between 0 and 1 "
            "(the share held out for validation, e.g. 0.2)"
        )
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit {args.limit}: must be ≥ 1 (omit it to evaluate every image)")
    if args.val_max < 0 or (args.val_max and args.split == "all"):
        raise ValueError(
            f"--val-max {args.val_max}: must be ≥ 1 with --split val or --split train (the cap of each "
            "folder's validation split, as the training run's --val-max), or 0"
        )
    if args.val_max and args.task == "segment":
        raise ValueError(
            f"--val-max {args.val_max}: is for --task dehaze only (train unet does not cap its "
            "validation split); leave it out"
        )
    if args.task == "dehaze" and args.weights == [] and args.method == []:
        raise ValueError(
            "--weights and --method are both empty: nothing to score; "
            "name weights or a method (raw, classical)"
        )
    if args.task == "segment" and args.method is not None:
        raise ValueError(
            f"--method {' '.join(args.method)}: the raw/classical baselines are for --task dehaze only"
        )
    if args.task == "segment" and (args.grading is not None or args.max_pixels):
        raise ValueError("--grading and --max-pixels are for --task dehaze only")
    if args.max_pixels < 0:
        raise ValueError(f"--max-pixels {args.max_pixels}: must be 0 (the scoring size) or more")
    if getattr(args, "batch", 1) < 1:
        raise ValueError(f"--batch {args.batch}: must be ≥ 1 (images per forward pass)")
    weights = [Path(w) for w in args.weights or [] if Path(w).is_file()]
    check_json_output(args.json, weights)


def run(args: argparse.Namespace) -> int:
    if args.timesteps:
        args.timesteps = joined(args.timesteps)
    try:
        check_arguments(args)
    except ValueError as exc:
        return fail(str(exc))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.task == "segment":
        try:
            module = importlib.import_module(SEGMENT_MODULE)
        except ModuleNotFoundError:
            return fail("segmentation evaluation is not available in this install")
        return module.run_segment(args)
    return _run_dehaze(args)


def _run_dehaze(args: argparse.Namespace) -> int:
    from snn_perception.offline.evaluate_dehaze import DehazeEvalConfig, evaluate_dehaze, format_table
    from snn_perception.offline.pairs import PairsError
    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.progress import enabled as progress_enabled
    from snn_perception.runtime.weights import default_weights

    methods = list(METHODS) if args.method is None else args.method
    try:
        weights = args.weights if args.weights is not None else [default_weights("dehaze")]
    except (KeyError, LookupError, ValueError) as exc:
        weights = []
        only = ", ".join(methods)
        print(f"note: no default dehaze weights ({exc}); scoring only {only}", file=sys.stderr)
    cfg = DehazeEvalConfig(
        data=args.data,
        weights=weights,
        methods=methods,
        size=None if args.native else (args.size or (512, 512)),
        timesteps=args.timesteps,
        split=args.split,
        val_fraction=args.val_fraction,
        seed=args.seed,
        no_reference_metrics=not args.no_uiqm,
        device=args.device,
        limit=args.limit,
        val_max=args.val_max,
        gradings=args.grading or ["pixels"],
        max_model_pixels=args.max_pixels,
    )
    try:
        result = evaluate_dehaze(cfg, progress=progress_enabled())
    except (PairsError, WeightsError, FileNotFoundError) as exc:
        return fail(str(exc))
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"per-image results: {args.json}")
    return 0
