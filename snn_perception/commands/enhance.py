"""``snn-perception enhance``: dehaze images or folders with snnTrans-DHZ.

Writes one PNG per input (same file stem) into ``--out``; ``--save-float`` adds the unclamped
float32 output as ``.npy`` (3×H×W), ``--json`` per-image statistics (timings, spike rates,
synaptic operations, MACs, estimated energy). Bad input gives a one-line message and exit code 2,
before anything is written: every input is decoded and every output path checked first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from snn_perception.commands import check_threads
from snn_perception.runtime.image_codec import ImageDecodeError, read_image_file
from snn_perception.runtime.paths import (
    check_json_output,
    check_output_dir,
    make_dir,
    refuse_existing_outputs,
    refuse_input_clash,
    refuse_input_folder,
)

# Idle OpenMP workers sleep instead of spinning: with the default spin-wait, two torch threads on
# a 2-core machine shared with another busy process ran a 512×512 frame in ~4 s instead of 0.2 s.
# Takes effect only if torch is not imported yet (as when run through the CLI).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


class UsageError(Exception):
    """A problem with the command line or its inputs (exit code 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("--out", required=True, type=Path, help="output folder for the enhanced PNGs")
    parser.add_argument(
        "--weights", default=None, help="shipped weights name or path (default: best available)"
    )
    parser.add_argument(
        "--timesteps", type=int, default=None, help="spiking timesteps T, 1..64 (default: weights')"
    )
    parser.add_argument(
        "--size", default=None, help="run the model at HxW (e.g. 512x512); output keeps input size"
    )
    parser.add_argument(
        "--save-float", action="store_true", help="also write the unclamped output as .npy (3xHxW)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="write per-image statistics to this JSON file"
    )
    parser.add_argument(
        "--count-ops",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="count spikes/SOPs/MACs/energy (default: on when --json is given)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument(
        "--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
        help="tf32 (CUDA) and bf16 are faster but inexact (opt-in)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace earlier results in --out (default: refuse)"
    )


def collect_images(inputs: list[str]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted, not recursive)."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            imgs = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not imgs:
                raise UsageError(f"folder {p} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found.extend(imgs)
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                raise UsageError(f"{p}: not an image file (accepted: {', '.join(sorted(IMAGE_SUFFIXES))})")
            found.append(p)
        else:
            raise UsageError(f"input {p} does not exist")
    return found


def plan_outputs(
    images: Sequence[Path], out: Path, names: Callable[[str], Sequence[str]], overwrite: bool = False
) -> list[list[Path]]:
    """Every output path of every image (``names(stem)`` → file names in ``out``), fixed before any work.

    Refuses two images writing the same file, any output that is one of the inputs, an ``out`` that
    is an input folder (results there would be read as inputs next time) and, unless ``overwrite``,
    outputs that already exist, so a refusal happens before anything is written or overwritten.
    """
    owner: dict[Path, Path] = {}
    plan: list[list[Path]] = []
    for img in images:
        outs = [out / n for n in names(img.stem)]
        clash = [o for o in outs if o.resolve() in owner]
        if clash:
            first = owner[clash[0].resolve()]
            if first.resolve() == img.resolve():
                raise UsageError(f"input {img} is given twice (as a file or inside a folder); give it once")
            raise UsageError(
                f"{first} and {img} would write the same output file(s) "
                f"{', '.join(o.name for o in clash)} in {out}; rename one or run them separately"
            )
        owner.update((o.resolve(), img) for o in outs)
        plan.append(outs)
    try:
        refuse_input_clash([o for outs in plan for o in outs], images, f"--out {out}: output")
        refuse_input_folder(out, images)
        refuse_existing_outputs([o for outs in plan for o in outs], overwrite, f"--out {out}")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return plan


def read_rgb(path: Path) -> np.ndarray:
    """An input image as RGB uint8; damaged files (a truncated JPEG or PNG too) are a UsageError."""
    try:
        return read_image_file(path)
    except ImageDecodeError as exc:
        raise UsageError(str(exc)) from None


def check_images(images: Sequence[Path]) -> None:
    """Decode every input before any work, so a damaged file is refused before anything is written.

    Decoding costs little next to the model; the message names the first two bad files and the count.
    """
    bad: list[str] = []
    for path in images:
        try:
            read_image_file(path)
        except ImageDecodeError as exc:
            bad.append(str(exc))
    if len(bad) == 1:
        raise UsageError(bad[0])
    if bad:
        more = f"; … ({len(bad) - 2} more)" if len(bad) > 2 else ""
        shown = "; ".join(bad[:2])
        raise UsageError(f"{len(bad)} of {len(images)} inputs are not readable images: {shown}{more}")


def write_png(path: Path, rgb01: np.ndarray) -> None:
    import cv2

    from snn_perception.runtime.preprocess import float_to_uint8

    u8 = float_to_uint8(rgb01)
    if not cv2.imwrite(str(path), cv2.cvtColor(u8, cv2.COLOR_RGB2BGR)):
        raise UsageError(f"cannot write {path}")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UsageError as exc:
        print(f"snn-perception enhance: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.engine import Engine, EngineConfig, validate_timesteps
    from snn_perception.runtime.preprocess import parse_hw

    try:
        if args.timesteps is not None:
            validate_timesteps(args.timesteps, "--timesteps")
        size = parse_hw(args.size) if args.size else None
        check_threads(args.threads)
        count = args.count_ops if args.count_ops is not None else args.json is not None
        config = EngineConfig(
            device=args.device,
            timesteps=args.timesteps,
            count_ops=count,
            input_hw=size,
            precision=args.precision,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    images = collect_images(args.inputs)
    try:  # every output path is checked before the weights load and any image is read
        check_output_dir(args.out)
        plan = plan_outputs(
            images,
            args.out,
            lambda stem: [f"{stem}.png", *([f"{stem}.npy"] if args.save_float else [])],
            args.overwrite,
        )
        check_json_output(args.json, images, created=args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        engine = Engine.load(args.weights, config, task="dehaze", require_task=True)
    except WeightsError as exc:
        raise UsageError(str(exc)) from None
    check_images(images)  # before the folder is made: a damaged input leaves nothing behind
    try:
        make_dir(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    records = []
    for i, (path, outs) in enumerate(zip(images, plan, strict=True), 1):
        result = engine.run(read_rgb(path))
        out_png = outs[0]
        write_png(out_png, result.output)
        record = {"input": str(path), "output": str(out_png), "stats": result.stats.as_dict()}
        if args.save_float:
            out_npy = outs[1]
            np.save(out_npy, np.ascontiguousarray(result.output.transpose(2, 0, 1)))
            record["output_float"] = str(out_npy)
        records.append(record)
        s = result.stats
        energy = f", {s.energy_j * 1e6:.1f} µJ" if s.ops_counted else ""
        print(
            f"[{i}/{len(images)}] {path.name} → {out_png.name} "
            f"({s.inference_ms:.0f} ms, T={s.timesteps}{energy})"
        )

    if args.json is not None:
        info = engine.info
        doc = {
            "weights": {
                "path": info.weights_path,
                "id": info.weights_id,
                "arch": info.arch,
                "variant": info.variant,
            },
            "images": records,
        }
        try:
            args.json.write_text(json.dumps(doc, indent=2))
        except OSError as exc:
            raise UsageError(f"cannot write {args.json}: {exc}") from None
    return 0
