"""sensor_msgs/Image and CompressedImage to RGB ``uint8 [H, W, 3]`` arrays, and back, without ROS.

The planner node converts camera images with cv_bridge; the offline tools read the same
messages from bags with this module. A world model sees different pixels if the two disagree,
so this module follows cv_bridge's conversion to ``rgb8`` (``cv_bridge/src/cv_bridge.cpp``,
``toCvCopy``/``cvtColor``) exactly:

- rgb8, bgr8, rgba8, bgra8, mono8 and their 16-bit forms: channels are reordered as OpenCV's
  cvtColor does (alpha dropped, gray replicated).
- 16-bit to 8-bit: cv_bridge uses ``convertTo(..., 255.0 / 65535.0)``, which rounds to nearest,
  i.e. ``(v + 128) // 257``; it is *not* ``v >> 8`` (the two differ on a quarter of all values).
- ``step`` may exceed ``width * channels * bytes`` (row padding); 16-bit data is read in the
  byte order ``is_bigendian`` names.
- Generic OpenCV encodings (8UC3, 16UC1, ...) carry no colour order, and cv_bridge refuses to
  convert them to rgb8; so does this module, rather than guess.
- CompressedImage: decoded with ``cv2.imdecode(..., IMREAD_UNCHANGED)`` and read as mono, BGR
  or BGRA by channel count, as cv_bridge's ``toCvCopy(CompressedImage)`` does. Where the
  decoded image is 16-bit, cv_bridge would return it unscaled; here it is scaled like a 16-bit
  Image so the result is always ``uint8``.

One deliberate leniency, shared with cv_bridge's Python ``imgmsg_to_cv2``: ``data`` may be longer
than ``height * step``; the extra bytes are ignored. Two deliberate refusals, where cv_bridge
would try: an image larger than ``max_pixels`` (default :data:`MAX_PIXELS`), judged by its
header before anything is decoded, because a 161 kB PNG can decode to 412 MiB; and compressed
data that is neither PNG nor JPEG (image_transport's compressed formats), whose size cannot be
read without decoding it.

Message objects are duck-typed: a rosbags dataclass and an rclpy message have the same fields.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import cv2
import numpy as np


class ImageConversionError(ValueError):
    """An image message that cannot be turned into RGB; the text says why."""


# encoding -> (source channel for each of R, G, B; channels per pixel; bytes per channel)
_LAYOUTS: dict[str, tuple[tuple[int, int, int], int, int]] = {
    "rgb8": ((0, 1, 2), 3, 1),
    "bgr8": ((2, 1, 0), 3, 1),
    "rgba8": ((0, 1, 2), 4, 1),
    "bgra8": ((2, 1, 0), 4, 1),
    "mono8": ((0, 0, 0), 1, 1),
    "rgb16": ((0, 1, 2), 3, 2),
    "bgr16": ((2, 1, 0), 3, 2),
    "rgba16": ((0, 1, 2), 4, 2),
    "bgra16": ((2, 1, 0), 4, 2),
    "mono16": ((0, 0, 0), 1, 2),
}
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)
WRITE_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
_GENERIC = re.compile(r"(8U|8S|16U|16S|32S|32F|64F)(C[0-9]+)?")
# What cv2.imdecode returns, by channel count, as cv_bridge labels it.
_DECODED = {1: "mono8", 3: "bgr8", 4: "bgra8"}
#: Default largest image converted, width x height: 4096 x 4096 covers 4K and 12-megapixel
#: cameras (48 MiB as RGB); the planner shrinks every image to its model's size anyway.
MAX_PIXELS = 4096 * 4096
_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4, C8, CC are not frames.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_msg_to_rgb(msg: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """RGB ``uint8 [H, W, 3]`` from a sensor_msgs/Image or sensor_msgs/CompressedImage.

    Images of more than ``max_pixels`` (width x height) are refused with ImageConversionError.
    """
    if hasattr(msg, "encoding"):
        return raw_image_to_rgb(msg, max_pixels)
    if hasattr(msg, "format"):
        return compressed_image_to_rgb(msg, max_pixels)
    raise TypeError(f"{type(msg).__name__} is neither a sensor_msgs Image nor CompressedImage")


def raw_image_to_rgb(msg: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """RGB ``uint8 [H, W, 3]`` from a sensor_msgs/Image (fields as in the ROS message)."""
    encoding = str(msg.encoding)
    order, channels, depth = _layout(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f"{encoding} image is empty ({height}x{width})")
    _check_size(f"{encoding} image", width, height, max_pixels)
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageConversionError(
            f"{encoding} image has step {step} < width * channels * bytes = {width} * "
            f"{channels} * {depth} = {row_bytes}"
        )
    data = _as_bytes(msg.data)
    if data.size < height * step:
        raise ImageConversionError(
            f"{encoding} image data has {data.size} bytes, height * step needs "
            f"{height} * {step} = {height * step}"
        )
    rows = np.ascontiguousarray(data[: height * step].reshape(height, step)[:, :row_bytes])
    if depth == 2:
        rows = rows.view(">u2" if msg.is_bigendian else "<u2").astype(np.uint16)
    return _to_rgb(rows.reshape(height, width, channels), order)


def compressed_image_to_rgb(msg: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """RGB ``uint8 [H, W, 3]`` from a sensor_msgs/CompressedImage (PNG or JPEG).

    The size is read from the header and checked against ``max_pixels`` before decoding.
    """
    fmt = str(msg.format)
    if "compresseddepth" in fmt.lower():
        raise ImageConversionError(
            f"CompressedImage format {fmt!r} is a compressed depth image, not a camera image"
        )
    data = _as_bytes(msg.data)
    if data.size == 0:
        raise ImageConversionError(f"CompressedImage ({fmt!r}) has no data")
    size = compressed_image_size(data)
    if size is None:
        raise ImageConversionError(
            f"could not decode {data.size} bytes of CompressedImage data ({fmt!r}): not PNG or "
            "JPEG (image_transport's compressed formats, whose size is checked before decoding)"
        )
    _check_size(f"CompressedImage ({fmt!r})", *size, max_pixels)
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageConversionError(
            f"OpenCV could not decode {data.size} bytes of CompressedImage data ({fmt!r}): "
            f"{' '.join(str(exc).split())}"
        ) from None
    if decoded is None:
        raise ImageConversionError(
            f"OpenCV could not decode {data.size} bytes of CompressedImage data ({fmt!r})"
        )
    if decoded.ndim == 2:
        decoded = decoded[:, :, np.newaxis]
    label = _DECODED.get(decoded.shape[2])
    if label is None or decoded.dtype not in (np.uint8, np.uint16):
        raise ImageConversionError(
            f"CompressedImage ({fmt!r}) decoded to {decoded.shape[2]} channels of "
            f"{decoded.dtype}; expected 1, 3 or 4 channels of uint8 or uint16"
        )
    return _to_rgb(decoded, _LAYOUTS[label][0])


def compressed_image_size(data: Any) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG or JPEG header, without decoding; None for neither.

    PNG keeps the size in its first chunk (IHDR); JPEG in its start-of-frame segment, found by
    walking the segment lengths from the start (stops at the first scan or a broken marker).
    """
    buf = _as_bytes(data).tobytes()
    if buf.startswith(_PNG) and buf[12:16] == b"IHDR" and len(buf) >= 24:
        return struct.unpack(">II", buf[16:24])
    if not buf.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 4 <= len(buf) and buf[i] == 0xFF:
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            i += 2
        elif marker in _SOF:
            if i + 9 > len(buf):
                return None
            height, width = struct.unpack(">HH", buf[i + 5 : i + 9])
            return width, height
        elif marker == 0xDA:  # start of scan: no frame header before the data
            return None
        else:
            i += 2 + struct.unpack(">H", buf[i + 2 : i + 4])[0]
    return None


