#!/usr/bin/env python3
"""Can a per-frame strength of local contrast serve every kind of water? (an analysis for #17)

    tools/dhz_contrast_fit.py [--data ../shared/data] [--weights dhz_v2] [--clip 1.5]
                              [--euvp-train 300] [--ridge 1.0] [--weighting equal|db]
                              [--json OUT] [--save WEIGHTS_OUT]

The dehazer's output is carried onto the raw frame by its global grading (``G``, as the node's
``grading=global`` does); ``C`` is ``G`` after CLAHE on the luminance (clip ``--clip``). A frame
gets ``G + α·(C − G)``. For every *training* pair of the four sources (LSUI at 512², EUVP dark,
UIEB real and UFO-120 at 256²; ``--euvp-train`` EUVP pairs drawn with seed 0) the best α in the
least-squares sense is computed against the reference, clipped to [0, 1], and a ridge regression
(each source weighing the same; within a source every frame alike, or with ``--weighting db`` by
the dB a wrong α costs it) learns it from ten statistics of the raw frame and of ``G`` and ``C``.
It then predicts α on every source's *validation* split (seed 0, 20 %, ≤ 40 pairs: the splits
training held out) and reports PSNR / SSIM for ``G``, ``C``, the predicted α (``auto``) and
the per-frame best α (``oracle_alpha``, which reads the reference: an upper bound, not a method).
``euvp_test23`` is not read. Why: a fixed CLAHE passes the UIEB check but costs EUVP and UFO-120
dearly (``docs/results/dhz_v2/contrast_probe``); this measures whether the strength can be told
from the frame alone. ``--save`` writes a copy of the weights carrying the fitted model in their
metadata (what the ``contrast`` grading of the node, ``enhance`` and ``evaluate`` reads).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SOURCES = (("uieb_real", 256), ("lsui_pairs", 512), ("euvp_dark", 256), ("ufo120_sample", 256))


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding the sources")
    p.add_argument("--weights", default="dhz_v2", help="dehazer weights (name or path)")
    p.add_argument("--clip", type=float, default=1.5, help="CLAHE clip limit of C (> 0)")
    p.add_argument("--euvp-train", type=int, default=300, help="EUVP dark training pairs drawn (≥ 1)")
    p.add_argument("--ridge", type=float, default=1.0, help="ridge penalty on standardised features (≥ 0)")
    p.add_argument(
        "--weighting",
        choices=("equal", "db"),
        default="equal",
        help="within a source: every frame alike, or by the dB a wrong strength costs it "
        "(default: %(default)s)",
    )
    p.add_argument("--json", type=Path, help="write the table here")
    p.add_argument("--save", type=Path, help="write the weights with the fitted contrast model here")
    args = p.parse_args(argv)
    if not args.clip > 0:
        p.error(f"--clip {args.clip}: must be > 0, e.g. 1.5")
    if args.euvp_train < 1:
        p.error(f"--euvp-train {args.euvp_train}: must be at least 1")
    if not args.ridge >= 0:
        p.error(f"--ridge {args.ridge}: must be ≥ 0")
    if args.save is not None and (args.save.suffix != ".safetensors" or args.save.exists()):
        p.error(f"--save {args.save}: must be a new .safetensors path")
    from snn_perception.runtime.weights import WeightsError, resolve

    try:  # before minutes of inference, not after
        resolve(args.weights)
    except WeightsError as exc:
        p.error(f"--weights: {exc}")
    missing = [n for n, _ in SOURCES if not (args.data / n / "raw").is_dir()]
    if missing:
        p.error(f"--data {args.data}: no raw/ folder for {', '.join(missing)}")
    return args


def _frames(args: argparse.Namespace, split: str) -> list[dict]:
    import cv2

    from snn_perception.offline.contrast_fit import best_strength, strength_cost
    from snn_perception.offline.pairs import list_pairs, resize_float, split_pairs
    from snn_perception.runtime.contrast import clahe_luminance, frame_features
    from snn_perception.runtime.engine import Engine, EngineConfig
    from snn_perception.runtime.grading import apply_grading, fit_grading, float_to_uint8

    def rgb(path: Path, hw: tuple[int, int]) -> np.ndarray:
        return resize_float(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), hw)

    def u8(x: np.ndarray) -> np.ndarray:
        return x if x.dtype == np.uint8 else float_to_uint8(x)

    frames = []
    for name, size in SOURCES:
        train, val = split_pairs(list_pairs(args.data / name), 0.2, 0)
        pairs = val[:40] if split == "val" else list(train)
        if split == "train" and name == "euvp_dark":
            random.Random(0).shuffle(pairs)
            pairs = pairs[: args.euvp_train]
        hw = (size, size)
        engine = Engine.load(args.weights, EngineConfig(input_hw=hw), task="dehaze")
        for raw_path, ref_path in pairs:
            raw8, ref = u8(rgb(raw_path, hw)), rgb(ref_path, hw)
            g8 = u8(apply_grading(raw8, fit_grading(raw8, u8(engine.run(raw8, timesteps=4).output))))
            c8 = clahe_luminance(g8, args.clip)
            g, c = g8.astype(np.float64) / 255.0, c8.astype(np.float64) / 255.0
            best = best_strength(g, c, ref)
            frames.append(
                {
                    "source": name,
                    "x": frame_features(raw8, g8, c8),
                    "best": best,
                    "cost": strength_cost(g, c, ref, best),
                    "g": g,
                    "c": c,
                    "ref": ref,
                }
            )
        print(f"{split} {name}: {len(pairs)} pairs", file=sys.stderr)
    return frames


def run(argv: list[str] | None = None) -> int:
    args = _args(argv)
    from snn_perception.offline.contrast_fit import fit_contrast, save_with_contrast
    from snn_perception.offline.metrics import psnr, ssim

    train, val = _frames(args, "train"), _frames(args, "val")
    fitted_on = (
        f"weights {args.weights}; training splits (seed 0, 20 % held out, ≤ 40 validation pairs per source) "
        f"of {', '.join(n for n, _ in SOURCES)}; {args.euvp_train} EUVP pairs; ridge {args.ridge}; "
        f"frames weighted {args.weighting}"
    )
    model = fit_contrast(
        np.array([f["x"] for f in train]),
        np.array([f["best"] for f in train]),
        [f["source"] for f in train],
        args.clip,
        args.ridge,
        fitted_on,
        np.array([f["cost"] for f in train]) if args.weighting == "db" else None,
    )
    scores: dict[str, dict[str, list[float]]] = {}
    for f in val:
        alpha = model.strength(f["x"])
        g, c = f["g"], f["c"]
        for method, img in (
            ("G", g),
            ("C", c),
            ("auto", g + alpha * (c - g)),
            ("oracle_alpha", g + f["best"] * (c - g)),
        ):
            img = np.clip(img, 0.0, 1.0).astype(np.float32)
            row = scores.setdefault(f"{f['source']}/{method}", {"psnr": [], "ssim": [], "alpha": []})
            row["psnr"].append(psnr(img, f["ref"]))
            row["ssim"].append(ssim(img, f["ref"]))
            if method in ("auto", "oracle_alpha"):
                row["alpha"].append(alpha if method == "auto" else f["best"])
    table = {k: {m: float(np.mean(v)) if v else None for m, v in row.items()} for k, row in scores.items()}
    print(
        f"weights {args.weights}, CLAHE clip {args.clip}, frames weighted {args.weighting}, "
        f"train frames {len(train)}, val frames {len(val)}"
    )
    for key, row in table.items():
        alpha = "" if row["alpha"] is None else f"  mean alpha {row['alpha']:.2f}"
        print(f"  {key:28s} {row['psnr']:6.2f} dB  SSIM {row['ssim']:.3f}{alpha}")
    train_alpha = {n: float(np.mean([f["best"] for f in train if f["source"] == n])) for n, _ in SOURCES}
    print(
        "  best alpha on the training pairs, mean per source:",
        {k: round(v, 2) for k, v in train_alpha.items()},
    )
    if args.json:
        meta = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        out = {"args": meta, "scores": table, "train_best_alpha": train_alpha, "model": model.to_dict()}
        args.json.write_text(json.dumps(out, indent=1))
    if args.save:
        print(f"wrote {save_with_contrast(args.weights, model, args.save)}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
