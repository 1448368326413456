"""``snn-perception evaluate --task {dehaze,segment}``: score models on a labelled folder."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

SEGMENT_MODULE = "snn_perception.commands.evaluate_segment"


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected HxW, e.g. 512x512") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"--size {text!r}: both sides must be at least 16")
    return h, w


def _timesteps(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timesteps {text!r}: expected integers, e.g. 1,2,4,8") from None
    bad = [v for v in values if not 1 <= v <= 64]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"--timesteps {text!r}: each value must be between 1 and 64")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=["dehaze", "segment"], required=True)
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR",
                        help="dehaze: folders with raw/ + reference/; segment: images/ + masks/")
    parser.add_argument("--weights", nargs="*", default=None, metavar="NAME|PATH",
                        help="models to evaluate (default: the shipped default for the task)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--size", type=_size, help="resize inputs and references to HxW (default 512x512)")
    size.add_argument("--native", action="store_true", help="evaluate at each image's own size")
    parser.add_argument("--timesteps", type=_timesteps, help="T values to sweep, e.g. 1,2,4,8")
    parser.add_argument("--method", nargs="*", default=["raw", "classical"], choices=["raw", "classical"],
                        help="non-learned methods to score beside the weights (dehaze)")
    parser.add_argument("--split", choices=["all", "train", "val"], default="all",
                        help="score only the training or validation split (same seed as training)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-uiqm", action="store_true", help="skip the no-reference metrics (faster)")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--json", type=Path, help="write every per-image number here")
    try:
        importlib.import_module(SEGMENT_MODULE).add_segment_arguments(parser)
    except ModuleNotFoundError:
        pass


def run(args: argparse.Namespace) -> int:
    if args.task == "segment":
        try:
            module = importlib.import_module(SEGMENT_MODULE)
        except ModuleNotFoundError:
            print("error: segmentation evaluation is not available in this install", file=sys.stderr)
            return 2
        return module.run_segment(args)
    return _run_dehaze(args)


def _run_dehaze(args: argparse.Namespace) -> int:
    from snn_perception.offline.evaluate_dehaze import DehazeEvalConfig, evaluate_dehaze, format_table
    from snn_perception.offline.pairs import PairsError
    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.weights import default_weights

    try:
        weights = args.weights if args.weights is not None else [default_weights("dehaze")]
    except (KeyError, LookupError, ValueError) as exc:
        weights = []
        only = ", ".join(args.method)
        print(f"note: no default dehaze weights ({exc}); scoring only {only}", file=sys.stderr)
    cfg = DehazeEvalConfig(
        data=args.data, weights=weights, methods=args.method,
        size=None if args.native else (args.size or (512, 512)), timesteps=args.timesteps,
        split=args.split, val_fraction=args.val_fraction, seed=args.seed,
        no_reference_metrics=not args.no_uiqm, device=args.device, limit=args.limit,
    )
    try:
        result = evaluate_dehaze(cfg)
    except (PairsError, WeightsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"per-image results: {args.json}")
    return 0
