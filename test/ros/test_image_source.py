"""The image source reads folders, videos (looping) and refuses what it cannot open; as a node
it refuses run-time parameter values it cannot publish and keeps publishing."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from snn_perception.ros.image_source_node import FrameSource, FrameSourceError, output_size


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


def test_damaged_images_are_left_out_with_the_reason_and_never_loop_forever(tmp_path):
    """The folder source reads through the package's image-file reader: a truncated JPEG is left
    out (listed in ``skipped``), and a folder of damaged files ends the stream even when looping."""
    good = _frames(1)[0]
    cv2.imwrite(str(tmp_path / "a.png"), good)
    _, jpg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    (tmp_path / "b.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])  # cut in half
    src = FrameSource(str(tmp_path), loop=True)
    assert [src.read().shape for _ in range(3)] == [(48, 64, 3)] * 3
    assert list(src.skipped) == ["b.jpg"] and "b.jpg" in src.skipped["b.jpg"]
    (tmp_path / "a.png").write_bytes(b"not a png")
    broken = FrameSource(str(tmp_path), loop=True)
    assert broken.read() is None and sorted(broken.skipped) == ["a.png", "b.jpg"]


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


def test_one_side_alone_keeps_the_aspect_ratio():
    assert output_size(480, 640, 0, 0) == (480, 640)
    assert output_size(480, 640, 320, 240) == (240, 320)
    assert output_size(480, 640, 320, 0) == (240, 320)
    assert output_size(480, 640, 0, 120) == (120, 160)
    assert output_size(1, 1000, 10, 0) == (1, 10), "never a zero side"


def test_node_refuses_formats_and_encodings_it_cannot_publish_and_keeps_publishing(
    ros_environment, peer, tmp_path
):
    from nodeproc import NodeProcess, wait_for
    from sensor_msgs.msg import CompressedImage

    for i, f in enumerate(_frames(2)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    ns = f"/src{os.getpid()}"
    out = peer.collect(CompressedImage, f"{ns}/image_source_node/image/compressed", reliable=False)
    params = {"source": str(tmp_path), "transport": "compressed", "rate_hz": 20.0, "width": 32}
    # a misspelt name is warned about; an unknown one is not, nor one a perception node reads
    # (the shipped file's /** input_transport: not a typo of transport)
    params.update(heigth=8, gain=2, input_transport="raw")
    proc = NodeProcess(
        "snn_perception.ros.image_source_node", "image_source_node", ns, params, ros_environment, tmp_path
    )
    try:
        wait_for(lambda: len(out) > 0, 60, f"a compressed frame\n{proc.log()}")
        fqn = f"{ns}/image_source_node"
        for name, value in (("format", "bmp"), ("format", "JPEG"), ("encoding", "mono8")):
            r = peer.set_params(fqn, **{name: value})[0]
            assert not r.successful and f"{name} {value!r} is not one of" in r.reason
        r = peer.set_params(fqn, width=64.0)[0]  # the wrong type, in our words (not rclpy's enum numbers)
        assert not r.successful and r.reason == "width: 64.0 is a double, the parameter is an integer", r
        assert peer.get_params(fqn, "format", "encoding") == ["jpeg", "rgb8"], "refused values are not kept"
        assert peer.set_params(fqn, format="png")[0].successful
        wait_for(lambda: out.snapshot()[-1].format == "png", 10, "png frames after the change")
        img = cv2.imdecode(np.frombuffer(bytes(out.snapshot()[-1].data), np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (24, 32, 3), "width alone keeps the 48x64 frames' aspect ratio"
        assert proc.alive()
        log = proc.log()
        assert "parameter 'heigth' is not read by this node (ignored); did you mean 'height'?" in log, log
        assert "'gain'" not in log and "input_transport" not in log, log
    finally:
        assert proc.stop() == 0, proc.log()


@pytest.mark.parametrize(
    "params,words",
    [
        ({"source": 7}, "source '7': OpenCV cannot open this camera"),  # `-p source:=7` is an integer
        (
            {"source": "{tmp}", "rate_hz": 10},
            "rate_hz: 10 is an integer, the parameter is a double (write 10.0",
        ),
    ],
)
def test_the_node_refuses_command_line_values_in_one_line(ros_environment, tmp_path, params, words):
    """A camera index typed as ``-p source:=7`` reaches the camera (it was a type-error traceback),
    and a value of the wrong type ends the node with one line, exit code 2."""
    import subprocess
    import sys

    from nodeproc import _param_text

    for i, f in enumerate(_frames(1)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    args = [sys.executable, "-m", "snn_perception.ros.image_source_node", "--ros-args"]
    for key, value in params.items():
        value = value.format(tmp=tmp_path) if isinstance(value, str) else value
        args += ["-p", f"{key}:={_param_text(value)}"]
    res = subprocess.run(args, env=ros_environment, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert words in res.stderr and "Traceback" not in res.stderr, res.stderr
