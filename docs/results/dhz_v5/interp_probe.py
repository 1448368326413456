#!/usr/bin/env python3
"""Probe (#17): weights part-way from dhz_v3 toward the LSUI-only ``dhz``, scored by the rule.

    .venv/bin/python docs/results/dhz_v5/interp_probe.py [LAMBDA ...]   (default: 0 0.3)

``(1 − λ)·dhz_v3 + λ·dhz`` (``offline.soup.average``; dhz_v3's metadata, so its normalized read-out) is
scored with the trainer's validation (``validate_sources``) on the recipe's split: four sources,
LSUI at 512², 20 % held out with seed 0, at most 40 pairs each, the recipe's loss weights (MSE 1,
SSIM 1, TV 0.05), T = 4, and the read-outs at T = 1, 2 and 8. Why: ``dhz`` holds the LSUI grading
the checks compare against; the question is whether the rule's validation loss would accept any
of it. Prints one JSON line per λ. Reads ../shared/data beside the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from snn_perception.models import registry
from snn_perception.offline.dhz_mix import validate_sources
from snn_perception.offline.losses import LossWeights, RestorationLoss
from snn_perception.offline.soup import average
from snn_perception.offline.train_dhz import TrainDhzConfig, build_datasets
from snn_perception.runtime.checkpoint import load_checkpoint
from snn_perception.runtime.weights import resolve

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
SOURCES = ("lsui_pairs", "euvp_dark", "uieb_real", "ufo120_sample")


def main(lams: list[float]) -> None:
    cfg = TrainDhzConfig(
        data=[str(DATA / s) for s in SOURCES],
        source_resize=[512, 0, 256, 256],
        val_max=40,
        val_fraction=0.2,
        split_seed=0,
    )
    val = build_datasets(cfg)[2]
    torch.set_num_threads(2)
    loss = RestorationLoss(LossWeights(mse=1.0, ssim=1.0, tv=0.05))
    start, toward = load_checkpoint(resolve("dhz_v3")), load_checkpoint(resolve("dhz"))
    for lam in lams:
        state, _ = average([start, toward], [1 - lam, lam])
        model = registry.build("snntrans_dhz", start.metadata)
        model.load_state_dict(state)
        with torch.no_grad():
            row = validate_sources(model, val, 4, (1, 2, 8), loss, torch.device("cpu"))
        keep = {k: round(v, 5) for k, v in row.items() if k.startswith(("val_loss", "val_psnr"))}
        print(json.dumps({"lambda": lam, **keep}), flush=True)


def _lambdas(argv: list[str]) -> list[float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "lambdas", nargs="*", type=float, default=[0.0, 0.3], help="each in [0, 1] (default: 0 0.3)"
    )
    lams = p.parse_args(argv).lambdas
    bad = [lam for lam in lams if not 0.0 <= lam <= 1.0]
    if bad:
        p.error(f"lambda {bad[0]}: must be between 0 (dhz_v3) and 1 (dhz)")
    return lams


if __name__ == "__main__":
    main(_lambdas(sys.argv[1:]))
