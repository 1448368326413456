"""Turn a folder of images (optionally with ground truth) or a video into a rosbag2.

Folder layout: ``DIR/*.png|jpg…`` are the camera frames. Ground truth is taken from a sibling
``DIR/../reference/`` (or, when ``DIR`` itself holds ``raw/`` and ``reference/``, from those) with
the same file stems; it goes on a second topic with the same header stamps, so the replay can
match each frame to its reference by stamp.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from snn_perception.replay.bag_io import BagError, BagWriter

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_TOPIC = "/camera/image"
DEFAULT_REFERENCE_TOPIC = "/camera/reference"


@dataclass
class MakeBagResult:
    path: Path
    frames: int
    references: int
    topics: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


#: a ROS 2 topic name as a bag stores it: starts with / or a letter, then letters, digits, _ / ~ { }
_TOPIC_RE = re.compile(r"[A-Za-z/][A-Za-z0-9_/~{}]*")


def check_topic(name: str, what: str = "--topic") -> str:
    """A valid ROS topic name, else :class:`BagError` (a bad name makes a bag no ROS tool can play)."""
    if not _TOPIC_RE.fullmatch(name) or "//" in name or name.endswith("/"):
        raise BagError(
            f"{what} {name!r}: not a valid ROS topic name (start with / or a letter; then only letters, "
            "digits and _ / ~ { }; no '//' and no trailing '/'), e.g. /camera/image"
        )
    return name


def natural_key(p: Path) -> tuple:
    """'2.jpg' before '10.jpg'."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key
    )


def find_frames(source: Path) -> tuple[list[Path], dict[str, Path]]:
    """(camera frames, stem → reference image) for a folder."""
    raw_dir = source / "raw" if (source / "raw").is_dir() and (source / "reference").is_dir() else source
    frames = _images_in(raw_dir)
    if not frames:
        raise BagError(f"folder {raw_dir} holds no images (accepted: {', '.join(IMAGE_SUFFIXES)})")
    ref_dir = raw_dir.parent / "reference" if raw_dir.name != "reference" else None
    refs: dict[str, Path] = {}
    if ref_dir is not None and ref_dir.is_dir() and ref_dir.resolve() != raw_dir.resolve():
        refs = {p.stem: p for p in _images_in(ref_dir)}
    return frames, refs


def _read_rgb(path: Path) -> np.ndarray | None:
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _video_frames(path: Path) -> tuple[Iterator[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise BagError(f"{path}: cannot be opened as a video (accepted: {', '.join(VIDEO_SUFFIXES)})")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def gen() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()

    return gen(), fps


def make_bag(
    source: str | Path,
    out: str | Path,
    rate_hz: float | None = None,
    compressed: bool = False,
    storage: str = "sqlite3",
    topic: str = DEFAULT_TOPIC,
    reference_topic: str = DEFAULT_REFERENCE_TOPIC,
    start_ns: int | None = None,
    frame_id: str = "camera",
) -> MakeBagResult:
    """Write ``source`` (image folder or video file) to a new bag at ``out``.

    Stamps start at ``start_ns`` (default: now) and increase by ``1/rate_hz`` (default 10 Hz, or
    the video's frame rate). Unreadable images are skipped and listed in the result.
    """
    src = Path(source).expanduser()
    if not src.exists():
        raise BagError(f"input {src} does not exist (expected a folder of images or a video file)")
    if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
        raise BagError(f"--rate must be a finite number of Hz > 0 (e.g. 10), got {rate_hz}")
    check_topic(topic, "--topic")
    check_topic(reference_topic, "--reference-topic")
    if topic == reference_topic:
        raise BagError(
            f"--topic and --reference-topic are both {topic!r}: frames and ground truth need two topics"
        )
    codec = "jpeg" if compressed else None
    ref_codec = "png" if compressed else None  # ground truth stays lossless
    start = int(start_ns if start_ns is not None else time.time_ns() // 1_000_000 * 1_000_000)
    result = MakeBagResult(path=Path(out), frames=0, references=0)
    if src.is_dir():
        frames, refs = find_frames(src)
        period = round(1e9 / (rate_hz or 10.0))
        with BagWriter(out, storage) as bag:
            for i, path in enumerate(frames):
                rgb = _read_rgb(path)
                if rgb is None:
                    result.skipped.append(f"{path}: not a readable image")
                    continue
                stamp = start + i * period
                bag.write_image(topic, rgb, stamp, frame_id, codec)
                result.frames += 1
                if path.stem in refs:
                    ref = _read_rgb(refs[path.stem])
                    if ref is None:
                        result.skipped.append(f"{refs[path.stem]}: not a readable image")
                        continue
                    bag.write_image(reference_topic, ref, stamp, frame_id, ref_codec)
                    result.references += 1
            result.topics = dict(bag.counts)
    elif src.suffix.lower() in VIDEO_SUFFIXES:
        gen, fps = _video_frames(src)
        period = round(1e9 / (rate_hz or (fps if fps > 0 else 10.0)))
        with BagWriter(out, storage) as bag:
            for i, rgb in enumerate(gen):
                bag.write_image(topic, rgb, start + i * period, frame_id, codec)
                result.frames += 1
            result.topics = dict(bag.counts)
        if result.frames == 0:
            raise BagError(f"{src}: no frames could be read from the video")
    else:
        raise BagError(f"{src} is neither a folder of images nor a video ({', '.join(VIDEO_SUFFIXES)})")
    return result
