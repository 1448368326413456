"""The image source reads folders, videos (looping) and refuses what it cannot open."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from snn_perception.ros.image_source_node import FrameSource, FrameSourceError


def _frames(n: int) -> list[np.ndarray]:
    return [np.full((48, 64, 3), 40 * (i + 1), np.uint8) for i in range(n)]


def test_folder_frames_come_in_name_order_as_rgb_and_loop(tmp_path):
    for i, f in enumerate(_frames(3)):
        f[..., 0] = 255  # red in RGB, written as BGR by OpenCV below
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    src = FrameSource(str(tmp_path), loop=True)
    got = [src.read() for _ in range(4)]
    assert [int(g[0, 0, 1]) for g in got] == [40, 80, 120, 40]
    assert all(g[0, 0, 0] == 255 for g in got)
    once = FrameSource(str(tmp_path), loop=False)
    assert [once.read() is None for _ in range(4)] == [False, False, False, True]


def test_video_frames_loop(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for f in _frames(3):
        writer.write(f)
    writer.release()
    src = FrameSource(str(path), loop=True)
    got = [src.read() for _ in range(5)]
    assert all(g is not None and g.shape == (48, 64, 3) for g in got)
    assert abs(int(got[3][10, 10, 1]) - 40) < 8, "the fourth frame is the first again"
    src.close()


@pytest.mark.parametrize("bad", ["/no/such/file.mp4", "nonsense"])
def test_missing_sources_are_refused_with_what_is_accepted(bad):
    with pytest.raises(FrameSourceError, match="not a folder, a video file or a camera index"):
        FrameSource(bad)


def test_empty_folder_and_unreadable_video_are_refused(tmp_path):
    with pytest.raises(FrameSourceError, match="holds no images"):
        FrameSource(str(tmp_path))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(FrameSourceError, match="cannot open"):
        FrameSource(str(junk))
