"""Image encodings ↔ RGB: every accepted encoding decodes to the right colours, and every malformed
message is refused with an :class:`ImageDecodeError` that names the problem."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_perception.runtime.image_codec import (
    ImageDecodeError,
    decode_compressed,
    decode_image,
    encode_compressed,
    encode_image,
    output_encoding,
)


def _rgb(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _decode(encoding, arr, step=None, bigendian=False, max_pixels=10**7):
    h, w = arr.shape[:2]
    data = arr.tobytes()
    return decode_image(encoding, h, w, step or len(data) // h, bigendian, data, max_pixels)


# -- correct decoding ------------------------------------------------------------------------------


def test_rgb8_round_trips_exactly():
    img = _rgb()
    data, step = encode_image(img, "rgb8")
    np.testing.assert_array_equal(decode_image("rgb8", 6, 8, step, False, data), img)


@pytest.mark.parametrize("encoding", ["bgr8", "8UC3"])
def test_bgr_orders_are_swapped_to_rgb(encoding):
    img = _rgb()
    np.testing.assert_array_equal(_decode(encoding, img[..., ::-1].copy()), img)


@pytest.mark.parametrize("encoding,order", [("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0]), ("8UC4", [2, 1, 0])])
def test_alpha_is_dropped_and_channels_reordered(encoding, order):
    img = _rgb()
    four = np.concatenate([img[..., order], np.full((6, 8, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(_decode(encoding, four), img)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(encoding):
    grey = _rgb()[..., 0]
    out = _decode(encoding, grey[..., None])
    assert out.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("bigendian", [False, True])
def test_16bit_scales_full_range_by_257_in_either_byte_order(encoding, bigendian):
    values = np.array([[0, 1, 129, 257, 32896, 65279, 65534, 65535]], np.uint16)
    arr = values.astype(">u2" if bigendian else "<u2")
    out = _decode(encoding, arr[..., None], bigendian=bigendian)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 1, 128, 254, 255, 255])


def test_32fc1_is_clipped_to_unit_range():
    arr = np.array([[-1.0, 0.0, 0.5, 1.0, 3.0, 0.2]], np.float32)
    out = _decode("32FC1", arr[..., None])
    np.testing.assert_array_equal(out[0, :, 1], [0, 0, 128, 255, 255, 51])


def test_32fc1_big_endian():
    arr = np.array([[0.25, 0.75]], ">f4")
    out = _decode("32FC1", arr[..., None], bigendian=True)
    np.testing.assert_array_equal(out[0, :, 2], [64, 191])


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "mono16", "32FC1", "yuv422", "bayer_rggb8"])
def test_step_padding_is_skipped(encoding):
    from snn_perception.runtime.image_codec import bytes_per_pixel

    h, w = 4, 6
    row = w * bytes_per_pixel(encoding)
    rng = np.random.default_rng(1)
    payload = rng.integers(0, 256, (h, row), dtype=np.uint8)
    if encoding == "32FC1":
        payload = rng.random((h, w), dtype=np.float32).view(np.uint8).reshape(h, row)
    padded = np.concatenate([payload, np.full((h, 5), 255, np.uint8)], axis=1)
    tight = decode_image(encoding, h, w, row, False, payload.tobytes())
    loose = decode_image(encoding, h, w, row + 5, False, padded.tobytes())  # odd padding, unaligned rows
    np.testing.assert_array_equal(tight, loose)


def test_uyvy_and_yuyv_are_told_apart():
    # one pixel pair with a strongly red chroma; BT.601 limited (video) range, as cameras send it
    y, u, v = 120, 90, 240
    uyvy = np.array([[[u, y], [v, y]]], np.uint8)  # U Y0 V Y1
    yuyv = np.array([[[y, u], [y, v]]], np.uint8)  # Y0 U Y1 V
    c, d, e = 1.164 * (y - 16), u - 128, v - 128
    expected = np.clip(np.round([c + 1.596 * e, c - 0.391 * d - 0.813 * e, c + 2.018 * d]), 0, 255)
    for enc, arr in (("yuv422", uyvy), ("uyvy", uyvy), ("yuv422_yuy2", yuyv), ("yuyv", yuyv)):
        out = _decode(enc, arr)
        assert out.shape == (1, 2, 3)
        np.testing.assert_allclose(out[0, 0].astype(int), expected.astype(int), atol=3, err_msg=enc)
        assert out[0, 0, 0] > out[0, 0, 2], f"{enc}: V>U must be reddish"
    # the same bytes read with the other convention are not red
    assert not np.allclose(_decode("yuv422_yuy2", uyvy)[0, 0].astype(int), expected.astype(int), atol=10)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("colour", [0, 1, 2])
def test_bayer_patterns_recover_a_uniform_colour(pattern, colour):
    h, w = 8, 8
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., colour] = 200
    index = {"r": 0, "g": 1, "b": 2}
    mosaic = np.zeros((h, w), np.uint8)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, index[pattern[k]]]
    out = _decode(f"bayer_{pattern}8", mosaic[..., None])
    np.testing.assert_array_equal(out[3:5, 3:5].reshape(-1, 3).max(0), rgb[0, 0])
    out16 = _decode(f"bayer_{pattern}16", (mosaic.astype(np.uint16) * 257)[..., None])
    np.testing.assert_array_equal(out16, out)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_round_trip(fmt):
    img = np.zeros((32, 48, 3), np.uint8)
    img[:, :24] = (200, 30, 10)
    img[:, 24:] = (10, 60, 220)
    out = decode_compressed(fmt, encode_compressed(img, fmt))
    assert out.shape == img.shape
    tol = 0 if fmt == "png" else 12
    assert np.abs(out.astype(int) - img.astype(int))[:, 4:20].max() <= tol


def test_compressed_format_strings_from_image_transport_are_accepted():
    data = encode_compressed(_rgb(16, 16), "jpeg")
    for fmt in ("jpeg", "rgb8; jpeg compressed bgr8", "", "JPEG"):
        assert decode_compressed(fmt, data).shape == (16, 16, 3)
    png = encode_compressed(_rgb(16, 16), "png")
    assert decode_compressed("bgr8; png compressed bgr8", png).shape == (16, 16, 3)


def test_output_encoding_follows_the_input_family():
    assert output_encoding("bgr8") == "bgr8"
    assert output_encoding("bgra8") == "bgr8"
    assert output_encoding("8UC3") == "bgr8"
    for enc in ("rgb8", "rgba8", "32FC1", "yuv422", "bayer_rggb8"):
        assert output_encoding(enc) == "rgb8"
    for enc in ("mono8", "mono16"):  # a mono camera's enhanced image stays mono
        assert output_encoding(enc) == "mono8"


def test_encode_bgr8_and_mono8():
    img = _rgb()
    data, step = encode_image(img, "bgr8")
    assert step == 24
    np.testing.assert_array_equal(np.frombuffer(data, np.uint8).reshape(6, 8, 3), img[..., ::-1])
    ids = np.arange(48, dtype=np.uint8).reshape(6, 8)
    data, step = encode_image(ids, "mono8")
    assert step == 8 and data == ids.tobytes()
    with pytest.raises(ValueError, match="accepted"):
        encode_image(img, "yuv422")


def test_result_is_writable_and_independent_of_the_message_buffer():
    buf = bytearray(_rgb().tobytes())
    out = decode_image("rgb8", 6, 8, 24, False, buf)
    buf[0] ^= 0xFF
    assert out.flags.writeable and out.flags.c_contiguous
    assert out[0, 0, 0] != buf[0]


# -- malformed inputs: ≥ 50 cases, each with the words its error must contain ---------------------

_GOOD = _rgb(4, 4).tobytes()
_JPEG = encode_compressed(_rgb(24, 32, seed=3), "jpeg")
_PNG = encode_compressed(_rgb(24, 32, seed=3), "png")
_NAN = np.array([[0.5, np.nan], [0.1, 0.2]], np.float32).tobytes()
_INF = np.array([[0.5, np.inf], [-np.inf, 0.2]], np.float32).tobytes()


def _raw(enc="rgb8", h=4, w=4, step=12, be=False, data=_GOOD, max_pixels=10**6):
    return ("raw", enc, h, w, step, be, data, max_pixels)


MALFORMED_RAW = [
    (_raw(h=0), "zero-size"),
    (_raw(w=0), "zero-size"),
    (_raw(h=0, w=0, step=0, data=b""), "zero-size"),
    (_raw(h=-1), "zero-size"),
    (_raw(w=-5), "zero-size"),
    (_raw(data=b""), "fewer than step"),
    (_raw(data=_GOOD[:-1]), "fewer than step"),
    (_raw(data=_GOOD[:12]), "fewer than step"),
    (_raw(step=16), "fewer than step"),
    (_raw(h=5), "fewer than step"),
    (_raw(step=11), "smaller than width"),
    (_raw(step=0), "smaller than width"),
    (_raw(step=-12), "smaller than width"),
    (_raw(enc="mono16", step=4), "smaller than width"),
    (_raw(enc="mono16", step=9, data=bytes(35)), "fewer than step"),
    (_raw(enc="32FC1", step=18, data=bytes(71)), "fewer than step"),
    (_raw(enc="mono16", step=8, data=bytes(31)), "fewer than step"),
    (_raw(enc="32FC1", step=16, data=bytes(63)), "fewer than step"),
    (_raw(enc="rgba8", step=12), "smaller than width"),
    (_raw(enc="bgra8", step=16), "fewer than step"),
    (_raw(enc="yuv422", w=3, step=6, data=bytes(24)), "even"),
    (_raw(enc="yuv422_yuy2", w=5, step=10, data=bytes(40)), "even"),
    (_raw(enc="yuv422", step=4), "smaller than width"),
    (_raw(enc=""), "unknown encoding"),
    (_raw(enc="RGB8"), "unknown encoding"),
    (_raw(enc="rgb16"), "unknown encoding"),
    (_raw(enc="nv12"), "unknown encoding"),
    (_raw(enc="jpeg"), "unknown encoding"),
    (_raw(enc="64FC1"), "unknown encoding"),
    (_raw(enc="bayer_xyzw8"), "unknown encoding"),
    (_raw(enc="mono8 "), "unknown encoding"),
    (_raw(enc="\x00"), "unknown encoding"),
    (_raw(enc="32FC1", h=2, w=2, step=8, data=_NAN), "NaN/inf"),
    (_raw(enc="32FC1", h=2, w=2, step=8, data=_INF), "NaN/inf"),
    (_raw(enc="32FC1", h=1, w=1, step=4, data=np.float32(np.nan).tobytes()), "NaN/inf"),
    (_raw(enc="32FC1", h=1, w=1, step=4, be=True, data=b"\x7f\x80\x00\x00"), "NaN/inf"),
    (_raw(h=2000, w=2000, step=6000, data=b"", max_pixels=1000), "max_input_pixels"),
    (_raw(h=1001, w=1, step=3, data=bytes(3003), max_pixels=1000), "max_input_pixels"),
    (_raw(h=10**6, w=10**6, step=3 * 10**6, data=b"", max_pixels=10**7), "max_input_pixels"),
]

_TRUNC_JPEG = _JPEG[: len(_JPEG) // 2]
_BAD_MARKER = b"\xff\xd8\xff\xe0\x00\x10" + bytes(14) + b"\x12\x34" + _JPEG[20:]


def _comp(fmt, data, max_pixels=10**6):
    return ("compressed", fmt, data, max_pixels)


MALFORMED_COMPRESSED = [
    (_comp("jpeg", b""), "empty"),
    (_comp("png", b""), "empty"),
    (_comp("jpeg", b"\x00" * 100), "neither JPEG nor PNG"),
    (_comp("jpeg", b"GIF89a" + bytes(50)), "neither JPEG nor PNG"),
    (_comp("jpeg", b"\xff\xd8"), "neither JPEG nor PNG"),
    (_comp("jpeg", _TRUNC_JPEG), "truncated"),
    (_comp("jpeg", _JPEG[:-2]), "truncated"),
    (_comp("jpeg", _JPEG[:20]), "corrupt JPEG"),
    (_comp("jpeg", b"\xff\xd8\xff\xd9"), "corrupt JPEG"),
    (_comp("jpeg", b"\xff\xd8\xff\xe0\x00\x01" + bytes(10) + b"\xff\xd9"), "corrupt JPEG"),
    (_comp("jpeg", b"\xff\xd8\xff\xda\x00\x08" + bytes(20) + b"\xff\xd9"), "corrupt JPEG"),
    (_comp("jpeg", _JPEG[:2] + b"\xff\xc0\x00\x11\x08\x00\x00\x00\x00" + _JPEG[2:]), "zero-size"),
    (_comp("jpeg", _BAD_MARKER), "expected a marker"),
    (_comp("png", _PNG[:10]), "corrupt PNG"),
    (_comp("png", _PNG[: len(_PNG) // 2]), "truncated"),
    (_comp("png", _PNG[:16] + b"\x00\x00\x00\x00" + _PNG[20:]), "zero-size"),
    (_comp("png", _PNG[:8] + b"\x00\x00\x00\x0dXXXX" + _PNG[16:]), "corrupt PNG"),
    (_comp("png", _PNG[:40] + bytes(30) + _PNG[70:]), "corrupt PNG"),
    (_comp("png", _PNG[:16] + b"\x00\x01\x00\x00\x00\x01\x00\x00" + _PNG[24:]), "max_input_pixels"),
    (_comp("jpeg", _JPEG, max_pixels=100), "max_input_pixels"),
    (_comp("png", _PNG, max_pixels=767), "max_input_pixels"),
    (_comp("png", _JPEG), "does not match"),
    (_comp("rgb8; png compressed bgr8", _JPEG), "does not match"),
    (_comp("jpeg", _PNG), "does not match"),
    (_comp("tiff", _PNG), "does not match"),
    (_comp("16UC1; compressedDepth png", _PNG), "compressedDepth"),
]


def test_there_are_at_least_fifty_malformed_cases():
    assert len(MALFORMED_RAW) + len(MALFORMED_COMPRESSED) >= 50


def _apply(case):
    if case[0] == "raw":
        _, enc, h, w, step, be, data, max_pixels = case
        return decode_image(enc, h, w, step, be, data, max_pixels)
    _, fmt, data, max_pixels = case
    return decode_compressed(fmt, data, max_pixels)


@pytest.mark.parametrize("case,words", MALFORMED_RAW + MALFORMED_COMPRESSED)
def test_malformed_input_is_refused_with_a_reason(case, words):
    with pytest.raises(ImageDecodeError, match=words.replace("(", r"\(")):
        _apply(case)


# -- property: arbitrary headers and bytes never crash with anything but ImageDecodeError ---------

_ENCODINGS = st.sampled_from(
    [
        "rgb8",
        "bgr8",
        "rgba8",
        "bgra8",
        "mono8",
        "mono16",
        "16UC1",
        "32FC1",
        "8UC3",
        "yuv422",
        "yuv422_yuy2",
        "bayer_rggb8",
        "bayer_grbg16",
        "bogus",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    enc=_ENCODINGS,
    h=st.integers(-2, 12),
    w=st.integers(-2, 12),
    step=st.integers(-4, 64),
    be=st.booleans(),
    data=st.binary(max_size=600),
)
def test_random_raw_messages_decode_or_raise_image_decode_error(enc, h, w, step, be, data):
    try:
        out = decode_image(enc, h, w, step, be, data, max_pixels=10**4)
    except ImageDecodeError:
        return
    assert out.shape == (h, w, 3) and out.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, len(_JPEG)), flip=st.integers(0, len(_JPEG) - 1), val=st.integers(0, 255))
def test_damaged_jpegs_decode_or_raise_image_decode_error(cut, flip, val):
    data = bytearray(_JPEG[:cut] if cut < len(_JPEG) else _JPEG)
    if flip < len(data):
        data[flip] = val
    try:
        out = decode_compressed("jpeg", bytes(data), max_pixels=10**5)
    except ImageDecodeError:
        return
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


# -- image files: the checks of compressed messages, and what real files carry -------------------


def _thumbnail_app1(jpeg: bytes) -> bytes:
    """An EXIF-like APP1 segment holding a whole small JPEG (with its own end marker)."""
    thumb = encode_compressed(_rgb(8, 8, seed=5), "jpeg")
    return b"\xff\xe1" + (len(thumb) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + thumb


def test_bytes_after_the_end_of_image_marker_are_accepted():
    for tail in (bytes(32), b"ftypmp42" + bytes(64), b"\xff\xd8 not another image"):
        out = decode_compressed("jpeg", _JPEG + tail)
        assert np.array_equal(out, decode_compressed("jpeg", _JPEG))
    assert np.array_equal(decode_compressed("png", _PNG + b"trailer"), decode_compressed("png", _PNG))


def test_a_thumbnail_end_marker_does_not_hide_a_truncated_image():
    with_thumb = _JPEG[:2] + _thumbnail_app1(_JPEG) + _JPEG[2:]
    assert decode_compressed("jpeg", with_thumb).shape == (24, 32, 3)
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_compressed("jpeg", with_thumb[: len(with_thumb) - 200])


def test_read_image_file_names_the_file_and_the_problem(tmp_path):
    from snn_perception.runtime.image_codec import read_image_file

    cases = {
        "cut.jpg": (_JPEG[: len(_JPEG) // 2], "truncated"),
        "cut.png": (_PNG[:-20], "truncated"),
        "empty.png": (b"", "empty file"),
        "text.bmp": (b"hello", "not a readable image"),
    }
    for name, (data, words) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageDecodeError, match=rf"{re.escape(str(tmp_path / name))}: .*{words}"):
            read_image_file(tmp_path / name)
    with pytest.raises(ImageDecodeError, match=r"missing\.png: cannot be read"):
        read_image_file(tmp_path / "missing.png")
    (tmp_path / "big.jpg").write_bytes(_JPEG)
    assert read_image_file(tmp_path / "big.jpg", max_pixels=None).shape == (24, 32, 3)


def test_overlapping_quiet_decodes_restore_opencv_log_level() -> None:
    import threading

    import cv2

    from snn_perception.runtime.image_codec import _quiet_opencv

    logging = cv2.utils.logging
    before = logging.getLogLevel()
    entered, release = threading.Barrier(3), threading.Event()

    def decode() -> None:
        with _quiet_opencv():
            entered.wait(5)
            release.wait(5)

    threads = [threading.Thread(target=decode) for _ in range(2)]
    for t in threads:
        t.start()
    entered.wait(5)
    assert logging.getLogLevel() == logging.LOG_LEVEL_SILENT
    release.set()
    for t in threads:
        t.join(5)
    assert logging.getLogLevel() == before
