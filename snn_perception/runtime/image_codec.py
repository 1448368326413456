"""Camera image encodings ↔ ``H×W×3`` RGB uint8 arrays, without ``sensor_msgs`` or cv_bridge.

The ROS 2 cv_bridge is not installable everywhere and its PyPI port is broken, so the nodes,
replay and tests convert messages here. The functions take the fields of a
``sensor_msgs/Image`` (or ``CompressedImage``) as plain values, so this module stays ROS-free.

Scaling of non-8-bit encodings (fixed, so that frames do not flicker as min-max scaling would):

* ``mono16`` / ``16UC1`` (and ``bayer_*16``): full-range linear, ``v8 = round(v16 / 257)``
  (65535 → 255), then grey is replicated to three channels.
* ``32FC1``: values are taken as intensities in [0, 1], clipped to that range and scaled by 255;
  NaN or ±inf anywhere rejects the frame (a sensor fault must not look like a black pixel).

Colour conventions: ``8UC3`` is OpenCV's BGR order; ``8UC4`` is BGRA; ``yuv422`` is UYVY
(the ROS name) and ``yuv422_yuy2`` is YUYV, both BT.601 limited (video) range as OpenCV decodes
them; Bayer names give the colour of the top-left 2×2 tile in reading order. Compressed images
are recognised by their magic bytes (JPEG or PNG); the ``format`` string must not name anything else.

Image files are read here too (:func:`read_image_file`, for the CLI, training and evaluation), with
the same checks for JPEG and PNG, so a truncated file is refused everywhere rather than read half grey.

Every problem raises :class:`ImageDecodeError` whose message says what was wrong and what is
accepted, so a node can drop the frame and report why.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from snn_perception.runtime.image_containers import (
    PNG_MAGIC,
    ImageDecodeError,
    check_complete,
    jpeg_size,
    png_size,
)

#: default refusal limit: a 4K frame has 8.3 Mpx; more is almost surely a malformed header.
DEFAULT_MAX_PIXELS = 16_000_000
#: image files every reader of this package accepts (frame sources, make-bag, pairs, masks, the CLI)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
#: video files (make-bag, bringup --source): pointed to when one is given where images are expected
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def open_video(path: str | Path) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` of a file without FFmpeg's own stderr lines (``moov atom not found``):
    a damaged video is reported by the caller in one line that names it and says what to do."""
    # read by OpenCV when its FFmpeg backend first starts; a value the user set is kept
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    return cv2.VideoCapture(str(path))


@dataclass(frozen=True)
class _Layout:
    channels: int
    dtype: str  # numpy base type without byte order: 'u1', 'u2', 'f4'


_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(3, "u1"),
    "bgr8": _Layout(3, "u1"),
    "8UC3": _Layout(3, "u1"),
    "rgba8": _Layout(4, "u1"),
    "bgra8": _Layout(4, "u1"),
    "8UC4": _Layout(4, "u1"),
    "mono8": _Layout(1, "u1"),
    "8UC1": _Layout(1, "u1"),
    "mono16": _Layout(1, "u2"),
    "16UC1": _Layout(1, "u2"),
    "32FC1": _Layout(1, "f4"),
    "yuv422": _Layout(2, "u1"),
    "uyvy": _Layout(2, "u1"),
    "yuv422_yuy2": _Layout(2, "u1"),
    "yuyv": _Layout(2, "u1"),
    "bayer_rggb8": _Layout(1, "u1"),
    "bayer_bggr8": _Layout(1, "u1"),
    "bayer_gbrg8": _Layout(1, "u1"),
    "bayer_grbg8": _Layout(1, "u1"),
    "bayer_rggb16": _Layout(1, "u2"),
    "bayer_bggr16": _Layout(1, "u2"),
    "bayer_gbrg16": _Layout(1, "u2"),
    "bayer_grbg16": _Layout(1, "u2"),
}

#: OpenCV names Bayer patterns by the 2×2 tile starting at pixel (1, 1), so RGGB is "BG".
_BAYER_CODES = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)
COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "png")


