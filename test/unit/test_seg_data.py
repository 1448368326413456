"""Segmentation folders: palette / grey / colour masks, the fixed-seed split, the dataset."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from snn_perception.offline.seg_data import (
    SUIM_COLORS,
    SegDataError,
    SegDataset,
    list_pairs,
    read_mask,
    select_split,
    split_pairs,
)


def write_palette_png(path, ids: np.ndarray, palette: list[tuple[int, int, int]]) -> None:
    """A real indexed PNG (colour type 3), written by hand: OpenCV cannot write palettes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w = ids.shape
    raw = b"".join(b"\x00" + ids[y].astype(np.uint8).tobytes() for y in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
    png += chunk(b"PLTE", bytes(c for rgb in palette for c in rgb)) + chunk(b"IDAT", zlib.compress(raw))
    path.write_bytes(png + chunk(b"IEND", b""))


def test_palette_mask_gives_the_palette_indices_even_for_non_suim_colours(tmp_path):
    ids = np.array([[0, 1, 2], [3, 2, 1]], np.uint8)
    palette = [(10, 20, 30), (200, 0, 0), (0, 0, 0), (5, 5, 250)]  # index 2 black, not index 0
    write_palette_png(tmp_path / "m.png", ids, palette)
    assert np.array_equal(read_mask(tmp_path / "m.png"), ids)


def test_grey_mask_holds_class_ids(tmp_path):
    ids = np.array([[0, 7, 3], [1, 255, 2]], np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), ids)
    assert np.array_equal(read_mask(tmp_path / "g.png"), ids)


def test_suim_colour_mask_maps_to_ids(tmp_path):
    ids = np.arange(8, dtype=np.uint8).reshape(2, 4)
    rgb = np.array(SUIM_COLORS, np.uint8)[ids]
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_mask(tmp_path / "c.png"), ids)


def make_folder(root, n=10, hw=(32, 48)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(root / "images" / f"im{i:02d}.jpg"), rng.integers(0, 255, (*hw, 3), dtype=np.uint8))
        cv2.imwrite(str(root / "masks" / f"im{i:02d}.png"), rng.integers(0, 9, hw, dtype=np.uint8))
    (root / "images" / "orphan.jpg").write_bytes((root / "images" / "im00.jpg").read_bytes())
    return root


def test_pairs_match_by_stem_and_split_is_fixed_disjoint_and_complete(tmp_path):
    root = make_folder(tmp_path / "d")
    pairs = list_pairs(root)
    assert len(pairs) == 10  # the orphan image without a mask is skipped
    train, val = split_pairs(pairs, 0.2, seed=0)
    assert len(val) == 2 and len(train) == 8
    assert not set(train) & set(val) and set(train) | set(val) == set(pairs)
    assert split_pairs(pairs, 0.2, seed=0) == (train, val)
    assert split_pairs(pairs, 0.2, seed=1) != (train, val)
    assert select_split([root], "val") == val


def test_dataset_resizes_crops_and_marks_unknown_ids_ignored(tmp_path):
    root = make_folder(tmp_path / "d")
    ds = SegDataset(list_pairs(root), size=(32, 32), crop=(16, 16), num_classes=8)
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and y.shape == (16, 16)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert set(np.unique(y.numpy())) <= set(range(8)) | {255}
    assert (ds.masks[0] == 255).any()  # id 8 ≥ num_classes became ignore


def test_missing_folders_are_reported(tmp_path):
    with pytest.raises(SegDataError, match="images/ and masks/"):
        list_pairs(tmp_path)


def test_shared_suim_masks_decode_to_the_eight_classes(shared):
    pairs = list_pairs(shared / "data" / "suim_trainval")
    assert len(pairs) == 1472
    ids = set()
    for _, mask in pairs[:40]:
        ids |= set(np.unique(read_mask(mask)).tolist())
    assert ids <= set(range(8)) and len(ids) >= 4
    train, val = split_pairs(pairs, 0.2, 0)
    assert (len(train), len(val)) == (1178, 294)


def test_truncated_images_and_masks_are_refused_naming_the_file(tmp_path):
    import cv2
    import numpy as np

    from snn_perception.offline.seg_data import SegDataError, read_mask, read_rgb

    ok, png = cv2.imencode(".png", np.tile(np.arange(8, dtype=np.uint8), (16, 2)))
    ok2, jpg = cv2.imencode(".jpg", np.full((16, 16, 3), 90, np.uint8))
    assert ok and ok2
    (tmp_path / "m.png").write_bytes(png.tobytes()[: len(png) - 20])
    (tmp_path / "i.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])
    with pytest.raises(SegDataError, match=r"m\.png: not a readable mask \(corrupt PNG"):
        read_mask(tmp_path / "m.png")
    with pytest.raises(SegDataError, match=r"i\.jpg: corrupt JPEG"):
        read_rgb(tmp_path / "i.jpg")
