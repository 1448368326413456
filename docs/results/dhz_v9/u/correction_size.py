"""How much `u` changes a frame at each T, against how much its reference differs from it.

Mean |output - raw| and |reference - raw| (RGB in [0, 1], 256²) over the first 18 training pairs of
three sources (all of UFO-120's), and over the half of them whose reference is closest to the raw
frame. Run from the repository root: .venv/bin/python docs/results/dhz_v9/u/correction_size.py
"""

import os
from pathlib import Path

import numpy as np

from snn_perception.offline.pairs import list_pairs, read_rgb, resize_float, split_pairs
from snn_perception.runtime.engine import Engine, EngineConfig

DATA = Path(os.environ.get("SNN_SHARED_DIR", "../shared")) / "data"
engine = Engine.load("runs/dhz_v9u/best.safetensors", EngineConfig(input_hw=(256, 256)))
for source in ("ufo120_sample", "lsui_pairs", "uieb_real"):
    train, _ = split_pairs(list_pairs(DATA / source), 0.2, 0)
    rows = []
    for raw_path, ref_path in train[:18]:
        x = resize_float(read_rgb(raw_path), (256, 256))
        need = np.abs(resize_float(read_rgb(ref_path), (256, 256)) - x).mean()
        rows.append(
            [need]
            + [np.abs(np.clip(engine.run(x, timesteps=t).output, 0, 1) - x).mean() for t in (1, 2, 4, 8)]
        )
    a = np.array(rows)
    close = a[:, 0] < np.median(a[:, 0])
    print(
        f"{source:14s} |ref-raw| {a[:, 0].mean():.3f}  |out-raw| T1/2/4/8 {np.round(a[:, 1:].mean(0), 3)}"
        f"  | closest half: |ref-raw| {a[close, 0].mean():.3f}  |out-raw| {np.round(a[close, 1:].mean(0), 3)}"
    )