def bytes_per_pixel(encoding: str) -> int:
    layout = _layout(encoding)
    return layout.channels * np.dtype(layout.dtype).itemsize


def _layout(encoding: str) -> _Layout:
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageDecodeError(f"unknown encoding {encoding!r}; accepted: {', '.join(SUPPORTED_ENCODINGS)}")
    return layout


def _check_size(height: int, width: int, max_pixels: int, where: str) -> None:
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"{where}: zero-size image ({width}×{height}); width and height must be > 0")
    if height * width > max_pixels:
        raise ImageDecodeError(
            f"{where}: {width}×{height} = {width * height} pixels exceeds max_input_pixels={max_pixels}"
        )


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool | int,
    data: bytes | bytearray | memoryview,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The fields of a ``sensor_msgs/Image`` → contiguous ``H×W×3`` RGB uint8 (a new array)."""
    height, width, step = int(height), int(width), int(step)
    layout = _layout(encoding)
    _check_size(height, width, max_pixels, f"{encoding} image")
    itemsize = np.dtype(layout.dtype).itemsize
    row_bytes = width * layout.channels * itemsize
    if step < row_bytes:
        raise ImageDecodeError(
            f"{encoding} image: step {step} is smaller than width×bytes per pixel = {row_bytes}"
        )
    if layout.channels == 2 and width % 2:
        raise ImageDecodeError(f"{encoding} image: width {width} must be even (two pixels share U and V)")
    buf = memoryview(data).cast("B")
    if len(buf) < step * height:
        raise ImageDecodeError(
            f"{encoding} image: data has {len(buf)} bytes, fewer than step×height = {step}×{height} = "
            f"{step * height}"
        )
    order = ">" if is_bigendian else "<"
    dtype = np.dtype(layout.dtype if itemsize == 1 else order + layout.dtype)
    rows = np.frombuffer(buf, dtype=np.uint8, count=step * height).reshape(height, step)[:, :row_bytes]
    pixels = np.ascontiguousarray(rows).view(dtype).reshape(height, width, layout.channels)
    return _to_rgb(encoding, pixels)


def _to_rgb(encoding: str, px: np.ndarray) -> np.ndarray:
    if encoding == "rgb8":
        return px.copy()
    if encoding in ("bgr8", "8UC3"):
        return np.ascontiguousarray(px[..., ::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(px[..., :3])
    if encoding in ("bgra8", "8UC4"):
        return np.ascontiguousarray(px[..., 2::-1])
    if encoding in ("mono8", "8UC1"):
        return np.repeat(px, 3, axis=2)
    if encoding in ("mono16", "16UC1"):
        return np.repeat(_u16_to_u8(px), 3, axis=2)
    if encoding == "32FC1":
        if not np.isfinite(px).all():
            bad = int((~np.isfinite(px)).sum())
            raise ImageDecodeError(f"32FC1 image: {bad} NaN/inf values; only finite intensities are accepted")
        grey = (np.clip(px, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return np.repeat(grey, 3, axis=2)
    if encoding in ("yuv422", "uyvy"):
        return cv2.cvtColor(np.ascontiguousarray(px), cv2.COLOR_YUV2RGB_UYVY)
    if encoding in ("yuv422_yuy2", "yuyv"):
        return cv2.cvtColor(np.ascontiguousarray(px), cv2.COLOR_YUV2RGB_YUY2)
    if encoding.startswith("bayer_"):
        if px.dtype.itemsize == 2:
            px = _u16_to_u8(px)
        return cv2.cvtColor(np.ascontiguousarray(px[..., 0]), _BAYER_CODES[encoding[6:10]])
    raise ImageDecodeError(f"unknown encoding {encoding!r}")  # unreachable: _layout checked it


def _u16_to_u8(px: np.ndarray) -> np.ndarray:
    """Full-range linear 16 → 8 bit: ``round(v / 257)``, exact at 0 and 65535."""
    return ((px.astype(np.uint32) + 128) // 257).astype(np.uint8)


# -- compressed images ---------------------------------------------------------------------------


def _decode_jpeg_or_png(raw: bytes, max_pixels: int | None) -> tuple[str, np.ndarray]:
    """JPEG or PNG bytes (by their magic) → (kind, RGB uint8); ``max_pixels`` None: no size limit.

    The size is read from the header first, so an oversized image is refused before it is
    decompressed; truncated data (no JPEG end-of-image marker, no PNG IEND chunk) is refused rather
    than returned half grey, as OpenCV would (with only a warning).
    """
    if raw[:3] == b"\xff\xd8\xff":
        kind = "jpeg"
        height, width = jpeg_size(raw)
    elif raw[:8] == PNG_MAGIC:
        kind = "png"
        height, width = png_size(raw)
    else:
        raise ImageDecodeError(f"data is neither JPEG nor PNG (starts with {raw[:8].hex()})")
    check_complete(raw)
    limit = height * width if max_pixels is None else max_pixels  # None: no limit (image files)
    _check_size(height, width, limit, f"compressed {kind}")
    with _quiet_opencv():
        bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.shape[:2] != (height, width):
        raise ImageDecodeError(f"corrupt {kind.upper()}: the decoder could not read the image data")
    return kind, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_compressed(
    fmt: str, data: bytes | bytearray | memoryview, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """The ``format`` and ``data`` of a ``sensor_msgs/CompressedImage`` (JPEG or PNG) → RGB uint8.

    The size is read from the header first, so an oversized image is refused before it is
    decompressed; truncated files (no JPEG end marker, no PNG IEND) are refused rather than
    returned half grey. :func:`read_image_file` applies the same checks to image files.
    """
    raw = bytes(memoryview(data).cast("B"))
    fmt_l = (fmt or "").lower()
    if "compresseddepth" in fmt_l:
        raise ImageDecodeError(
            f"compressed format {fmt!r}: compressedDepth is not supported; send jpeg or png"
        )
    if not raw:
        raise ImageDecodeError("compressed image: empty data")
    if raw[:3] == b"\xff\xd8\xff":
        kind = "jpeg"
    elif raw[:8] == PNG_MAGIC:
        kind = "png"
    else:
        raise ImageDecodeError(
            f"compressed image (format {fmt!r}): data is neither JPEG nor PNG (starts with {raw[:8].hex()}); "
            f"accepted: {', '.join(COMPRESSED_FORMATS)}"
        )
    other = [k for k in ("jpeg", "jpg", "png", "tiff", "bmp", "webp") if k in fmt_l]
    if other and not any(k in fmt_l for k in (("jpeg", "jpg") if kind == "jpeg" else ("png",))):
        raise ImageDecodeError(f"compressed format {fmt!r} does not match the data, which is {kind}")
    return _decode_jpeg_or_png(raw, max_pixels)[1]


# -- image files -----------------------------------------------------------------------------------

#: what :func:`read_image_file` reads: JPEG and PNG fully checked, the rest as OpenCV decodes them
FILE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "TIFF", "WebP", "PPM")


def decode_file_bytes(raw: bytes, max_pixels: int | None = None) -> np.ndarray:
    """The bytes of an image file → ``H×W×3`` RGB uint8 (as ``cv2.imread`` with ``IMREAD_COLOR``).

    JPEG and PNG (recognised by their content, whatever the file's suffix) get the checks of
    :func:`decode_compressed`, so a truncated file is refused rather than read half grey; other
    formats OpenCV reads (BMP, TIFF, WebP, PPM) are refused when OpenCV cannot decode them.
    ``max_pixels``: None (the default for files) accepts any size OpenCV reads.
    """
    if not raw:
        raise ImageDecodeError("empty file (0 bytes)")
    if raw[:3] == b"\xff\xd8\xff" or raw[:8] == PNG_MAGIC:
        return _decode_jpeg_or_png(raw, max_pixels)[1]
    with _quiet_opencv():
        bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDecodeError(
            f"not a readable image (neither JPEG nor PNG, and OpenCV cannot decode it); "
            f"accepted: {', '.join(FILE_FORMATS)}"
        )
    if max_pixels is not None:
        _check_size(bgr.shape[0], bgr.shape[1], max_pixels, "image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image_file(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """An image file → ``H×W×3`` RGB uint8; :class:`ImageDecodeError` naming the file otherwise.

    The one reader of image files for the CLI, training and evaluation: see :func:`decode_file_bytes`.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return decode_file_bytes(raw, max_pixels)
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"{path}: {exc}") from None


