"""Bad input to ``replay``, ``demo``, ``make-bag`` (and a bring-up parameter file) is refused before
any work: one line naming what was wrong and what is accepted, exit code 2, no traceback, nothing
created or left half-written.

Every case runs the real CLI in a subprocess on tiny images and bags written here.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli as _cli

from snn_perception.replay import bag_io
from snn_perception.replay.bag_io import BagError, BagWriter, bag_info, iter_images
from snn_perception.replay.make_bag import make_bag


def _refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2 and one error line holding ``words``, without a traceback."""
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, err)


def _image(path: Path, hw: tuple[int, int] = (16, 20), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (*hw, 3), np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """frames/ (3 PNGs), pairs/raw + pairs/reference, and bag/ (camera + reference topics) from them."""
    for i in range(3):
        _image(tmp_path / "frames" / f"{i}.png", seed=i)
        _image(tmp_path / "pairs" / "raw" / f"{i}.png", seed=i)
        _image(tmp_path / "pairs" / "reference" / f"{i}.png", seed=10 + i)
    make_bag(tmp_path / "pairs" / "raw", tmp_path / "bag", rate_hz=10.0, start_ns=10**9)
    return tmp_path


def _entries(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- 1. weights are checked before any node starts or the bag is read -----------------------------


@pytest.mark.parametrize(
    ("weights", "words"),
    [
        ("spiking_unet", ("dehaze weights:", "holds a segment model (spiking_lite_unet), not a dehaze")),
        ("corrupt.safetensors", ("dehaze weights:", "corrupt.safetensors: not a readable safetensors file")),
    ],
    ids=["wrong-kind", "corrupt"],
)
def test_ros_mode_refuses_bad_weights_at_once_without_starting_nodes(work, weights, words) -> None:
    (work / "corrupt.safetensors").write_bytes(b"\x00" * 64)
    t0 = time.monotonic()
    res = _cli("replay", "bag", "--out", "out", "--no-progress", "--weights", weights, cwd=work, timeout=60)
    assert time.monotonic() - t0 < 30, "refused at once, not after the nodes' 120 s subscribe timeout"
    _refused(res, *words)
    assert "configure failed" not in res.stderr, "no node was started to find out"
    assert not (work / "out").exists()


def test_ros_mode_refuses_dehaze_weights_given_as_segment_weights(work) -> None:
    res = _cli("replay", "bag", "--out", "out", "--segment-weights", "dhz", cwd=work, timeout=60)
    _refused(res, "segment weights:", "holds a dehaze model")
    assert not (work / "out").exists()


# -- 2. the demo checks every argument before it renders or creates anything ----------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--weights", "spiking_unet"], ("dehaze weights:", "not a dehaze model")),
        (["--bag", "empty"], ("empty is not a rosbag2 bag",)),
        (["--bag", "frames"], ("frames is not a rosbag2 bag",)),
        (["--data", "empty"], ("--data:", "holds no images", "accepted: .png")),
        (["--data", "frames/0.png"], ("--data:", "neither a folder of images nor a video")),
        (["--data", "broken"], ("--data:", "1 of the 2 images cannot be read", "broken/b.jpg", "truncated")),
        (["--timesteps", "2,2"], ("--timesteps 2,2: T=2 is given twice",)),
    ],
    ids=["weights", "bag-empty-dir", "bag-image-folder", "data-empty", "data-file", "data-broken", "dup-t"],
)
def test_demo_refuses_bad_input_before_creating_anything(work, argv, words) -> None:
    (work / "empty").mkdir()
    _image(work / "broken" / "a.png")
    _image(work / "broken" / "b.jpg")
    (work / "broken" / "b.jpg").write_bytes((work / "broken" / "b.jpg").read_bytes()[:-2])  # no FFD9
    before = _entries(work)
    t0 = time.monotonic()
    short = [] if {"--bag", "--data"} & set(argv) else ["--seconds", "1"]  # a dive it renders is short
    res = _cli("demo", "--out", "d9", "--mode", "offline", *short, *argv, cwd=work, timeout=60)
    assert time.monotonic() - t0 < 30, "refused before rendering or replaying"
    _refused(res, *words)
    assert "==>" not in res.stdout, res.stdout
    assert _entries(work) == before, "nothing created (no --out folder, no bag)"


