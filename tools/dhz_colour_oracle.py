#!/usr/bin/env python3
"""How much of a pair set's reference is a global colour transform of its raw image?

    tools/dhz_colour_oracle.py --data DIR [--size 256] [--split val|all] [--seed 0]
                               [--val-fraction 0.2] [--val-max 40] [--weights dhz dhz_v2 ...]
                               [--timesteps 4] [--clahe CLIP ...] [--json OUT]

For each pair (the validation split exactly as training held it out, or all pairs) this fits, by
least squares against the *reference*, a per-image 3×3 colour matrix plus offset (12 numbers) to
the raw image, to the classical method's output and to each dehazer's output, and reports mean
PSNR / SSIM with and without that fit. Why: it separates the two things a dehazer must get right.
A high score for ``raw+colour3x3`` means the reference differs from the raw image mostly by a
global colour grading; a dehazer whose output scores well only after the fit has the structure
right but the grading wrong, and one that stays low after it has lost structure. It also reports
``W->raw``: the dehazer's grading carried onto the raw image by a fit against the dehazer's output
(no reference used), i.e. what a "global colour from the network" output stage would score.
``--clahe``: also each of raw, the dehazers' outputs and their ``W->raw`` gradings after CLAHE on
the luminance with each clip limit (``X+claheC``): how much of what is left is local contrast.
An analysis for the dehazer's model card, not a method: the fits read the reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def colour_fit(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``x`` (H×W×3, [0, 1]) through the 3×3 matrix + offset that best maps it onto ``target``."""
    a = np.concatenate([x.reshape(-1, 3), np.ones((x.size // 3, 1), x.dtype)], 1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, target.reshape(-1, 3).astype(np.float64), rcond=None)
    return np.clip(a @ coef, 0.0, 1.0).reshape(x.shape).astype(np.float32)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[2].split(".")[0])
    p.add_argument("--data", required=True, help="a folder with raw/ and reference/")
    p.add_argument("--size", type=int, default=256, help="square size the pairs are scored at")
    p.add_argument("--split", choices=("val", "all"), default="val")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--val-max", type=int, default=40)
    p.add_argument("--weights", nargs="*", default=[], help="dehazer weights (names or paths)")
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--clahe", type=float, nargs="*", default=[], help="CLAHE clip limits to add rows for")
    p.add_argument("--json", type=Path, help="write the table here")
    args = p.parse_args(argv)
    bad = [c for c in args.clahe if not c > 0]
    if bad:
        p.error(f"--clahe {' '.join(map(str, bad))}: clip limits must be > 0, e.g. 1.0")
    if args.size < 16:
        p.error(f"--size {args.size}: must be at least 16")
    if not 0.0 < args.val_fraction < 1.0:
        p.error(f"--val-fraction {args.val_fraction}: must be in (0, 1)")
    if not 1 <= args.timesteps <= 64:
        p.error(f"--timesteps {args.timesteps}: must be 1 to 64")
    return args


def run(argv: list[str] | None = None) -> int:
    args = _args(argv)
    import cv2

    from snn_perception.offline.metrics import clahe_luminance, classical_enhance, psnr, ssim
    from snn_perception.offline.pairs import PairsError, list_pairs, resize_float, split_pairs
    from snn_perception.runtime.engine import Engine, EngineConfig

    try:
        pairs = list_pairs(Path(args.data))
    except PairsError as exc:
        print(f"dhz_colour_oracle.py: error: {exc}", file=sys.stderr)
        return 2
    if args.split == "val":
        _, pairs = split_pairs(pairs, args.val_fraction, args.seed)
        pairs = pairs[: args.val_max] if args.val_max > 0 else pairs
    if not pairs:
        print(
            f"dhz_colour_oracle.py: error: {args.data}: the {args.split} split holds no pair", file=sys.stderr
        )
        return 2
    hw = (args.size, args.size)
    try:
        engines = {w: Engine.load(w, EngineConfig(input_hw=hw), task="dehaze") for w in args.weights}
    except (FileNotFoundError, ValueError) as exc:  # WeightsError and WrongTaskError are ValueErrors
        print(f"dhz_colour_oracle.py: error: {exc}", file=sys.stderr)
        return 2
    scores: dict[str, list[tuple[float, float]]] = {}
    for raw_path, ref_path in pairs:
        raw8 = cv2.cvtColor(cv2.imread(str(raw_path)), cv2.COLOR_BGR2RGB)
        raw = resize_float(raw8, hw)
        ref = resize_float(cv2.cvtColor(cv2.imread(str(ref_path)), cv2.COLOR_BGR2RGB), hw)
        raw_u8 = np.round(raw * 255).astype(np.uint8)
        outs = {"raw": raw, "classical": classical_enhance(raw_u8).astype(np.float32) / 255.0}
        for name, engine in engines.items():
            out = engine.run(raw_u8, timesteps=args.timesteps).output
            outs[name] = out.astype(np.float32) / 255.0 if out.dtype == np.uint8 else out
            outs[f"{name}->raw"] = colour_fit(raw, outs[name])
        for name in [k for k in outs if "->" not in k]:
            outs[f"{name}+colour3x3"] = colour_fit(outs[name], ref)
        for clip in args.clahe:  # local contrast on top: no reference read
            for name in ["raw", *engines, *(f"{w}->raw" for w in engines)]:
                u8 = np.round(np.clip(outs[name], 0.0, 1.0) * 255).astype(np.uint8)
                outs[f"{name}+clahe{clip:g}"] = clahe_luminance(u8, clip).astype(np.float32) / 255.0
        for name, img in outs.items():
            scores.setdefault(name, []).append((psnr(img, ref), ssim(img, ref)))
    table = {
        name: {"psnr": float(np.mean([s[0] for s in v])), "ssim": float(np.mean([s[1] for s in v]))}
        for name, v in scores.items()
    }
    print(f"{args.data} ({args.split}, {len(pairs)} pairs, {args.size}², T = {args.timesteps})")
    for name, row in table.items():
        print(f"  {name:36s} {row['psnr']:6.2f} dB  SSIM {row['ssim']:.3f}")
    if args.json:
        meta = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"args": meta, "pairs": len(pairs), "scores": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run())
