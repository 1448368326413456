"""Turn a folder of images (optionally with ground truth) or a video into a rosbag2.

Folder layout: ``DIR/*.png|jpg…`` are the camera frames. Ground truth is taken from a sibling
``DIR/../reference/`` (or, when ``DIR`` itself holds ``raw/`` and ``reference/``, from those) with
the same file stems; it goes on a second topic with the same header stamps, so the replay can
match each frame to its reference by stamp.

Segmentation ground truth (the SUIM layout): when ``DIR`` holds ``images/`` and ``masks/`` (or is
an ``images/`` folder with a sibling ``masks/``), or masks are given explicitly (``--masks``),
every frame needs a mask of the same stem and size. Masks are decoded with
:func:`snn_perception.offline.seg_data.read_mask` (palette, grey or SUIM colour PNGs) and written
lossless as ``mono8`` class ids on a mask topic, with their frame's stamp (never JPEG, even with
``--compressed``), for the replay's mIoU (``replay --mask-topic``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from snn_perception.replay.bag_io import (
    MAX_STAMP_NS,
    MAX_STAMP_TEXT,
    BagError,
    BagWriter,
    check_new_bag,
)
from snn_perception.runtime.image_codec import IMAGE_SUFFIXES, VIDEO_SUFFIXES, open_video

DEFAULT_TOPIC = "/camera/image"
DEFAULT_REFERENCE_TOPIC = "/camera/reference"
DEFAULT_MASK_TOPIC = "/camera/mask"


@dataclass
class MakeBagResult:
    path: Path
    frames: int
    references: int
    masks: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


#: the highest ``--rate``: stamps are whole nanoseconds, and two frames must never share one
MAX_RATE_HZ = 1e9


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
    """(camera frames, stem → reference image) for a folder.

    The frames are ``source/raw`` when ``source`` holds ``raw/`` + ``reference/``, ``source/images``
    when it holds ``images/`` + ``masks/`` (the SUIM layout), else ``source`` itself.
    """
    if (source / "raw").is_dir() and (source / "reference").is_dir():
        raw_dir = source / "raw"
    elif (source / "images").is_dir() and (source / "masks").is_dir():
        raw_dir = source / "images"
    else:
        raw_dir = source
    frames = _images_in(raw_dir)
    if not frames:
        raise BagError(f"folder {raw_dir} holds no images (accepted: {', '.join(IMAGE_SUFFIXES)})")
    ref_dir = raw_dir.parent / "reference" if raw_dir.name != "reference" else None
    refs: dict[str, Path] = {}
    if ref_dir is not None and ref_dir.is_dir() and ref_dir.resolve() != raw_dir.resolve():
        refs = {p.stem: p for p in _images_in(ref_dir)}
    return frames, refs


def find_masks(frames: list[Path], masks: str | Path | None = None) -> tuple[Path | None, dict[str, Path]]:
    """(mask folder, frame stem → mask) for the frames of one folder; (None, {}) without masks.

    ``masks`` is the folder given with ``--masks``; without it, a frame folder named ``images``
    with a sibling ``masks/`` (the SUIM layout) has its masks there. Every frame needs a mask of
    the same stem, else :class:`BagError` listing the frames without one.
    """
    frames_dir = frames[0].parent
    if masks is not None:
        mask_dir = Path(masks).expanduser()
        if not mask_dir.is_dir():
            what = "does not exist" if not mask_dir.exists() else "is not a folder"
            raise BagError(f"--masks {mask_dir} {what} (expected a folder of class-id mask images)")
        if mask_dir.resolve() == frames_dir.resolve():
            raise BagError(f"--masks {mask_dir} is the image folder itself; give the folder of masks")
    elif frames_dir.name == "images" and (frames_dir.parent / "masks").is_dir():
        mask_dir = frames_dir.parent / "masks"
    else:
        return None, {}
    by_stem = {p.stem: p for p in _images_in(mask_dir)}
    missing = [p for p in frames if p.stem not in by_stem]
    if missing:
        listed = ", ".join(p.name for p in missing[:3]) + (
            f", … ({len(missing) - 3} more)" if len(missing) > 3 else ""
        )
        raise BagError(
            f"{len(missing)} of the {len(frames)} images in {frames_dir} "
            f"{'has' if len(missing) == 1 else 'have'} no mask of the same name "
            f"in {mask_dir}: {listed}; every image needs its mask (add them, or remove those images)"
        )
    return mask_dir, {p.stem: by_stem[p.stem] for p in frames}


def read_frame(path: Path) -> np.ndarray:
    """An image file → ``H×W×3`` RGB uint8, else :class:`ImageDecodeError` saying why (without the
    path, which the callers add): the project's one file decoder, which refuses a truncated JPEG or
    PNG that OpenCV would return half grey."""
    from snn_perception.runtime.image_codec import ImageDecodeError, decode_file_bytes

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot be read ({exc.strerror or exc})") from None
    return decode_file_bytes(raw)


def _unreadable(
    paths: list[Path], sizes: dict[Path, tuple[int, int]] | None = None, read: Callable | None = None
) -> dict[Path, str]:
    """path → why, for every file ``read`` (default: :func:`read_frame`) cannot read (each decoded
    once, then dropped; ``sizes`` collects the (height, width) of the readable ones)."""
    from snn_perception.runtime.image_codec import ImageDecodeError

    bad: dict[Path, str] = {}
    for p in paths:
        try:
            hw = (read or read_frame)(p).shape[:2]
        except ImageDecodeError as exc:
            bad[p] = str(exc)
        else:
            if sizes is not None:
                sizes[p] = (int(hw[0]), int(hw[1]))
    return bad


def read_class_mask(path: Path) -> np.ndarray:
    """A mask file → ``H×W`` uint8 class ids via :func:`~snn_perception.offline.seg_data.read_mask`,
    else :class:`~snn_perception.runtime.image_codec.ImageDecodeError` saying why."""
    from snn_perception.offline.seg_data import SegDataError, read_mask
    from snn_perception.runtime.image_codec import ImageDecodeError

    try:
        return read_mask(path)
    except SegDataError as exc:
        raise ImageDecodeError(str(exc).removeprefix(f"{path}: ")) from None


def _check_mask_sizes(pairs: list[tuple[Path, Path]], sizes: dict[Path, tuple[int, int]]) -> None:
    """Every (frame, mask) pair has one size, else :class:`BagError` naming the first two files."""
    wrong = [(f, m) for f, m in pairs if sizes[f] != sizes[m]]
    if wrong:
        (f, m), more = wrong[0], len(wrong) - 1
        (fh, fw), (mh, mw) = sizes[f], sizes[m]
        also = f" (and {more} more pair{'s' if more > 1 else ''})" if more else ""
        raise BagError(
            f"mask {m} is {mw}×{mh} but its image {f} is {fw}×{fh}{also}: a mask must have its image's size"
        )


def _round_up(x: float, digits: int = 3) -> float:
    """``x`` rounded up to ``digits`` significant digits (a floor the user can type and pass)."""
    e = math.floor(math.log10(x)) - digits + 1
    return float(f"{math.ceil(x / 10.0**e) * 10.0**e:.{digits}g}")


def _check_rate(rate_hz: float | None) -> None:
    if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
        raise BagError(f"--rate must be a finite number of Hz > 0 (e.g. 10), got {rate_hz}")


def period_for(rate_hz: float | None, frames: int, start_ns: int, default_hz: float = 10.0) -> int:
    """The stamp period in ns for ``frames`` frames from ``start_ns`` at ``rate_hz`` (None: default).

    Refuses rates whose stamps would not fit a ROS time (the last one past 2038, int32 seconds) or
    that would give two frames the same nanosecond stamp, with the range that is accepted.
    """
    _check_rate(rate_hz)
    rate = default_hz if rate_hz is None else float(rate_hz)
    if rate > MAX_RATE_HZ:
        raise BagError(
            f"--rate {rate:g} Hz: stamps are whole nanoseconds, so two frames would share one; "
            f"give --rate ≤ {MAX_RATE_HZ:g} Hz"
        )
    if not 0 <= start_ns <= MAX_STAMP_NS:
        raise BagError(f"start stamp {start_ns} ns is outside what a ROS time holds (up to {MAX_STAMP_TEXT})")
    period = 1e9 / rate
    if frames > 1 and start_ns + (frames - 1) * period > MAX_STAMP_NS:
        floor = _round_up((frames - 1) * 1e9 / max(MAX_STAMP_NS - start_ns, 1))
        raise BagError(
            f"--rate {rate:g} Hz: the stamps of {frames} frames would run past the latest ROS time "
            f"({MAX_STAMP_TEXT}); give --rate ≥ {floor:g} Hz"
        )
    return round(period) if frames > 1 else 0


def _video_frames(path: Path) -> tuple[Iterator[np.ndarray], float]:
    cap = open_video(path)
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


@dataclass
class BagSource:
    """A checked ``make-bag`` input: everything :func:`write_bag` needs, nothing written yet."""

    path: Path
    frames: list[Path]  # image folder: the readable frames (video: empty)
    refs: dict[str, Path]  # frame stem → its readable reference image
    index: dict[Path, int]  # frame → its position in the folder (a skipped frame leaves a gap in time)
    period_ns: int
    start_ns: int
    video: bool = False
    skipped: list[str] = field(default_factory=list)
    masks: dict[str, Path] = field(default_factory=dict)  # frame stem → its class-id mask


def check_source(
    source: str | Path,
    rate_hz: float | None = None,
    start_ns: int | None = None,
    skip_unreadable: bool = False,
    skip_hint: str | None = "or pass --skip-unreadable to leave them out",
    masks: str | Path | None = None,
) -> BagSource:
    """Check a folder of images or a video before anything is written (raises :class:`BagError`).

    Every image (and every reference and mask that has a frame) is decoded once: an unreadable
    one is refused with its name, or with ``skip_unreadable`` left out and listed in ``skipped``
    (a frame whose mask is unreadable is left out with it); ``skip_hint`` tells the user how to
    ask for that (None: the caller offers no way). ``masks``: the ``--masks`` folder (default: a
    SUIM layout's ``masks/``, see :func:`find_masks`); a missing or wrong-size mask is refused.
    """
    src = Path(source).expanduser()
    if not src.exists():
        raise BagError(f"input {src} does not exist (expected a folder of images or a video file)")
    _check_rate(rate_hz)  # before the folder is read
    start = int(start_ns if start_ns is not None else time.time_ns() // 1_000_000 * 1_000_000)
    if src.is_dir():
        frames, refs = find_frames(src)
        _mask_dir, frame_masks = find_masks(frames, masks)
        period = period_for(rate_hz, len(frames), start)
        used_refs = [refs[p.stem] for p in frames if p.stem in refs]
        used_masks = [frame_masks[p.stem] for p in frames if p.stem in frame_masks]
        sizes: dict[Path, tuple[int, int]] = {}
        bad = _unreadable(frames + used_refs, sizes)
        bad.update(_unreadable(used_masks, sizes, read=read_class_mask))
        skipped = [f"{p}: {why}" for p, why in bad.items()]
        if bad and not skip_unreadable:
            listed = "; ".join(skipped[:3]) + (f"; … ({len(bad) - 3} more)" if len(bad) > 3 else "")
            hint = f", {skip_hint}" if skip_hint else ""
            total = len(frames) + len(used_refs) + len(used_masks)
            raise BagError(
                f"{len(bad)} of the {total} images cannot be read: {listed}; fix or remove them{hint}"
            )
        for p in frames:  # a frame without its (readable) mask is left out with it
            if p not in bad and p.stem in frame_masks and frame_masks[p.stem] in bad:
                skipped.append(f"{p}: left out with its unreadable mask")
        good = [p for p in frames if p not in bad and frame_masks.get(p.stem) not in bad]
        _check_mask_sizes([(p, frame_masks[p.stem]) for p in good if p.stem in frame_masks], sizes)
        if not good:
            folder = frames[0].parent
            raise BagError(f"none of the {len(frames)} images in {folder} can be read: {skipped[0]}")
        return BagSource(
            path=src,
            frames=good,
            refs={stem: r for stem, r in refs.items() if r not in bad},
            index={p: i for i, p in enumerate(frames)},
            period_ns=period,
            start_ns=start,
            skipped=skipped,
            masks={p.stem: frame_masks[p.stem] for p in good if p.stem in frame_masks},
        )
    if masks is not None:
        raise BagError(f"--masks needs a folder of images as input, not {src} (masks go with image files)")
    if src.suffix.lower() not in VIDEO_SUFFIXES:
        raise BagError(f"{src} is neither a folder of images nor a video ({', '.join(VIDEO_SUFFIXES)})")
    cap = open_video(src)
    try:
        if not cap.isOpened():
            raise BagError(f"{src}: cannot be opened as a video (accepted: {', '.join(VIDEO_SUFFIXES)})")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # from the header: checked again per frame
    finally:
        cap.release()
    period = period_for(rate_hz if rate_hz is not None else (fps if fps > 0 else None), max(count, 1), start)
    return BagSource(path=src, frames=[], refs={}, index={}, period_ns=period, start_ns=start, video=True)


def write_bag(
    plan: BagSource,
    out: str | Path,
    compressed: bool = False,
    storage: str = "sqlite3",
    topic: str = DEFAULT_TOPIC,
    reference_topic: str = DEFAULT_REFERENCE_TOPIC,
    frame_id: str = "camera",
    mask_topic: str = DEFAULT_MASK_TOPIC,
) -> MakeBagResult:
    """Write a checked source to a new bag; a failure part-way removes the partial bag.

    Masks go on ``mask_topic`` as lossless ``mono8`` class ids with their frame's stamp, also
    with ``compressed`` (which JPEG-compresses only the camera frames).
    """
    from snn_perception.runtime.image_codec import ImageDecodeError

    codec = "jpeg" if compressed else None
    ref_codec = "png" if compressed else None  # ground truth stays lossless
    result = MakeBagResult(path=Path(out), frames=0, references=0, skipped=list(plan.skipped))
    with BagWriter(out, storage) as bag:
        if plan.video:
            gen, _fps = _video_frames(plan.path)
            for i, rgb in enumerate(gen):
                bag.write_image(topic, rgb, plan.start_ns + i * plan.period_ns, frame_id, codec)
                result.frames += 1
            if result.frames == 0:
                raise BagError(f"{plan.path}: no frames could be read from the video")
        else:
            for path in plan.frames:
                stamp = plan.start_ns + plan.index[path] * plan.period_ns
                mask_path = plan.masks.get(path.stem)
                try:
                    rgb = read_frame(path)
                    ref = read_frame(plan.refs[path.stem]) if path.stem in plan.refs else None
                except ImageDecodeError as exc:  # changed since it was checked
                    raise BagError(f"{path}: {exc}") from None
                try:
                    ids = read_class_mask(mask_path) if mask_path is not None else None
                except ImageDecodeError as exc:
                    raise BagError(f"{mask_path}: {exc}") from None
                if ids is not None and ids.shape != rgb.shape[:2]:
                    _check_mask_sizes([(path, mask_path)], {path: rgb.shape[:2], mask_path: ids.shape})
                bag.write_image(topic, rgb, stamp, frame_id, codec)
                result.frames += 1
                if ref is not None:
                    bag.write_image(reference_topic, ref, stamp, frame_id, ref_codec)
                    result.references += 1
                if ids is not None:
                    bag.write_image(mask_topic, ids, stamp, frame_id)  # mono8, never compressed
                    result.masks += 1
        result.topics = dict(bag.counts)
    return result


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
    skip_unreadable: bool = False,
    masks: str | Path | None = None,
    mask_topic: str = DEFAULT_MASK_TOPIC,
) -> MakeBagResult:
    """Write ``source`` (image folder or video file) to a new bag at ``out``.

    Stamps start at ``start_ns`` (default: now) and increase by ``1/rate_hz`` (default 10 Hz, or
    the video's frame rate). Every input is checked before anything is written: an unreadable
    image is refused, or with ``skip_unreadable`` left out and listed in the result. Class-id
    masks (``masks``, or a SUIM layout's ``masks/``) go on ``mask_topic`` as ``mono8``.
    """
    names = {"--topic": topic, "--reference-topic": reference_topic, "--mask-topic": mask_topic}
    for what, name in names.items():
        check_topic(name, what)
    if topic == reference_topic:
        raise BagError(
            f"--topic and --reference-topic are both {topic!r}: frames and ground truth need two topics"
        )
    for what in ("--topic", "--reference-topic"):
        if names[what] == mask_topic:
            raise BagError(
                f"{what} and --mask-topic are both {mask_topic!r}: masks need a topic of their own"
            )
    check_new_bag(out, storage)
    plan = check_source(source, rate_hz, start_ns, skip_unreadable, masks=masks)
    return write_bag(plan, out, compressed, storage, topic, reference_topic, frame_id, mask_topic)
