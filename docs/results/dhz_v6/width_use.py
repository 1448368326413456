"""How much of the added width a widened snnTrans-DHZ uses: for each layer that reads the
transformer's channels, the RMS of the weights from the new channels against those from the old
ones (0 at the start of training: widening sets them to zero). A ratio near 0 says training has
not yet put the width to use; near 1, the new channels weigh as much as the old.

    .venv/bin/python docs/results/dhz_v6/width_use.py WEIGHTS [--narrow 64]
"""

from __future__ import annotations

import argparse

import torch

from snn_perception.models import registry
from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, load_into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a widened checkpoint (.safetensors)")
    parser.add_argument("--narrow", type=int, default=64, help="the width it was widened from")
    args = parser.parse_args()
    try:
        ckpt = load_checkpoint(args.weights, expect_arch="snntrans_dhz")
        model = registry.build("snntrans_dhz", ckpt.metadata)
        load_into(model, ckpt)
    except (WeightsError, ValueError) as exc:
        parser.error(str(exc))
    dim, old = model.cfg.dim, args.narrow
    if not old < dim:
        parser.error(f"--narrow {old} must be below the checkpoint's width {dim}")
    h = model.H_est
    rows = []
    for p in ("r", "l"):
        blk = getattr(h, f"{p}_snn_trans_Lx")[-1]
        for name, w in (
            (f"{p} block: q 1x1 (from residual)", blk.attn.q_conv[0].body[0].weight[:old, :, 0, 0]),
            (f"{p} block: mlp fc1 (from residual)", blk.mlp.fc1_conv.weight[:old, :, 0]),
            (f"{p} block: proj 1x1 (from attention)", blk.attn.proj_conv[0].body[0].weight[:old, :, 0, 0]),
        ):
            rows.append((name, w[:, :old], w[:, old:]))
    up1 = h.up1_Hx.weight  # [2·dim in, 32 out, 2, 2]: r's channels, then l's
    for i, p in enumerate(("r", "l")):
        base = i * dim
        rows.append((f"decoder up1 (from {p})", up1[base : base + old], up1[base + old : base + dim]))
    print(f"{args.weights}: width {dim}, widened from {old}")
    print(f"{'weights into old channels':40s} {'RMS from old':>13s} {'RMS from new':>13s} {'ratio':>7s}")
    for name, a, b in rows:
        ra, rb = a.pow(2).mean().sqrt().item(), b.pow(2).mean().sqrt().item()
        print(f"{name:40s} {ra:13.5f} {rb:13.5f} {rb / ra:7.3f}")


if __name__ == "__main__":
    with torch.no_grad():
        main()
