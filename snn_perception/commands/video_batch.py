"""Video files as inputs of ``enhance`` and ``segment``: checked before any work, written frame by frame.

Why here and not through a bag: a pilot's first offline question is "what does my dive look like
dehazed", and the answer is a video they can play. Each input video is opened and its first frame
decoded before the weights load (a damaged file is refused, or left out with ``--skip-unreadable``);
the output keeps the input's frame size and rate and is written to a hidden partial file that
replaces ``NAME.mp4`` only when every frame is done, so an interrupted or failed run never leaves a
truncated result, nor loses an earlier one it was to ``--overwrite``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snn_perception.commands.image_batch import UsageError
from snn_perception.runtime.image_codec import open_video

#: MPEG-4 Part 2: the codec every OpenCV wheel can write (H.264 needs an FFmpeg build with x264),
#: and VLC, ffmpeg and most players read it
FOURCC = "mp4v"
SUFFIX = ".mp4"
#: the rate written when a file does not say its own (some screen recordings, broken headers)
FALLBACK_FPS = 30.0


@dataclass(frozen=True)
class VideoInfo:
    """What a checked input video holds, from its header and its first frame."""

    path: Path
    fps: float  # as the file states it; 0.0 when it does not
    frames: int  # from the header: a hint for progress, the loop reads until the end
    width: int
    height: int

    @property
    def out_fps(self) -> float:
        return self.fps if self.fps > 0 else FALLBACK_FPS


def probe(path: Path) -> VideoInfo:
    """Open ``path`` and decode its first frame (a ValueError says why it cannot be read)."""
    import cv2

    cap = open_video(path)
    try:
        if not cap.isOpened():
            raise ValueError("cannot be opened as a video")
        ok, bgr = cap.read()
        if not ok or bgr is None:
            raise ValueError("holds no frame that can be decoded")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else 0.0
    return VideoInfo(path=path, fps=fps, frames=max(count, 0), width=bgr.shape[1], height=bgr.shape[0])


def frames(path: Path) -> Iterator[np.ndarray]:
    """Every decodable frame of ``path`` as RGB uint8, in order (reading stops at the first failure,
    as players do at a truncated end)."""
    import cv2

    cap = open_video(path)
    try:
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


class VideoOut:
    """``NAME.mp4`` written through a hidden partial file; :meth:`commit` puts it in place.

    MPEG-4 codes even sizes only: the encoder drops the last row or column of an odd-sized frame.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        import cv2

        self.path = path
        self.partial = path.with_name(f".{path.stem}.partial{SUFFIX}")
        self.size = (width, height)
        self._writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*FOURCC), fps, self.size)
        if not self._writer.isOpened():
            self.partial.unlink(missing_ok=True)
            raise UsageError(f"cannot write a video at {path} (OpenCV's {FOURCC} writer did not open)")
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        if (rgb.shape[1], rgb.shape[0]) != self.size:  # a stream whose frame size changes midway
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
        self.count += 1

    def commit(self) -> None:
        self._writer.release()
        self.partial.replace(self.path)

    def discard(self) -> None:
        self._writer.release()
        self.partial.unlink(missing_ok=True)


def run_video(
    engine: Any,
    path: Path,
    out: Path,
    finish: Callable[[np.ndarray, Any], np.ndarray],
    describe: Callable[[Any], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every frame of ``path`` through ``engine`` and ``finish(rgb, result)`` into ``out``.

    Returns one statistics record per frame (as ``--json`` writes them; ``describe(result)`` adds to
    or replaces its fields) and prints one line per video; a failure or Ctrl-C leaves no partial
    ``out`` (and an earlier one in place).
    """
    from snn_perception.runtime.memory import FrameTooLarge
    from snn_perception.runtime.progress import bar

    info = probe(path)
    writer = VideoOut(out, info.out_fps, info.width, info.height)
    records: list[dict[str, Any]] = []
    committed = False
    try:
        with bar(total=info.frames or None, unit="frame", desc=path.name, leave=False) as shown:
            for i, rgb in enumerate(frames(path)):
                try:
                    result = engine.run(rgb)
                except FrameTooLarge as exc:
                    raise UsageError(f"{path}, frame {i}: {exc}") from None
                writer.write(finish(rgb, result))
                record = {"input": str(path), "frame": i, "output": str(out), "stats": result.stats.as_dict()}
                records.append({**record, **(describe(result) if describe else {})})
                shown.update()
        writer.commit()
        committed = True
    finally:
        if not committed:
            writer.discard()
    stats = [r["stats"] for r in records]
    mean_ms = sum(s["inference_ms"] for s in stats) / len(stats)
    energy = [s["energy_j"] for s in stats if s.get("ops_counted")]
    mj = f", {sum(energy) / len(energy) * 1e3:.3f} mJ/frame" if energy else ""
    rate = f"{info.fps:g} fps" if info.fps else f"{FALLBACK_FPS:g} fps (the file states no frame rate)"
    print(
        f"{path.name} → {out.name} ({len(records)} frames, {info.width}x{info.height} at {rate}; "
        f"mean {mean_ms:.0f} ms/frame, T={stats[-1]['timesteps'] or '– (ANN)'}{mj})"
    )
    return records
