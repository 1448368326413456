"""``snn-perception segment``: segment images, videos or folders of them with the Spiking-UNet.

For every input image ``NAME`` writes into ``--out``: ``NAME_mask.png`` (mono8 class ids, the same
image the segment node publishes on ``~/mask``), ``NAME_color.png`` (class colours) and
``NAME_overlay.png`` (colours blended over the input); for a video ``NAME_overlay.mp4`` (class ids
do not survive a lossy codec: take a bag through ``replay`` for masks); once per run ``legend.png``
(each class's colour, name and share of the pixels over all segmented frames), whose table is also
printed.
Runs through the runtime engine, so the numbers match what the robot sees. Bad input gives a
one-line message and exit code 2, before anything is written (every input is decoded and every
output path checked first; ``--skip-unreadable`` leaves damaged images out and lists them at the
end); earlier results in ``--out`` are replaced only with ``--overwrite``. ANN weights
(``unet_suim_ann``) have no timesteps: ``--timesteps`` is refused for them and the statistics say
``timesteps: null``.
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
from snn_perception.commands.image_batch import UsageError, add_batch_arguments

#: the files written per input NAME, as NAME_<kind>.png, in this order
KINDS = ("mask", "color", "overlay")
#: the class legend written once per run into --out
LEGEND = "legend.png"


EXAMPLES = (
    "snn-perception segment reef.jpg --out masks/  # reef_mask/_color/_overlay.png, legend.png",
    "snn-perception segment frames/ --out masks/ --timesteps 8 --alpha 0.4 --json stats.json",
    "snn-perception segment frames/ --out masks_ann/ --weights unet_suim_ann  # the ANN baseline",
    "snn-perception segment dive.mp4 --out masks/  # masks/dive_overlay.mp4, legend.png",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_examples(parser, EXAMPLES)
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image or video files, or folders of them (not recursive)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--weights", default=None, help=weights_help("segment"))
    parser.add_argument(
        "--timesteps", type=int, default=None, help="T, 1..64 (default: the weights'; spiking weights only)"
    )
    parser.add_argument("--size", default=None, help="run the model at HxW (default: the weights' size)")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the class colours, 0..1")
    parser.add_argument(
        "--json", type=Path, default=None, help="per-image (and per video frame) statistics (timings, energy)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_device_argument(parser)
    add_batch_arguments(parser)
    add_progress_argument(parser)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace earlier results in --out (default: refuse)"
    )


class _Legend:
    """The classes' names and colours, and the pixels of each over every frame segmented so far."""

    def __init__(self, class_names, class_colors, num_classes: int) -> None:
        from snn_perception.runtime.legend import legend_entries

        self._meta = (class_names, class_colors)
        self.names, self.colors = legend_entries(class_names, class_colors, num_classes)
        self.counts = np.zeros(len(self.names), np.int64)

    def add(self, ids: np.ndarray) -> dict[str, float]:
        """Count a frame's class ids; its share of each class."""
        from snn_perception.runtime.legend import class_shares, legend_entries

        per_image = np.bincount(ids.ravel(), minlength=len(self.names))
        if len(per_image) > len(self.counts):  # an id beyond the weights' classes (not expected)
            self.counts = np.pad(self.counts, (0, len(per_image) - len(self.counts)))
            self.names, self.colors = legend_entries(*self._meta, len(per_image))
        self.counts += per_image
        return dict(zip(self.names, class_shares(per_image), strict=True))


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UsageError as exc:
        print(f"snn-perception segment: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from snn_perception.commands.image_batch import check_out_folder, collect_images, counted
    from snn_perception.runtime.memory import FrameTooLarge

    # the inputs first: a wrong --out or a missing input is refused before torch loads (seconds)
    check_out_folder(
        args.out,
        f"NAME_mask.png, NAME_color.png, NAME_overlay.png per image, NAME_overlay.mp4 per video, {LEGEND}",
    )
    batch = collect_images(args.inputs)
    images = batch.images + batch.videos

    import cv2
    import torch

    from snn_perception.commands.enhance import summary_energy
    from snn_perception.commands.image_batch import (
        check_images,
        note_alpha,
        plan_outputs,
        print_left_out,
        read_rgb,
        split_work,
    )
    from snn_perception.runtime import progress
    from snn_perception.runtime.checkpoint import WeightsError
    from snn_perception.runtime.engine import Engine, EngineConfig, validate_timesteps
    from snn_perception.runtime.legend import (
        class_shares,
        colorize,
        legend_image,
        legend_table,
        overlay,
    )
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
    try:  # every output path is checked before the weights load and any image is read
        check_output_dir(args.out)
        plan = plan_outputs(
            images,
            args.out,
            lambda stem: [f"{stem}_{kind}.png" for kind in KINDS],
            args.overwrite,
            extra=[args.out / LEGEND],
            video_names=lambda stem: [f"{stem}_overlay{video_batch.SUFFIX}"],
        )
        check_json_output(args.json, images, created=args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        probe = Engine.load(args.weights, EngineConfig(device=args.device), task="segment")
        ann = not probe.info.spiking  # an ANN U-Net runs once: it has no timesteps
        if ann and args.timesteps is not None:
            raise ValueError(
                f"--timesteps {args.timesteps}: {args.weights or probe.info.weights_path} is an ANN "
                f"U-Net (arch {probe.info.arch!r}), which has no timesteps; drop --timesteps, or give "
                "spiking weights (e.g. spiking_unet)"
            )
        hw = size or probe.info.input_hw
        engine = Engine(
            probe.model,
            probe.info,
            EngineConfig(
                device=args.device, timesteps=args.timesteps, input_hw=hw, count_ops=args.json is not None
            ),
            probe.device,
        )
    except (WeightsError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    # before the folder is made: a damaged input leaves nothing behind (or is left out)
    batch = check_images(batch, args.skip_unreadable)
    work, videos = split_work(images, plan, batch)
    note_alpha("segment", batch)
    try:
        make_dir(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    info = engine.info
    legend = _Legend(info.class_names, info.class_colors, info.num_classes)

    def account(res) -> dict:
        """Add a frame's class ids to the legend; its record's statistics and class shares."""
        shares = legend.add(res.output)
        stats = dict(res.stats.__dict__)
        if ann:
            stats["timesteps"] = None  # the engine reports its default T, which an ANN ignores
        return {"stats": stats, "class_shares": shares}

    def overlay_of(rgb: np.ndarray, res) -> np.ndarray:
        return overlay(rgb, colorize(res.output, legend.colors), args.alpha)

    records = []
    for path, outs in progress.bar(work, desc="segment", disable=len(work) < 4):
        rgb = read_rgb(path)
        try:
            res = engine.run(rgb)
        except FrameTooLarge as exc:  # refused before inference: the outputs so far are kept
            raise UsageError(f"{path}: {exc}") from None
        ids = res.output
        color = colorize(ids, legend.colors)
        for out, img in zip(outs, (ids, color, overlay(rgb, color, args.alpha)), strict=True):
            ok = cv2.imwrite(str(out), img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            if not ok:
                raise UsageError(f"cannot write {out}")
        records.append({"input": str(path), **account(res)})
    for path, out in videos:
        records += video_batch.run_video(engine, path, out, overlay_of, account)
    names, colors, shares = legend.names, legend.colors, class_shares(legend.counts)
    legend_rgb = legend_image(names, colors, shares)
    if not cv2.imwrite(str(args.out / LEGEND), cv2.cvtColor(legend_rgb, cv2.COLOR_RGB2BGR)):
        raise UsageError(f"cannot write {args.out / LEGEND}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=2, default=str))
    steps = "– (ANN)" if ann else engine.config.timesteps or engine.info.default_timesteps
    done = counted(len(work), len(videos))
    print(f"segmented {done} into {args.out} (T={steps}){summary_energy(records)}")
    print(f"class legend ({args.out / LEGEND}), share of the pixels of the {done}:")
    print(legend_table(names, colors, shares))
    print_left_out(batch)
    return 0
