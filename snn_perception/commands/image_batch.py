"""Batch image input of ``enhance`` and ``segment``: what is read, what is left out, and why.

Every input is decided before the model runs: image files are decoded (a damaged one refuses the
whole command, or with ``--skip-unreadable`` is left out), and whatever a folder holds besides
images and videos (other files, sub-folders) is listed rather than skipped silently; videos are
read frame by frame (:mod:`video_batch`). At the end one summary lists every input that was left
out with its reason, so a long batch job says what it did not do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snn_perception.runtime.image_codec import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ImageDecodeError,
    file_has_alpha,
    read_image_file,
)
from snn_perception.runtime.paths import refuse_existing_outputs, refuse_input_clash, refuse_input_folder

#: what ``make-bag`` and ``bringup --source`` read as videos
#: an ``--out`` ending in one of these is a file name given where a folder is wanted
FILE_SUFFIXES = {*IMAGE_SUFFIXES, *VIDEO_SUFFIXES, ".gif", ".npy", ".json", ".txt", ".csv"}


class UsageError(Exception):
    """A problem with the command line or its inputs (exit code 2)."""


@dataclass
class Batch:
    """The images to process, in order, and the inputs left out with the reason for each."""

    images: list[Path]
    left_out: list[tuple[Path, str]] = field(default_factory=list)
    #: video files (each is read frame by frame: :mod:`video_batch`)
    videos: list[Path] = field(default_factory=list)
    #: images whose transparency is dropped (the models take RGB)
    alpha: list[Path] = field(default_factory=list)


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="leave out damaged or unreadable images and list them at the end (default: refuse the "
        "whole command before any work)",
    )


def accepted() -> str:
    """The file kinds the batch commands read, for their messages."""
    return f"images {', '.join(sorted(IMAGE_SUFFIXES))}; videos {', '.join(VIDEO_SUFFIXES)}"


def counted(images: int, videos: int) -> str:
    """'3 image(s)', '1 video(s)' or '3 image(s) and 1 video(s)': what a batch command did."""
    return " and ".join(f"{n} {what}" for n, what in ((images, "image(s)"), (videos, "video(s)")) if n)


def check_out_folder(out: Path, example: str) -> None:
    """``--out`` is a folder; a name such as ``result.png`` would silently become a folder of that name."""
    if out.suffix.lower() in FILE_SUFFIXES and not out.is_dir():
        raise UsageError(
            f"--out {out}: looks like a file name, but --out is a folder: the results are written "
            f"inside it ({example}); give a folder, e.g. --out {out.with_suffix('')}"
        )


def collect_images(inputs: Sequence[str]) -> Batch:
    """Files as given, folders expanded to their images and videos (sorted, not recursive).

    What a folder holds besides those is left out with its reason (hidden files excepted); another
    kind of file named directly is refused.
    """
    batch = Batch(images=[])
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            entries = sorted(q for q in p.iterdir() if not q.name.startswith("."))
            imgs = [q for q in entries if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES]
            vids = [q for q in entries if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES]
            others = [(q, _why_not(q)) for q in entries if q not in imgs and q not in vids]
            if not imgs and not vids:
                held = f"; it holds {len(others)} other entries, e.g. {others[0][0].name}" if others else ""
                raise UsageError(f"folder {p} holds no images or videos ({accepted()}){held}")
            batch.images.extend(imgs)
            batch.videos.extend(vids)
            batch.left_out.extend(others)
        elif p.is_file():
            if p.suffix.lower() in VIDEO_SUFFIXES:
                batch.videos.append(p)
            elif p.suffix.lower() in IMAGE_SUFFIXES:
                batch.images.append(p)
            else:
                raise UsageError(f"{p}: {_why_not(p)}")
        else:
            raise UsageError(f"input {p} does not exist")
    return batch


def _why_not(entry: Path) -> str:
    """Why a folder entry is not one of the inputs."""
    if entry.is_dir():
        return "a sub-folder; folders are not searched recursively (give it as an input of its own)"
    return f"not an image or video file (accepted: {accepted()})"


def plan_outputs(
    images: Sequence[Path],
    out: Path,
    names: Callable[[str], Sequence[str]],
    overwrite: bool = False,
    extra: Sequence[Path] = (),
    video_names: Callable[[str], Sequence[str]] | None = None,
) -> list[list[Path]]:
    """Every output path of every image (``names(stem)`` → file names in ``out``), fixed before any work.

    Refuses two images writing the same file, any output that is one of the inputs, an ``out`` that
    is an input folder (results there would be read as inputs next time) and, unless ``overwrite``,
    outputs that already exist, so a refusal happens before anything is written or overwritten.
    ``extra``: outputs of the whole batch (e.g. a legend), checked the same way. ``video_names``:
    the outputs of a video input (``images`` may hold videos), when they differ from an image's.
    """
    owner: dict[Path, Path] = {}
    plan: list[list[Path]] = []
    for img in images:
        is_video = video_names is not None and img.suffix.lower() in VIDEO_SUFFIXES
        outs = [out / n for n in (video_names if is_video else names)(img.stem)]
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
    every = [o for outs in plan for o in outs] + list(extra)
    try:
        refuse_input_clash(every, images, f"--out {out}: output")
        refuse_input_folder(out, images)
        refuse_existing_outputs(every, overwrite, f"--out {out}")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return plan


def read_rgb(path: Path) -> np.ndarray:
    """An input image as RGB uint8; damaged files (a truncated JPEG or PNG too) are a UsageError."""
    try:
        return read_image_file(path)
    except ImageDecodeError as exc:
        raise UsageError(str(exc)) from None


def check_images(batch: Batch, skip_unreadable: bool = False) -> Batch:
    """Decode every input before any work, so a damaged file is refused before anything is written.

    With ``skip_unreadable`` damaged files are left out instead (with their reason); the returned
    batch holds the readable images, also noting which had an alpha channel. Decoding costs little
    next to the model; a refusal names the first two bad files and the count. A video is opened
    and its first frame decoded.
    """
    from snn_perception.commands.video_batch import probe  # imports this module

    good: list[Path] = []
    good_videos: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for path in batch.images:
        try:
            read_image_file(path)
        except ImageDecodeError as exc:
            bad.append((path, str(exc).removeprefix(f"{path}: ")))
        else:
            good.append(path)
    for path in batch.videos:
        try:
            probe(path)
        except ValueError as exc:
            bad.append((path, str(exc)))
        else:
            good_videos.append(path)
    if bad and not skip_unreadable:
        if len(bad) == 1:
            raise UsageError(f"{bad[0][0]}: {bad[0][1]} (or pass --skip-unreadable to leave it out)")
        more = f"; … ({len(bad) - 2} more)" if len(bad) > 2 else ""
        shown = "; ".join(f"{p}: {why}" for p, why in bad[:2])
        kind = "images or videos" if batch.videos else "images"
        raise UsageError(
            f"{len(bad)} of {len(batch.images) + len(batch.videos)} inputs are not readable {kind}: "
            f"{shown}{more} (or pass --skip-unreadable to leave them out)"
        )
    if not good and not good_videos:
        total = len(batch.images) + len(batch.videos)
        raise UsageError(f"none of the {total} inputs can be read: {bad[0][0]}: {bad[0][1]}")
    alpha = [p for p in good if file_has_alpha(p)]
    return Batch(images=good, left_out=batch.left_out + bad, videos=good_videos, alpha=alpha)


def split_work(
    inputs: Sequence[Path], plan: Sequence[list[Path]], batch: Batch
) -> tuple[list[tuple[Path, list[Path]]], list[tuple[Path, Path]]]:
    """The checked ``batch``'s (image, its outputs) and (video, its output), in the order given;
    ``inputs``/``plan``: every input and its outputs from :func:`plan_outputs`."""
    readable, videos = set(batch.images), set(batch.videos)
    images = [(path, outs) for path, outs in zip(inputs, plan, strict=True) if path in readable]
    clips = [(path, outs[0]) for path, outs in zip(inputs, plan, strict=True) if path in videos]
    return images, clips


def note_alpha(verb: str, batch: Batch) -> None:
    """One line saying which inputs lose their transparency (the models see RGB only)."""
    if not batch.alpha:
        return
    named = ", ".join(str(p) for p in batch.alpha[:3])
    if len(batch.alpha) > 3:
        named += f", … ({len(batch.alpha) - 3} more)"
    print(
        f"snn-perception {verb}: note: alpha channel (transparency) dropped in {len(batch.alpha)} "
        f"input(s): {named}; the models see the RGB colours only",
        file=sys.stderr,
    )


def print_left_out(batch: Batch, stream=None) -> None:
    """The closing summary: every input not processed, one per line with its reason."""
    if not batch.left_out:
        return
    stream = sys.stdout if stream is None else stream
    print(f"left out {len(batch.left_out)} input(s):", file=stream)
    for path, why in batch.left_out:
        print(f"  {path}: {why}", file=stream)