def test_demo_refuses_a_report_inside_the_replayed_bag(work) -> None:
    before = _entries(work)
    res = _cli("demo", "--bag", "bag", "--out", "bag", "--mode", "offline", cwd=work)
    _refused(res, "--out bag would put the report", "inside the bag folder bag")
    assert _entries(work) == before


# -- 3, 6, 7, 9. replay arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--threads", "-1"], ("--threads -1: must be at least 1",)),
        (["--timesteps", "1,1"], ("--timesteps 1,1: T=1 is given twice", "give each value once")),
        (["--out", "frames/0.png"], ("--out frames/0.png is a file; give a folder",)),
        (["--out", "frames/0.png/sub"], ("frames/0.png is a file, not a folder",)),
        (["--out", "bag"], ("--out bag is the bag folder", "outside it")),
        (["--out", "bag/report"], ("--out bag/report is inside the bag folder bag",)),
        (
            ["--reference-topic", "/camera/nope"],
            ("--reference-topic '/camera/nope' is not in bag", "image topics in the bag: /camera/image ["),
        ),
        (
            ["--mask-topic", "/masks"],
            ("--mask-topic '/masks' is not in bag", "/camera/reference [sensor_msgs/msg/Image"),
        ),
        (
            ["--reference-topic", "/camera/image"],
            ("no camera image topic", "/camera/image given as ground truth", "choose the camera topic"),
        ),
        (
            ["--topic", "/camera/image", "--reference-topic", "/camera/image"],
            ("--topic and --reference-topic are both '/camera/image'",),
        ),
    ],
    ids=[
        "threads-negative",
        "duplicate-timesteps",
        "out-is-a-file",
        "out-under-a-file",
        "out-is-the-bag",
        "out-inside-the-bag",
        "reference-topic-missing",
        "mask-topic-missing",
        "camera-topic-as-reference",
        "topic-is-its-own-reference",
    ],
)
def test_replay_refuses_bad_arguments_in_one_line(work, argv, words) -> None:
    argv = argv if "--out" in argv else [*argv, "--out", "out"]
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    res = _cli("replay", "bag", "--mode", "offline", "--no-progress", *argv, cwd=work)
    _refused(res, *words)
    assert {p: p.read_bytes() for p in work.rglob("*") if p.is_file()} == before, "nothing written"
    assert not (work / "out").exists()


def test_replay_topic_errors_list_the_image_topics_of_a_compressed_bag(work) -> None:
    make_bag(
        work / "pairs" / "raw",
        work / "cbag",
        compressed=True,
        start_ns=10**9,
        topic="/camera/image/compressed",
        reference_topic="/camera/reference/compressed",
    )
    res = _cli("replay", "cbag", "--mode", "offline", "--reference-topic", "/camera/image", cwd=work)
    _refused(
        res,
        "--reference-topic '/camera/image' is not in cbag",
        "image topics in the bag: /camera/image/compressed [sensor_msgs/msg/CompressedImage, 3 msgs], "
        "/camera/reference/compressed",
    )


# -- 4. make-bag: stamps must fit a ROS time; a failed write leaves no bag ------------------------


def test_make_bag_refuses_a_rate_whose_stamps_overflow_and_writes_nothing(work) -> None:
    res = _cli("make-bag", "frames", "--out", "b", "--rate", "1e-9", cwd=work)
    _refused(res, "--rate 1e-09 Hz: the stamps of 3 frames would run past the latest ROS time", "--rate ≥")
    assert not (work / "b").exists()
    floor = res.stderr.split("give --rate ≥ ")[1].split(" Hz")[0]
    ok = _cli("make-bag", "frames", "--out", "b", "--rate", floor, cwd=work)
    assert ok.returncode == 0, ok.stderr  # the floor it names is accepted
    assert [i.rgb is not None for i in iter_images(work / "b", "/camera/image")] == [True] * 3
    _refused(_cli("make-bag", "frames", "--out", "c", "--rate", "1e12", cwd=work), "give --rate ≤ 1e+09 Hz")
    assert not (work / "c").exists()


