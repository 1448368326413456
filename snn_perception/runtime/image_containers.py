"""JPEG and PNG containers read without decoding a pixel: size, completeness (truncation).

Split from :mod:`image_codec` so that the byte-level walking of markers and chunks (what makes a
truncated file a refusal everywhere, rather than an image half grey) is one small module with
its own tests, and readers that decode themselves (class-id masks) can use it alone.
"""

from __future__ import annotations

import re
import struct

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageDecodeError(ValueError):
    """An image that cannot be turned into RGB; the message names the problem."""


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(height, width) from the first SOF marker, read without decoding any pixels."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ImageDecodeError(f"corrupt JPEG: expected a marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise ImageDecodeError(f"corrupt JPEG: segment length {length} at byte {i}")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return height, width
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise ImageDecodeError("corrupt JPEG: no frame header (SOF) found before the image data")


def png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageDecodeError("corrupt PNG: missing IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    return height, width


#: ``FF`` that starts a marker: not a stuffed ``FF 00`` in scan data, a restart marker or a fill byte
JPEG_NEXT_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")


def jpeg_end(raw: bytes) -> int | None:
    """Offset just past the end-of-image marker that closes the image; None when there is none.

    Walks the marker segments and skips each scan's entropy-coded data (where ``FF`` is followed
    only by a stuffed ``00`` or a restart marker), so the end marker of an EXIF thumbnail does not
    count, and bytes after the real end (zero padding, an appended video) do no harm. Stray bytes
    between segments are skipped to the next marker, as libjpeg does.
    """
    i, n = 2, len(raw)
    while i + 2 <= n:
        if raw[i] != 0xFF:
            found = JPEG_NEXT_MARKER.search(raw, i)
            if found is None:
                return None
            i = found.start()
            continue
        marker = raw[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0xD9:
            return i + 2
        elif marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
        else:
            if i + 4 > n:
                return None
            (length,) = struct.unpack_from(">H", raw, i + 2)
            if length < 2:
                return None
            i += 2 + length
            if marker == 0xDA:  # start of scan: its data runs to the next marker
                found = JPEG_NEXT_MARKER.search(raw, i)
                if found is None:
                    return None
                i = found.start()
    return None


def png_end(raw: bytes) -> int:
    """Offset just past the IEND chunk, walking the chunks (bytes after IEND do no harm)."""
    i, n = 8, len(raw)
    while i + 12 <= n:
        length, kind = struct.unpack_from(">I4s", raw, i)
        if not kind.isalpha():
            raise ImageDecodeError(f"corrupt PNG: damaged chunk header at byte {i}")
        i += 12 + length
        if kind == b"IEND":
            break
    else:
        i = n + 1
    if i > n:
        raise ImageDecodeError("corrupt PNG: truncated (no IEND chunk after the image data)")
    return i


def check_complete(raw: bytes) -> None:
    """Refuse truncated JPEG or PNG data (other formats pass): for readers that decode themselves,
    e.g. class-id masks read with ``IMREAD_UNCHANGED``."""
    if raw[:3] == b"\xff\xd8\xff" and jpeg_end(raw) is None:
        raise ImageDecodeError("corrupt JPEG: truncated (no end-of-image marker after the image data)")
    if raw[:8] == PNG_MAGIC:
        png_end(raw)