def has_alpha(raw: bytes) -> bool:
    """Whether image file bytes carry transparency, which the RGB reader drops (callers say so).

    PNG: read from the header (grey+alpha or RGBA colour type, or a ``tRNS`` chunk before the
    image data); JPEG never has any; other formats: the channels OpenCV decodes unchanged.
    """
    if raw[:3] == b"\xff\xd8\xff":
        return False
    if raw[:8] == PNG_MAGIC:
        if len(raw) >= 26 and raw[25] in (4, 6):
            return True
        i = 8
        while i + 8 <= len(raw):
            length, kind = struct.unpack_from(">I4s", raw, i)
            if kind == b"tRNS":
                return True
            if kind in (b"IDAT", b"IEND"):
                return False
            i += 12 + length
        return False
    with _quiet_opencv():
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    return img is not None and img.ndim == 3 and img.shape[2] in (2, 4)


def file_has_alpha(path: str | os.PathLike) -> bool:
    """:func:`has_alpha` of a file; False when it cannot be read (the reader reports that)."""
    try:
        return has_alpha(Path(path).read_bytes())
    except OSError:
        return False


_QUIET_LOCK = threading.Lock()
_quiet_depth = 0  # decodes in flight (nodes decode in several threads); the first saves the level
_saved_level: int | None = None


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines while decoding: a refusal is reported once, by our message.

    OpenCV's level is process-wide, so overlapping decodes share one silent period and the last
    to finish restores the level the first one found.
    """
    global _quiet_depth, _saved_level
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _saved_level = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_SILENT)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_level is not None:
                logging.setLogLevel(_saved_level)


# -- outputs -----------------------------------------------------------------------------------


#: single-channel intensity encodings: their enhanced image is published as ``mono8``
MONO_ENCODINGS = ("mono8", "mono16", "8UC1", "16UC1")


def output_encoding(input_encoding: str) -> str:
    """The encoding of an enhanced image: BGR-ordered in → ``bgr8``, mono in → ``mono8``, else ``rgb8``."""
    if input_encoding in MONO_ENCODINGS:
        return "mono8"
    return "bgr8" if input_encoding in ("bgr8", "bgra8", "8UC3", "8UC4") else "rgb8"


def encode_image(image: np.ndarray, encoding: str) -> tuple[bytes, int]:
    """RGB uint8 ``H×W×3`` (or ``H×W`` for ``mono8``) → (row-packed data, step) in ``encoding``.

    Accepts ``rgb8``, ``bgr8`` and ``mono8``: the encodings our nodes publish.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"encode_image needs uint8, got {image.dtype}")
    if encoding == "mono8":
        if image.ndim != 2:
            raise ValueError(f"mono8 needs an H×W array, got shape {image.shape}")
        return np.ascontiguousarray(image).tobytes(), image.shape[1]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{encoding} needs an H×W×3 RGB array, got shape {image.shape}")
    if encoding == "rgb8":
        out = image
    elif encoding == "bgr8":
        out = image[..., ::-1]
    else:
        raise ValueError(f"cannot encode to {encoding!r}; accepted: rgb8, bgr8, mono8")
    return np.ascontiguousarray(out).tobytes(), 3 * image.shape[1]


def encode_compressed(image: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """RGB uint8 ``H×W×3`` → JPEG or PNG bytes (for ``CompressedImage`` outputs and tests)."""
    if fmt not in COMPRESSED_FORMATS:
        raise ValueError(f"cannot compress to {fmt!r}; accepted: {', '.join(COMPRESSED_FORMATS)}")
    ext = ".jpg" if fmt == "jpeg" else ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()