def test_a_bag_write_that_fails_part_way_removes_the_partial_bag(tmp_path: Path) -> None:
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(BagError, match="outside what a ROS time holds"):
        with BagWriter(tmp_path / "bag") as bag:
            bag.write_image("/camera/image", frame, 10**9)
            bag.write_image("/camera/image", frame, 2**31 * 10**9)  # past int32 seconds
    assert not (tmp_path / "bag").exists()
    with pytest.raises(KeyboardInterrupt):
        with BagWriter(tmp_path / "bag", "mcap") as bag:
            bag.write_image("/camera/image", frame, 10**9)
            raise KeyboardInterrupt
    assert not (tmp_path / "bag").exists(), "an interrupted bag is removed too"
    with BagWriter(tmp_path / "bag") as bag:
        bag.write_image("/camera/image", frame, 10**9)
    assert bag_info(tmp_path / "bag").topics["/camera/image"].count == 1


# -- 5. make-bag: unreadable images are refused by name (or left out when asked) ----------------


def test_make_bag_refuses_unreadable_images_by_name_and_writes_nothing(work) -> None:
    jpg = _image(work / "frames" / "3.jpg", seed=3)
    jpg.write_bytes(jpg.read_bytes()[:-40])  # truncated: no FFD9 end marker
    (work / "frames" / "4.png").write_bytes(b"not an image")
    res = _cli("make-bag", "frames", "--out", "b", cwd=work)
    _refused(res, "2 of the 5 images cannot be read", "frames/3.jpg", "truncated", "frames/4.png")
    assert "--skip-unreadable" in res.stderr
    assert not (work / "b").exists()

    res = _cli("make-bag", "frames", "--out", "b", "--skip-unreadable", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "3 frames" in res.stdout and "2 unreadable images left out" in res.stdout
    assert "skipped frames/3.jpg" in res.stderr and "skipped frames/4.png" in res.stderr
    assert bag_info(work / "b").topics["/camera/image"].count == 3


def test_make_bag_refuses_an_unreadable_reference_too(work) -> None:
    ref = work / "pairs" / "reference" / "1.png"
    ref.write_bytes(ref.read_bytes()[:-30])  # truncated PNG: no IEND
    with pytest.raises(BagError, match=r"1 of the 6 images cannot be read: .*reference/1\.png"):
        make_bag(work / "pairs" / "raw", work / "b")
    assert not (work / "b").exists()
    res = make_bag(work / "pairs" / "raw", work / "b", skip_unreadable=True)
    assert (res.frames, res.references) == (3, 2)
    assert bag_io.bag_info(work / "b").topics["/camera/reference"].count == 2


# -- 8. bring-up parameter file ---------------------------------------------------------------


def test_a_binary_params_file_is_named_as_not_a_parameter_yaml(work) -> None:
    from snn_perception.ros.params_file import load

    with pytest.raises(ValueError, match=r"0\.png is not a text file .*expected a ROS 2 parameter YAML"):
        load(work / "frames" / "0.png")


@pytest.mark.parametrize("verb", [["bringup", "--nodes", "dehaze"], ["replay", "x.mcap", "--mode", "ros"]])
def test_ros_verbs_without_our_messages_say_so_in_one_line(verb: list[str], tmp_path: Path) -> None:
    """rclpy importable but ``snn_perception.msg`` not built or sourced (a pip install that skipped
    `make setup`'s colcon step): ``bringup`` raised a traceback from the nodes' import."""
    import os
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(repo)}
    try:
        import rclpy  # noqa: F401
    except ImportError:
        pytest.skip("rclpy is not installed here: the case is rclpy without our messages")
    probe = subprocess.run([sys.executable, "-c", "import snn_perception.msg"], env=env, capture_output=True)
    assert probe.returncode != 0, "our messages import without the install space: nothing to test"
    proc = subprocess.run(
        [sys.executable, "-m", "snn_perception.cli", *verb], env=env, cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "snn_perception.msg" in proc.stderr and "source install/setup.bash" in proc.stderr, proc.stderr
