"""``snn-perception enhance``: dehaze images, videos or folders of them with snnTrans-DHZ.

Writes one PNG per image and one MP4 per video (same file stem, a video at its own size and frame
rate) into ``--out``; ``--save-float`` adds, for images, the unclamped
float32 output as ``.npy`` (3×H×W), ``--json`` per-image statistics (timings, spike rates,
synaptic operations, MACs, estimated energy in mJ). Bad input gives a one-line message and exit
code 2, before anything is written: every input is decoded and every output path checked first
(``--skip-unreadable`` leaves damaged images out instead; a closing summary lists what was left out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from snn_perception.commands import (
    add_device_argument,
    add_examples,
    add_progress_argument,
    check_threads,
    video_batch,
    weights_help,
)
from snn_perception.commands.image_batch import (
    UsageError,
    add_batch_arguments,
    check_images,
    check_out_folder,
    collect_images,
    counted,
    note_alpha,
    plan_outputs,
    print_left_out,
    read_rgb,
    split_work,
)
from snn_perception.runtime.grading import GRADINGS
from snn_perception.runtime.memory import DEFAULT_MAX_MODEL_PIXELS
from snn_perception.runtime.paths import check_json_output, check_output_dir, make_dir

EXAMPLES = (
    "snn-perception enhance dive/*.jpg --out enhanced/",
    "snn-perception enhance dive.mp4 --out enhanced/  # enhanced/dive.mp4, same size and frame rate",
    "snn-perception enhance frames/ --out enhanced/ --size 512x512 --skip-unreadable  # a folder at 512x512",
    "snn-perception enhance sand.png --out enhanced/ --strength 0.6  # temper a colour overshoot",
    "snn-perception enhance 4k/ --out enhanced/ --grading global --max-pixels 65536  # fast, full detail",
    "snn-perception enhance dive/*.jpg --out enhanced/ --weights dhz_v2 --timesteps 8 --json stats.json",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image or video files, or folders of them (not recursive)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder: NAME.png per image, NAME.mp4 per video"
    )
    parser.add_argument("--weights", default=None, help=weights_help("dehaze"))
    parser.add_argument(
        "--timesteps", type=int, default=None, help="spiking timesteps T, 1..64 (default: weights')"
    )
    parser.add_argument(
        "--size", default=None, help="run the model at HxW (e.g. 512x512); output keeps input size"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_MODEL_PIXELS,
        metavar="N",
        help=f"larger images run the model at the largest size of their aspect ratio with at most N "
        f"pixels, the output resized back to the image's size; 0 = each image's own size (default "
        f"{DEFAULT_MAX_MODEL_PIXELS}: 640x480, ~0.26 s and 0.7 GiB per image at T=4 on 2 cores; "
        "1080p at its own size takes ~1.6 s and 2.7 GiB); --size wins",
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="0..1: how much of the output to keep, blended with the input (default 1: all of it); "
        "lower it where colours overshoot (white sand or grey scenes turning pink)",
    )
    parser.add_argument(
        "--grading",
        choices=GRADINGS,
        default="pixels",
        help="pixels: write the network's output (default); global: write the image graded as the "
        "network graded it (one colour matrix per image, fitted to its output), which keeps the "
        "image's own detail, so a small --max-pixels costs no sharpness, but cannot remove haze "
        "that varies across the image; contrast: global, then local contrast as strong as each image "
        "calls for (needs weights with a fitted contrast model)",
    )
    parser.add_argument(
        "--save-float",
        action="store_true",
        help="also write the unclamped output as .npy (3xHxW; images only)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="write per-image (and per video frame) statistics to this JSON file",
    )
    parser.add_argument(
        "--count-ops",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="count spikes/SOPs/MACs/energy (default: on when --json is given)",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--precision",
        choices=["fp32", "tf32", "bf16"],
        default="fp32",
        help="tf32 (CUDA) and bf16 are faster but inexact (opt-in)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    add_batch_arguments(parser)
    add_progress_argument(parser)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace earlier results in --out (default: refuse)"
    )


def write_png(path: Path, image: np.ndarray) -> None:
    """An ``H×W×3`` RGB or ``H×W`` grey uint8 image → PNG (a grey input is written grey)."""
    import cv2

    if not cv2.imwrite(str(path), image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise UsageError(f"cannot write {path}")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UsageError as exc:
        print(f"snn-perception enhance: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from snn_perception.runtime.memory import FrameTooLarge

    # the inputs first: a wrong --out or a missing input is refused before torch loads (seconds)
    check_out_folder(args.out, "NAME.png per image, NAME.mp4 per video")
    batch = collect_images(args.inputs)
    images = batch.images + batch.videos
    if args.save_float and batch.videos:
        raise UsageError(
            f"--save-float writes images' outputs only ({batch.videos[0]} is a video); "
            "run the videos without it"
        )

    import torch

    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.engine import Engine, EngineConfig, validate_timesteps
    from snn_perception.runtime.preprocess import finish_dehaze, is_grey, parse_hw

    try:
        if args.timesteps is not None:
            validate_timesteps(args.timesteps, "--timesteps")
        if not 0.0 <= args.strength <= 1.0:
            raise ValueError(
                f"--strength {args.strength}: must be between 0 (the input) and 1 (the full output)"
            )
        size = parse_hw(args.size) if args.size else None
        if args.max_pixels < 0:
            raise ValueError(f"--max-pixels {args.max_pixels}: must be 0 (each image's own size) or more")
        check_threads(args.threads)
        count = args.count_ops if args.count_ops is not None else args.json is not None
        config = EngineConfig(
            device=args.device,
            timesteps=args.timesteps,
            count_ops=count,
            input_hw=size,
            max_model_pixels=args.max_pixels,
            precision=args.precision,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:  # every output path is checked before the weights load and any image is read
        check_output_dir(args.out)
        plan = plan_outputs(
            images,
            args.out,
            lambda stem: [f"{stem}.png", *([f"{stem}.npy"] if args.save_float else [])],
            args.overwrite,
            video_names=lambda stem: [f"{stem}{video_batch.SUFFIX}"],
        )
        check_json_output(args.json, images, created=args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        engine = Engine.load(args.weights, config, task="dehaze")
    except WeightsError as exc:
        raise UsageError(str(exc)) from None
    if args.grading == "contrast" and engine.info.contrast is None:
        raise UsageError(
            f"--grading contrast: weights {engine.info.weights_path} carry no contrast model "
            "(fit one with tools/dhz_contrast_fit.py --save); use --grading global or pixels with them"
        )
    # before the folder is made: a damaged input leaves nothing behind (or is left out)
    batch = check_images(batch, args.skip_unreadable)
    work, videos = split_work(images, plan, batch)
    note_alpha("enhance", batch)
    try:
        make_dir(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    def finish(rgb: np.ndarray, result, mono: bool | None = None) -> np.ndarray:
        """The published image of a frame (an image or a video's): strength, grading, grey kept grey."""
        mono = is_grey(rgb) if mono is None else mono
        return finish_dehaze(
            result.output, rgb, args.strength, mono, args.grading, result.stats.model_hw, engine.info.contrast
        )

    records = []
    for i, (path, outs) in enumerate(work, 1):
        rgb = read_rgb(path)
        try:
            result = engine.run(rgb)
        except FrameTooLarge as exc:  # refused before inference: the outputs so far are kept
            raise UsageError(f"{path}: {exc}") from None
        out_png = outs[0]
        mono = is_grey(rgb)  # a greyscale photo stays grey instead of taking on the learned tint
        write_png(out_png, finish(rgb, result, mono))
        record = {"input": str(path), "output": str(out_png), "stats": result.stats.as_dict()}
        if mono:
            record["mono"] = True
        if args.save_float:
            out_npy = outs[1]
            np.save(out_npy, np.ascontiguousarray(result.output.transpose(2, 0, 1)))
            record["output_float"] = str(out_npy)
        records.append(record)
        s = result.stats
        energy = f", {s.energy_j * 1e3:.3f} mJ" if s.ops_counted else ""
        print(
            f"[{i}/{len(work)}] {path.name} → {out_png.name} "
            f"({s.inference_ms:.0f} ms, T={s.timesteps}{energy})"
        )

    for path, out_mp4 in videos:
        records += video_batch.run_video(engine, path, out_mp4, finish)

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
    print(f"enhanced {counted(len(work), len(videos))} into {args.out}{summary_energy(records)}")
    print_left_out(batch)
    return 0


def summary_energy(records: list[dict]) -> str:
    """', mean X mJ/frame' when the operations were counted (mJ: the unit of every report)."""
    counted = [r["stats"]["energy_j"] for r in records if r["stats"].get("ops_counted")]
    return f", mean {sum(counted) / len(counted) * 1e3:.3f} mJ/frame (estimated)" if counted else ""
