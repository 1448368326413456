"""Greedy soup (Wortsman et al., 2022) of dehaze checkpoints, scored by the trainer's validation loss.

Usage (repository root, venv set up): ``.venv/bin/python tools/dhz_greedy_soup.py CKPT... --out
OUT.safetensors [--data ../shared/data/lsui_pairs] [--split-seed 0]``. The candidates are sorted by
their own validation loss; starting from the best, each next one stays in the soup only if the
uniform average with it validates strictly better. Every score is printed; the chosen soup is
written with ``snn-perception average``'s metadata. Candidates must share the validation split.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

import torch

from snn_perception.models import registry
from snn_perception.offline.losses import LossWeights, RestorationLoss
from snn_perception.offline.soup import average_checkpoints
from snn_perception.offline.train_dhz import TrainDhzConfig, build_datasets, validate
from snn_perception.runtime.checkpoint import save_checkpoint


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", help="checkpoint paths (runs fine-tuned from the same weights)")
    p.add_argument("--out", required=True)
    p.add_argument("--data", nargs="+", default=["../shared/data/lsui_pairs"])
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    _, val, _, _ = build_datasets(TrainDhzConfig(data=args.data, val_fraction=args.val_fraction,
                                                 seed=args.split_seed))
    loss_fn = RestorationLoss(LossWeights())

    def score(paths: list[str]) -> tuple[float, dict]:
        if len(paths) == 1:
            from snn_perception.runtime.checkpoint import load_checkpoint

            ckpt = load_checkpoint(paths[0], expect_arch="snntrans_dhz")
            state, meta = ckpt.state_dict, ckpt.metadata
        else:
            state, meta = average_checkpoints(paths)
        model = registry.build("snntrans_dhz", meta)
        model.load_state_dict(state)
        return validate(model, val, args.timesteps, loss_fn, "cpu")["val_loss"], meta

    alone = sorted((score([w])[0], w) for w in args.weights)
    for loss, w in alone:
        print(json.dumps({"candidate": w, "val_loss": loss}))
    soup, best = [alone[0][1]], alone[0][0]
    for _, w in alone[1:]:
        loss, _ = score([*soup, w])
        kept = loss < best
        print(json.dumps({"try": [*soup, w], "val_loss": loss, "kept": kept}))
        if kept:
            soup, best = [*soup, w], loss
    print(json.dumps({"soup": soup, "val_loss": best}))
    if len(soup) == 1:
        print("the best single checkpoint beat every average; nothing written", file=sys.stderr)
        return 0
    state, meta = average_checkpoints(soup)
    meta["average"]["method"] = "greedy (validation loss)"
    meta["command"] = "tools/dhz_greedy_soup.py " + shlex.join(sys.argv[1:])
    save_checkpoint(args.out, state, meta)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
