"""``snn-perception segment``: segment images or folders with the Spiking-UNet.

For every input ``NAME`` writes into ``--out``: ``NAME_mask.png`` (mono8 class ids, the same
image the segment node publishes on ``~/mask``), ``NAME_color.png`` (class colours) and
``NAME_overlay.png`` (colours blended over the input). Runs through the runtime engine, so the
numbers match what the robot sees. Bad input gives a one-line message and exit code 2, before
anything is written (every input is decoded and every output path checked first); earlier results
in ``--out`` are replaced only with ``--overwrite``. ANN weights (``unet_suim_ann``) have no
timesteps: ``--timesteps`` is refused for them and the statistics say ``timesteps: null``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from snn_perception.commands import check_threads

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see commands/enhance.py

#: the files written per input NAME, as NAME_<kind>.png, in this order
KINDS = ("mask", "color", "overlay")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--weights", default=None, help="shipped weights name or path (default: best available)"
    )
    parser.add_argument(
        "--timesteps", type=int, default=None, help="T, 1..64 (default: the weights'; spiking weights only)"
    )
    parser.add_argument("--size", default=None, help="run the model at HxW (default: the weights' size)")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the class colours, 0..1")
    parser.add_argument("--json", type=Path, default=None, help="per-image statistics (timings, energy)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                        help="cuda falls back to the CPU with a warning where no GPU exists")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace earlier results in --out (default: refuse)"
    )


def colorize(ids: np.ndarray, colors: list[tuple[int, int, int]] | tuple) -> np.ndarray:
    """H×W ids → H×W×3 uint8 RGB; ids without a colour get a fixed pseudo-random one."""
    n = max(int(ids.max()) + 1 if ids.size else 0, len(colors))
    rng = np.random.default_rng(0)
    lut = rng.integers(0, 256, (max(n, 256), 3), dtype=np.uint8)
    for i, c in enumerate(colors):
        lut[i] = c
    return lut[ids]


def overlay(rgb: np.ndarray, color: np.ndarray, alpha: float) -> np.ndarray:
    return (rgb.astype(np.float32) * (1 - alpha) + color.astype(np.float32) * alpha + 0.5).astype(np.uint8)


def run(args: argparse.Namespace) -> int:
    from snn_perception.commands.enhance import UsageError

    try:
        return _run(args)
    except UsageError as exc:
        print(f"snn-perception segment: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import cv2
    import torch
    from tqdm import tqdm

    from snn_perception.commands.enhance import (
        UsageError,
        check_images,
        collect_images,
        plan_outputs,
        read_rgb,
    )
    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.engine import Engine, EngineConfig, validate_timesteps
    from snn_perception.runtime.paths import check_json_output, check_output_dir, make_dir
    from snn_perception.runtime.preprocess import parse_hw

    try:
        if args.timesteps is not None:
            validate_timesteps(args.timesteps, "--timesteps")
        if not 0.0 <= args.alpha <= 1.0:
            raise ValueError(f"--alpha {args.alpha}: must be between 0 and 1")
        check_threads(args.threads)
        size = parse_hw(args.size) if args.size else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    images = collect_images(args.inputs)
    try:  # every output path is checked before the weights load and any image is read
        check_output_dir(args.out)
        plan = plan_outputs(
            images, args.out, lambda stem: [f"{stem}_{kind}.png" for kind in KINDS], args.overwrite
        )
        check_json_output(args.json, images, created=args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        probe = Engine.load(args.weights, EngineConfig(device=args.device), task="segment", require_task=True)
        ann = not probe.info.spiking  # an ANN U-Net runs once: it has no timesteps
        if ann and args.timesteps is not None:
            raise ValueError(
                f"--timesteps {args.timesteps}: {args.weights or probe.info.weights_path} is an ANN "
                f"U-Net (arch {probe.info.arch!r}), which has no timesteps; drop --timesteps, or give "
                "spiking weights (e.g. spiking_unet)"
            )
        hw = size or probe.info.input_hw
        engine = Engine(probe.model, probe.info, EngineConfig(
            device=args.device, timesteps=args.timesteps, input_hw=hw, count_ops=args.json is not None),
            probe.device)
    except (WeightsError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    check_images(images)  # before the folder is made: a damaged input leaves nothing behind
    try:
        make_dir(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    colors = engine.info.class_colors
    records = []
    for path, outs in tqdm(list(zip(images, plan, strict=True)), desc="segment", disable=len(images) < 4):
        rgb = read_rgb(path)
        res = engine.run(rgb)
        ids = res.output
        color = colorize(ids, colors)
        for out, img in zip(outs, (ids, color, overlay(rgb, color, args.alpha)), strict=True):
            ok = cv2.imwrite(str(out), img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            if not ok:
                raise UsageError(f"cannot write {out}")
        stats = dict(res.stats.__dict__)
        if ann:
            stats["timesteps"] = None  # the engine reports its default T, which an ANN ignores
        records.append({"input": str(path), "stats": stats})
    if args.json:
        args.json.write_text(json.dumps(records, indent=2, default=str))
    steps = "– (ANN)" if ann else engine.config.timesteps or engine.info.default_timesteps
    print(f"segmented {len(images)} image(s) into {args.out} (T={steps})")
    return 0
