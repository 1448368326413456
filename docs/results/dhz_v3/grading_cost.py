"""Cost of the dehazer's gradings per frame (global, and the contrast step after it), median of 15
runs, one thread, a textured synthetic frame at each size, the model having run at 256² (so the
contrast statistics are taken there). Run: .venv/bin/python docs/results/dhz_v3/grading_cost.py"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
import time

import cv2
import numpy as np

import snn_perception  # noqa: F401
from snn_perception.runtime.contrast import local_contrast
from snn_perception.runtime.engine import Engine
from snn_perception.runtime.grading import global_grading

cv2.setNumThreads(1)
model = Engine.load("dhz_v3", task="dehaze").info.contrast
rng = np.random.default_rng(0)
for h, w in ((256, 256), (512, 512), (480, 640), (1080, 1920)):
    src = cv2.resize(rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.uint8), (w, h))
    out = np.clip(src.astype(np.float32) / 255 * 1.1, 0, 1)
    tg, tc = [], []
    for _ in range(15):
        t0 = time.perf_counter()
        g = global_grading(src, out, (256, 256))
        t1 = time.perf_counter()
        local_contrast(src, g, model, (256, 256))
        tg.append(t1 - t0)
        tc.append(time.perf_counter() - t1)
    print(f"{w}x{h}: global {np.median(tg) * 1e3:.1f} ms, contrast step {np.median(tc) * 1e3:.1f} ms more")
