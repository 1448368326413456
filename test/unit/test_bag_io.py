"""rosbag2 writing/reading without ROS: round trips, encodings, make-bag, and bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli

from snn_perception.replay import bag_io
from snn_perception.replay.bag_io import BagError, BagWriter, bag_info, check_image_topic, iter_images
from snn_perception.replay.make_bag import make_bag

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)


def _frames(n: int = 4, hw: tuple[int, int] = (24, 40)) -> list[np.ndarray]:
    return [RNG.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_raw_images_round_trip_exactly_with_their_stamps(tmp_path: Path, storage: str) -> None:
    frames = _frames()
    with BagWriter(tmp_path / "bag", storage) as bag:
        for i, f in enumerate(frames):
            bag.write_image("/cam/image", f, 1_000_000_000 + i * 100_000_000, "cam")
    info = bag_info(tmp_path / "bag")
    assert info.storage == storage
    assert info.topics["/cam/image"].count == 4 and info.topics["/cam/image"].msgtype == bag_io.IMAGE_TYPE
    got = list(iter_images(tmp_path / "bag", "/cam/image"))
    assert [g.stamp_ns for g in got] == [1_000_000_000 + i * 100_000_000 for i in range(4)]
    assert all(
        np.array_equal(g.rgb, f) and g.error is None and g.frame_id == "cam"
        for g, f in zip(got, frames, strict=True)
    )


def test_compressed_png_is_lossless_and_jpeg_close(tmp_path: Path) -> None:
    smooth = cv2.GaussianBlur(_frames(1, (64, 64))[0], (9, 9), 3)
    with BagWriter(tmp_path / "bag", "mcap") as bag:
        bag.write_image("/png", smooth, 5, compressed="png")
        bag.write_image("/jpg", smooth, 5, compressed="jpeg")
    assert bag_info(tmp_path / "bag").topics["/png"].msgtype == bag_io.COMPRESSED_TYPE
    png = next(iter_images(tmp_path / "bag", "/png")).rgb
    jpg = next(iter_images(tmp_path / "bag", "/jpg")).rgb
    assert np.array_equal(png, smooth)
    assert np.abs(jpg.astype(int) - smooth).mean() < 3.0


def _raw_msg(data: np.ndarray, encoding: str, step: int, bigendian: int = 0, width: int | None = None):
    store = bag_io.typestore()
    h, w = data.shape[0], width or data.shape[1]
    return store.types[bag_io.IMAGE_TYPE](
        header=bag_io._header(0, "x"),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=bigendian,
        step=step,
        data=np.ascontiguousarray(data).view(np.uint8).reshape(-1),
    )


def test_decoder_handles_bgr_mono_16bit_and_row_padding() -> None:
    rgb = _frames(1, (5, 6))[0]
    padded = np.zeros((5, 6 * 3 + 2), np.uint8)
    padded[:, :18] = rgb[..., ::-1].reshape(5, 18)
    assert np.array_equal(bag_io.decode_image(_raw_msg(padded, "bgr8", 20, width=6), bag_io.IMAGE_TYPE), rgb)
    gray = rgb[..., 0]
    assert np.array_equal(bag_io.decode_image(_raw_msg(gray, "mono8", 6), bag_io.IMAGE_TYPE)[..., 2], gray)
    g16 = (gray.astype(np.uint16) << 8) | 0x7F
    out = bag_io.decode_image(_raw_msg(g16.astype("<u2"), "mono16", 12), bag_io.IMAGE_TYPE)
    assert np.array_equal(out[..., 1], gray)


def test_bad_frames_are_reported_not_fatal(tmp_path: Path) -> None:
    store = bag_io.typestore()
    with BagWriter(tmp_path / "bag") as bag:
        bag.write_image("/c", _frames(1)[0], 1, compressed="jpeg")
        bag.write(
            "/c",
            store.types[bag_io.COMPRESSED_TYPE](
                header=bag_io._header(2, ""), format="jpeg", data=np.frombuffer(b"not a jpeg", np.uint8)
            ),
            2,
        )
        bag.write_image("/c", _frames(1)[0], 3, compressed="jpeg")
        bag.add_topic("/r", bag_io.IMAGE_TYPE)
        bag.write("/r", _raw_msg(np.zeros((2, 2), np.uint8), "xyz9", 4), 4)
    got = list(iter_images(tmp_path / "bag", "/c"))
    assert [g.error is None for g in got] == [True, False, True]
    assert "neither JPEG nor PNG" in got[1].error and got[1].stamp_ns == 2
    (bad,) = iter_images(tmp_path / "bag", "/r")
    assert bad.rgb is None and "unknown encoding 'xyz9'" in bad.error


def test_telemetry_type_is_registered_from_the_msg_file(tmp_path: Path) -> None:
    store = bag_io.typestore()
    T = store.types[bag_io.TELEMETRY_TYPE]
    fields = T.__dataclass_fields__
    assert {"energy_j", "synaptic_ops", "layer_spike_rates", "end_to_end_ms"} <= set(fields)
    msg = T(**{k: _default(k, store) for k in fields if k != "__msgtype__"})
    with BagWriter(tmp_path / "bag", "mcap") as bag:
        bag.add_topic("/tel", bag_io.TELEMETRY_TYPE)
        bag.write("/tel", msg, 7)
    ((topic, mtype, t, back),) = bag_io.iter_messages(tmp_path / "bag")
    assert (topic, mtype, t, back.energy_j, back.timesteps) == ("/tel", bag_io.TELEMETRY_TYPE, 7, 1.5e-6, 4)


def _default(name: str, store):
    if name == "header":
        return bag_io._header(7, "cam")
    if name in ("layer_names",):
        return ["a"]
    if name == "layer_spike_rates":
        return np.array([0.1], np.float32)
    if name == "energy_j":
        return 1.5e-6
    if name == "timesteps":
        return 4
    if name == "ops_counted":
        return True
    if name in ("node_name", "model_name", "model_variant", "weights_id"):
        return "x"
    return 0


# -- bad input ---------------------------------------------------------------------------------


def test_missing_bag_is_named(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="does not exist"):
        bag_info(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match=r"no metadata\.yaml"):
        bag_info(tmp_path / "empty")


def test_unknown_storage_format_lists_the_accepted_ones(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "bag") as bag:
        bag.write_image("/c", _frames(1)[0], 1)
    meta = tmp_path / "bag" / "metadata.yaml"
    meta.write_text(meta.read_text().replace("storage_identifier: sqlite3", "storage_identifier: rosbag_v9"))
    with pytest.raises(
        BagError, match=r"storage format 'rosbag_v9' is not supported; accepted: sqlite3, mcap"
    ):
        bag_info(tmp_path / "bag")
    with pytest.raises(BagError, match="not supported"):
        BagWriter(tmp_path / "other", "zip")


def test_missing_topic_lists_the_topics_that_exist_and_wrong_type_is_named(tmp_path: Path) -> None:
    store = bag_io.typestore()
    with BagWriter(tmp_path / "bag") as bag:
        bag.write_image("/c", _frames(1)[0], 1)
        bag.add_topic("/chatter", "std_msgs/msg/String")
        bag.write("/chatter", store.types["std_msgs/msg/String"](data="hi"), 1)
    info = bag_info(tmp_path / "bag")
    with pytest.raises(
        BagError, match=r"'/cam' is not in .*topics in the bag: /c \[sensor_msgs/msg/Image, 1 msgs\]"
    ):
        check_image_topic(info, "/cam")
    with pytest.raises(BagError, match="has type std_msgs/msg/String; expected sensor_msgs/msg/Image"):
        check_image_topic(info, "/chatter")


def test_existing_output_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "bag")


# -- make-bag ----------------------------------------------------------------------------------


def _pairs_folder(root: Path, n: int = 3) -> Path:
    for sub in ("raw", "reference"):
        (root / sub).mkdir(parents=True)
    for i in range(1, n + 1):
        raw, ref = _frames(2, (16, 20))
        cv2.imwrite(str(root / "raw" / f"{i * 5}.png"), raw)
        cv2.imwrite(str(root / "reference" / f"{i * 5}.png"), ref)
    (root / "raw" / "notes.txt").write_text("not an image")
    return root


def test_make_bag_pairs_frames_with_same_stamped_references_in_natural_order(tmp_path: Path) -> None:
    root = _pairs_folder(tmp_path / "pairs")
    res = make_bag(root / "raw", tmp_path / "bag", rate_hz=4.0, storage="mcap", start_ns=10**9)
    assert (res.frames, res.references) == (3, 3)
    cams = list(iter_images(tmp_path / "bag", "/camera/image"))
    refs = list(iter_images(tmp_path / "bag", "/camera/reference"))
    assert (
        [c.stamp_ns for c in cams]
        == [r.stamp_ns for r in refs]
        == [10**9, 10**9 + 250_000_000, 10**9 + 500_000_000]
    )
    want = cv2.cvtColor(cv2.imread(str(root / "reference" / "10.png")), cv2.COLOR_BGR2RGB)  # 5, 10, 15
    assert np.array_equal(refs[1].rgb, want)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return cli(*args, cwd=REPO)


def test_make_bag_cli_writes_compressed_mcap_and_rejects_bad_input(tmp_path: Path) -> None:
    root = _pairs_folder(tmp_path / "pairs")
    ok = _cli("make-bag", str(root), "--out", str(tmp_path / "bag"), "--compressed", "--format", "mcap")
    assert ok.returncode == 0, ok.stderr
    assert "3 frames, 3 references" in ok.stdout
    assert set(bag_info(tmp_path / "bag").topics) == {
        "/camera/image/compressed",
        "/camera/reference/compressed",
    }
    missing = _cli("make-bag", str(tmp_path / "nope"), "--out", str(tmp_path / "b2"))
    assert (
        missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )
    again = _cli("make-bag", str(root), "--out", str(tmp_path / "bag"))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_make_bag_reads_a_video_at_its_frame_rate(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    assert writer.isOpened()
    for i in range(6):
        writer.write(np.full((24, 32, 3), i * 40, np.uint8))
    writer.release()
    res = make_bag(path, tmp_path / "bag", start_ns=0)
    assert res.frames == 6 and res.references == 0
    got = list(iter_images(tmp_path / "bag", "/camera/image"))
    assert [g.stamp_ns for g in got] == [i * 200_000_000 for i in range(6)]
    assert abs(int(got[3].rgb.mean()) - 120) <= 3


def test_make_bag_rejects_a_file_that_is_neither_images_nor_video(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(BagError, match="neither a folder of images nor a video"):
        make_bag(tmp_path / "notes.txt", tmp_path / "bag")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="holds no images"):
        make_bag(tmp_path / "empty", tmp_path / "bag")
