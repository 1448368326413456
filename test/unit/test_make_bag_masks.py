"""``make-bag`` with segmentation ground truth: a SUIM-layout folder (``images/`` + ``masks/``) gives
a lossless ``mono8`` mask topic with the images' stamps, and an offline replay of it reports mIoU."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli, refused, snapshot
from test_seg_data import write_palette_png

from snn_perception.offline.seg_data import read_mask
from snn_perception.replay import bag_io
from snn_perception.replay.bag_io import BagError, bag_info, iter_images, iter_messages
from snn_perception.replay.make_bag import make_bag
from snn_perception.runtime.stamps import header_ns

HW = (24, 32)
PALETTE = [(0, 0, 0), (0, 0, 255), (0, 255, 0), (0, 255, 255), (255, 0, 0), (255, 0, 255), (255, 255, 0)]


def _ids(seed: int, hw: tuple[int, int] = HW) -> np.ndarray:
    """Blocks of a few class ids (0…6)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, len(PALETTE), (hw[0] // 8 + 1, hw[1] // 8 + 1)).astype(np.uint8)
    return np.kron(blocks, np.ones((8, 8), np.uint8))[: hw[0], : hw[1]]


def suim_folder(root: Path, n: int = 3) -> dict[str, np.ndarray]:
    """root/images/{0..n-1}.jpg + root/masks/*.png (palette, then grey); stem → class ids."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    ids = {}
    for i in range(n):
        rgb = np.random.default_rng(i).integers(0, 256, (*HW, 3), np.uint8)
        assert cv2.imwrite(str(root / "images" / f"{i}.jpg"), rgb)
        ids[str(i)] = _ids(100 + i)
        if i % 2 == 0:
            write_palette_png(root / "masks" / f"{i}.png", ids[str(i)], PALETTE)
        else:
            assert cv2.imwrite(str(root / "masks" / f"{i}.png"), ids[str(i)])  # grey class ids
    return ids


def _mask_messages(bag: Path, topic: str = "/camera/mask") -> list:
    return [msg for t, _type, _ns, msg in iter_messages(bag, [topic]) if t == topic]


def _check_masks(bag: Path, ids: dict[str, np.ndarray], image_topic: str) -> None:
    info = bag_info(bag)
    assert info.topics["/camera/mask"].msgtype == bag_io.IMAGE_TYPE
    msgs = _mask_messages(bag)
    assert [m.encoding for m in msgs] == ["mono8"] * len(ids)
    got = [np.asarray(m.data, np.uint8).reshape(m.height, m.step)[:, : m.width] for m in msgs]
    assert all(np.array_equal(g, ids[str(i)]) for i, g in enumerate(got))
    frames = [it.stamp_ns for it in iter_images(bag, image_topic)]
    masks = [header_ns(m.header) for m in msgs]
    assert frames == masks and len(set(frames)) == len(ids)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_suim_folder_gives_a_mono8_mask_topic_with_the_images_stamps(tmp_path: Path, storage: str) -> None:
    ids = suim_folder(tmp_path / "suim")
    res = make_bag(tmp_path / "suim", tmp_path / "bag", rate_hz=5.0, storage=storage, start_ns=10**9)
    assert (res.frames, res.references, res.masks) == (3, 0, 3)
    assert res.topics == {"/camera/image": 3, "/camera/mask": 3}
    _check_masks(tmp_path / "bag", ids, "/camera/image")
    assert [it.stamp_ns for it in iter_images(tmp_path / "bag", "/camera/image")] == [
        10**9 + i * 200_000_000 for i in range(3)
    ]
    # the masks decode exactly as the training data reader decodes them
    for i, m in enumerate(_mask_messages(tmp_path / "bag")):
        want = read_mask(tmp_path / "suim" / "masks" / f"{i}.png")
        assert np.array_equal(np.asarray(m.data, np.uint8).reshape(m.height, m.width), want)
    # an images/ folder with a sibling masks/ is the same layout
    res = make_bag(tmp_path / "suim" / "images", tmp_path / "bag2", storage=storage, start_ns=10**9)
    assert res.masks == 3


def test_suim_colour_masks_and_an_explicit_masks_folder(tmp_path: Path) -> None:
    frames, labels = tmp_path / "frames", tmp_path / "labels"
    frames.mkdir()
    labels.mkdir()
    ids = {}
    for i in range(2):
        assert cv2.imwrite(str(frames / f"f{i}.png"), np.full((*HW, 3), 60 * i, np.uint8))
        ids[str(i)] = _ids(7 + i)
        r, g, b = ((ids[str(i)] >> s) & 1 for s in (2, 1, 0))  # SUIM: id = 4·R + 2·G + B
        bgr = np.stack([b, g, r], axis=-1).astype(np.uint8) * 255
        assert cv2.imwrite(str(labels / f"f{i}.bmp"), bgr)
    res = make_bag(frames, tmp_path / "bag", masks=labels, mask_topic="/gt/mask", start_ns=0)
    assert res.masks == 2 and set(res.topics) == {"/camera/image", "/gt/mask"}
    got = _mask_messages(tmp_path / "bag", "/gt/mask")
    assert all(
        np.array_equal(np.asarray(m.data, np.uint8).reshape(HW), ids[str(i)]) for i, m in enumerate(got)
    )
    # without --masks a plain folder writes no mask topic, as before
    assert make_bag(frames, tmp_path / "bag2").masks == 0


def test_compressed_compresses_only_the_images(tmp_path: Path) -> None:
    ids = suim_folder(tmp_path / "suim")
    ok = cli("make-bag", "suim", "--out", "bag", "--compressed", "--format", "mcap", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "3 frames, 0 references, 3 masks" in ok.stdout and "--mask-topic /camera/mask" in ok.stdout
    info = bag_info(tmp_path / "bag")
    assert set(info.topics) == {"/camera/image/compressed", "/camera/mask"}
    assert info.topics["/camera/image/compressed"].msgtype == bag_io.COMPRESSED_TYPE
    _check_masks(tmp_path / "bag", ids, "/camera/image/compressed")


def _no_bag_refused(tmp_path: Path, *words: str, extra: tuple[str, ...] = ()) -> None:
    before = snapshot(tmp_path)
    proc = cli("make-bag", "suim", "--out", "bag", *extra, cwd=tmp_path)
    refused(proc, "snn-perception make-bag: error:", *words, one_line=True)
    assert not (tmp_path / "bag").exists() and snapshot(tmp_path) == before


def test_a_mask_of_another_size_is_refused_naming_both_files(tmp_path: Path) -> None:
    suim_folder(tmp_path / "suim")
    assert cv2.imwrite(str(tmp_path / "suim" / "masks" / "1.png"), _ids(1, (20, 32)))
    _no_bag_refused(tmp_path, "masks/1.png is 32×20", "images/1.jpg is 32×24", "its image's size")
    with pytest.raises(BagError, match="is 32×20 but its image"):
        make_bag(tmp_path / "suim", tmp_path / "bag", skip_unreadable=True)  # not a readability issue
    assert not (tmp_path / "bag").exists()


def test_a_missing_mask_is_refused_by_name(tmp_path: Path) -> None:
    suim_folder(tmp_path / "suim")
    (tmp_path / "suim" / "masks" / "2.png").unlink()
    _no_bag_refused(tmp_path, "1 of the 3 images", "no mask of the same name", "2.jpg", "every image needs")


def test_an_unreadable_mask_is_refused_or_left_out_with_its_image(tmp_path: Path) -> None:
    ids = suim_folder(tmp_path / "suim")
    mask = tmp_path / "suim" / "masks" / "1.png"
    mask.write_bytes(mask.read_bytes()[:-30])  # truncated PNG: no IEND
    _no_bag_refused(tmp_path, "1 of the 6 images cannot be read", "masks/1.png", "--skip-unreadable")
    res = make_bag(tmp_path / "suim", tmp_path / "bag", skip_unreadable=True, start_ns=0)
    assert (res.frames, res.masks) == (2, 2) and len(res.skipped) == 2
    msgs = _mask_messages(tmp_path / "bag")
    assert np.array_equal(np.asarray(msgs[1].data, np.uint8).reshape(HW), ids["2"])
    cams = list(iter_images(tmp_path / "bag", "/camera/image"))
    assert [c.stamp_ns for c in cams] == [header_ns(m.header) for m in msgs]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--mask-topic", "bad topic"), ("--mask-topic", "not a valid ROS topic name")),
        (("--mask-topic", "/camera/image"), ("--topic and --mask-topic", "a topic of their own")),
        (
            ("--reference-topic", "/gt", "--mask-topic", "/gt"),
            ("--reference-topic and --mask-topic", "'/gt'"),
        ),
        (("--masks", "nowhere"), ("--masks nowhere does not exist",)),
        (("--masks", "suim/images"), ("is the image folder itself",)),
    ],
)
def test_bad_mask_options_are_refused(tmp_path: Path, extra: tuple[str, ...], words: tuple[str, ...]) -> None:
    suim_folder(tmp_path / "suim")
    _no_bag_refused(tmp_path, *words, extra=extra)


def test_an_offline_replay_of_the_bag_reports_miou(tmp_path: Path) -> None:
    suim_folder(tmp_path / "suim")
    assert cli("make-bag", "suim", "--out", "bag", "--compressed", cwd=tmp_path).returncode == 0
    args = ["--mode", "offline", "--as-fast-as-possible", "--mask-topic", "/camera/mask", "--no-dehaze"]
    args += ["--threads", "1", "--no-progress", "--samples", "1", "--out", "rep"]
    proc = cli("replay", "bag", *args, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "mIoU" in proc.stdout
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["topics"]["mask"] == "/camera/mask"
    (run,) = report["summary"]
    miou = run["segment"]["quality"]["miou_dataset"]
    assert isinstance(miou, float) and 0.0 <= miou <= 1.0
    with open(tmp_path / "rep" / "frames.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(0.0 <= float(r["seg_miou"]) <= 1.0 for r in rows)
