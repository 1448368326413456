"""The trainer's validation loss, PSNR and SSIM for any dehaze weights (the model-selection score).

Usage (repository root, venv set up): ``.venv/bin/python tools/dhz_val_loss.py WEIGHTS...
[--data PAIRS] [--val-fraction 0.2] [--split-seed 0] [--val-size 256]
[--timesteps 4]``. Scores each weights file exactly as ``train dhz`` validates (same split,
same resize, same loss), so runs, soups and checkpoints from elsewhere compare on one number.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from snn_perception.models import registry
from snn_perception.offline.dhz_mix import validate_sources as validate
from snn_perception.offline.losses import LossWeights, RestorationLoss
from snn_perception.offline.pairs import PairsError
from snn_perception.offline.train_dhz import TrainDhzConfig, build_datasets
from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, load_into
from snn_perception.runtime.weights import resolve

#: the project's training pairs, beside the repository (found from any working directory)
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lsui_pairs"


def add_split_arguments(p: argparse.ArgumentParser) -> None:
    """The options that decide the validation images and how they are scored (shared with the soup tool)."""
    p.add_argument(
        "--data",
        nargs="+",
        default=[str(DEFAULT_DATA)],
        help="raw/ + reference/ pair folders, as given to train dhz (default: %(default)s)",
    )
    p.add_argument("--val-fraction", type=float, default=0.2, help="as in training (default: %(default)s)")
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="the training runs' --split-seed (or their --seed if they had none)",
    )
    p.add_argument("--val-size", type=int, default=256, help="as in training (default: %(default)s)")
    p.add_argument("--timesteps", type=int, default=4, help="default: %(default)s")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")


def validation_scorer(args: argparse.Namespace) -> Callable[[torch.nn.Module], dict[str, float]]:
    """``score(model)`` → the trainer's val_loss / val_psnr / val_ssim on the split ``args`` names."""
    if args.threads < 1:
        raise ValueError(f"--threads {args.threads}: must be at least 1")
    if not 1 <= args.timesteps <= 64:
        raise ValueError(f"--timesteps {args.timesteps}: must be between 1 and 64")
    if args.val_fraction <= 0:
        raise ValueError(f"--val-fraction {args.val_fraction}: must be above 0 (it scores validation pairs)")
    cfg = TrainDhzConfig(
        data=args.data, val_fraction=args.val_fraction, seed=args.split_seed, val_size=args.val_size
    )
    val = build_datasets(cfg)[2]
    torch.set_num_threads(args.threads)
    loss = RestorationLoss(LossWeights())
    return lambda model: validate(model, val, args.timesteps, (), loss, torch.device("cpu"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", help="names or paths of dehaze weights")
    add_split_arguments(p)
    args = p.parse_args()
    paths = [resolve(w) for w in args.weights]  # a wrong name fails before the images are read
    score = validation_scorer(args)
    for w, path in zip(args.weights, paths, strict=True):
        ckpt = load_checkpoint(path, expect_arch="snntrans_dhz")
        model = registry.build("snntrans_dhz", ckpt.metadata)
        load_into(model, ckpt)
        print(json.dumps({"weights": w, "sha256": ckpt.sha256[:12], **score(model)}))
    return 0


def run_tool(main: Callable[[], int]) -> int:
    """``main()``, with bad weights, data or settings as one ``error:`` line and exit code 2."""
    try:
        return main()
    except (WeightsError, PairsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