def _check_size(what: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageConversionError(
            f"{what} is {width} x {height} pixels, more than the limit of {max_pixels} "
            "(max_pixels); refused before decoding"
        )


def rgb_to_image_fields(rgb: np.ndarray, encoding: str = "rgb8") -> dict[str, Any]:
    """The sensor_msgs/Image fields (all but ``header``) for an RGB ``uint8 [H, W, 3]`` array.

    ``data`` is a 1-D ``uint8`` numpy array (what rosbags serialises); rows are unpadded and
    ``is_bigendian`` is 0. Writing ``mono8`` converts as cv_bridge does (``COLOR_RGB2GRAY``).
    """
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageConversionError(
            f"expected an RGB uint8 [H, W, 3] array, got {arr.dtype} {list(arr.shape)}"
        )
    if encoding not in WRITE_ENCODINGS:
        raise ImageConversionError(
            f"cannot write encoding {encoding!r}; choose one of {list(WRITE_ENCODINGS)}"
        )
    if encoding == "mono8":
        pixels = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)[:, :, np.newaxis]
    else:
        pixels = arr[:, :, ::-1] if encoding.startswith("bgr") else arr
        if encoding.endswith("a8"):
            alpha = np.full((*arr.shape[:2], 1), 255, dtype=np.uint8)
            pixels = np.concatenate([pixels, alpha], axis=2)
    height, width, channels = pixels.shape
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * channels,
        "data": np.ascontiguousarray(pixels).reshape(-1),
    }


def scale_16_to_8(values: np.ndarray) -> np.ndarray:
    """cv_bridge's 16-to-8-bit scaling: ``round(v * 255 / 65535)`` = ``(v + 128) // 257``."""
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _layout(encoding: str) -> tuple[tuple[int, int, int], int, int]:
    layout = _LAYOUTS.get(encoding)
    if layout is not None:
        return layout
    if _GENERIC.fullmatch(encoding):
        raise ImageConversionError(
            f"encoding {encoding!r} has no colour order, so it cannot be read as RGB (cv_bridge "
            f"refuses this conversion too); publish one of {list(SUPPORTED_ENCODINGS)}"
        )
    raise ImageConversionError(
        f"unsupported image encoding {encoding!r}; supported: {list(SUPPORTED_ENCODINGS)}"
    )


def _to_rgb(pixels: np.ndarray, order: tuple[int, int, int]) -> np.ndarray:
    rgb = np.ascontiguousarray(pixels[:, :, list(order)])
    return scale_16_to_8(rgb) if rgb.dtype == np.uint16 else rgb


def _as_bytes(data: Any) -> np.ndarray:
    """Message ``data`` (numpy array, bytes, array.array or a list of ints) as flat uint8."""
    try:
        if isinstance(data, (list, tuple)):
            return np.asarray(data, dtype=np.uint8)
        if isinstance(data, np.ndarray):
            return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageConversionError(f"image data is not a byte buffer: {exc}") from exc
