"""Image/CompressedImage to RGB follows cv_bridge's conversion to rgb8, on hand-built fixtures.

cv_bridge is not installed here, so the expected values come from its documented behaviour
(``cv_bridge.cpp``: cvtColor codes per encoding pair, ``convertTo(..., 255.0 / 65535.0)`` for
16 to 8 bits, row ``step`` and ``is_bigendian`` handling) and, where cv_bridge calls OpenCV, from
the same OpenCV call.
"""

from __future__ import annotations

import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from grasp_ros.io.images import (
    ImageConversionError,
    compressed_image_to_rgb,
    image_msg_to_rgb,
    raw_image_to_rgb,
    rgb_to_image_fields,
    scale_16_to_8,
)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)


def image(pixels: np.ndarray, encoding: str, *, pad: int = 0, bigendian: bool = False, data=None):
    """An Image-like object with ``pad`` junk bytes after each row."""
    height, width = pixels.shape[:2]
    dtype = np.dtype(pixels.dtype).newbyteorder(">" if bigendian else "<")
    rows = np.ascontiguousarray(pixels.astype(dtype)).view(np.uint8).reshape(height, -1)
    junk = np.full((height, pad), 0xAB, dtype=np.uint8)
    padded = np.concatenate([rows, junk], axis=1)
    return SimpleNamespace(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=padded.shape[1],
        data=padded.reshape(-1) if data is None else data,
    )


def rgb8_fields(**fields) -> SimpleNamespace:
    return SimpleNamespace(**{**rgb_to_image_fields(RGB), **fields})


def compressed(rgb: np.ndarray, ext: str, fmt: str) -> SimpleNamespace:
    ok, buf = cv2.imencode(ext, rgb)
    assert ok
    return SimpleNamespace(format=fmt, data=buf.reshape(-1))


@pytest.mark.parametrize(
    ("encoding", "source", "code"),
    [
        ("rgb8", RGB, None),
        ("bgr8", RGB[:, :, ::-1], cv2.COLOR_BGR2RGB),
        ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 77, np.uint8)]), cv2.COLOR_RGBA2RGB),
        ("bgra8", np.dstack([RGB[:, :, ::-1], np.zeros(RGB.shape[:2], np.uint8)]), None),
    ],
)
@pytest.mark.parametrize("pad", [0, 3])
def test_8bit_colour(encoding: str, source: np.ndarray, code: int | None, pad: int) -> None:
    out = raw_image_to_rgb(image(source, encoding, pad=pad))
    assert out.dtype == np.uint8 and out.shape == RGB.shape and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)
    if code is not None:
        np.testing.assert_array_equal(out, cv2.cvtColor(np.ascontiguousarray(source), code))


def test_mono8_is_replicated_like_gray2rgb() -> None:
    gray = RGB[:, :, 0]
    out = raw_image_to_rgb(image(gray, "mono8", pad=1))
    np.testing.assert_array_equal(out, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))


def test_step_that_is_not_a_multiple_of_the_pixel_size() -> None:
    out = raw_image_to_rgb(image(RGB, "rgb8", pad=2))  # step = 5 * 3 + 2 = 17
    np.testing.assert_array_equal(out, RGB)


def test_16_to_8_bit_scaling_rounds_like_convert_to() -> None:
    """cv_bridge scales by 255/65535 with rounding: (v + 128) // 257, not v >> 8."""
    values = np.array([[0, 128, 129, 384, 385, 32896, 65406, 65407, 65535]], dtype=np.uint16)
    expected = np.array([[0, 0, 1, 1, 1, 128, 254, 255, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(scale_16_to_8(values), expected)
    assert (values >> 8).astype(np.uint8)[0, 2] == 0  # what cv_bridge does not do
    every = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    np.testing.assert_array_equal(
        scale_16_to_8(every), cv2.convertScaleAbs(every, alpha=255.0 / 65535.0)
    )


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16(bigendian: bool) -> None:
    values = np.array([[0, 129, 384], [32896, 65406, 65535]], dtype=np.uint16)
    out = raw_image_to_rgb(image(values, "mono16", bigendian=bigendian, pad=2))
    gray = np.array([[0, 1, 1], [128, 254, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(out, np.dstack([gray, gray, gray]))


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("encoding", ["rgb16", "bgr16", "rgba16", "bgra16"])
def test_16bit_colour(encoding: str, bigendian: bool) -> None:
    rgb16 = RGB.astype(np.uint16) * 257  # exact: scales back to RGB
    rgb16[0, 0] = (129, 384, 65406)  # rounding cases
    pixels = rgb16[:, :, ::-1] if encoding.startswith("bgr") else rgb16
    if encoding.endswith("a16"):
        pixels = np.dstack([pixels, np.full(RGB.shape[:2], 1234, np.uint16)])
    out = raw_image_to_rgb(image(pixels, encoding, bigendian=bigendian, pad=1))
    expected = RGB.copy()
    expected[0, 0] = (1, 1, 254)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "data",
    [
        lambda d: bytes(d),
        lambda d: array.array("B", bytes(d)),  # what rclpy uses for uint8[]
        lambda d: [int(x) for x in d],
        lambda d: np.concatenate([d, np.zeros(7, np.uint8)]),  # longer than height * step
    ],
    ids=["bytes", "array", "list", "longer"],
)
def test_data_containers(data) -> None:
    msg = image(RGB, "rgb8", pad=1)
    msg.data = data(msg.data)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)


def test_errors_name_the_problem() -> None:
    msg = image(RGB, "rgb8", pad=1)
    msg.data = msg.data[:-1]
    with pytest.raises(ImageConversionError, match=r"47 bytes, height \* step needs 3 \* 16"):
        raw_image_to_rgb(msg)
    msg = image(RGB, "rgb8")
    msg.step = 14
    with pytest.raises(ImageConversionError, match="step 14 < width"):
        raw_image_to_rgb(msg)
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        raw_image_to_rgb(image(RGB, "yuv422"))
    with pytest.raises(ImageConversionError, match=r"no colour order.*cv_bridge"):
        raw_image_to_rgb(image(RGB, "8UC3"))
    with pytest.raises(ImageConversionError, match="no colour order"):
        raw_image_to_rgb(image(RGB[:, :, 0].astype(np.uint16), "16UC1"))
    with pytest.raises(ImageConversionError, match="empty"):
        raw_image_to_rgb(rgb8_fields(height=0, step=15, data=b""))
    with pytest.raises(ImageConversionError, match="not a byte buffer"):
        raw_image_to_rgb(image(RGB, "rgb8", data=object()))
    with pytest.raises(TypeError, match="neither"):
        image_msg_to_rgb(SimpleNamespace(height=1))


def test_compressed_png_is_lossless() -> None:
    bgr = np.ascontiguousarray(RGB[:, :, ::-1])
    out = compressed_image_to_rgb(compressed(bgr, ".png", "png"))
    np.testing.assert_array_equal(out, RGB)
    gray = RGB[:, :, 1].copy()
    out = image_msg_to_rgb(compressed(gray, ".png", "mono8; png compressed mono8"))
    np.testing.assert_array_equal(out, np.dstack([gray, gray, gray]))
    bgra = np.dstack([bgr, np.full(RGB.shape[:2], 9, np.uint8)])
    np.testing.assert_array_equal(compressed_image_to_rgb(compressed(bgra, ".png", "png")), RGB)
    bgr16 = bgr.astype(np.uint16) * 257
    np.testing.assert_array_equal(compressed_image_to_rgb(compressed(bgr16, ".png", "png")), RGB)


def test_compressed_jpeg_matches_opencv_decode() -> None:
    smooth = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (16, 1))
    bgr = np.dstack([smooth, smooth.T, np.full_like(smooth, 90)])
    msg = compressed(bgr, ".jpg", "rgb8; jpeg compressed bgr8")
    out = compressed_image_to_rgb(msg)
    decoded = cv2.imdecode(msg.data, cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(out, cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))
    assert np.abs(out.astype(int) - bgr[:, :, ::-1]).mean() < 4


def test_compressed_errors() -> None:
    with pytest.raises(ImageConversionError, match="could not decode 4 bytes"):
        compressed_image_to_rgb(SimpleNamespace(format="jpeg", data=b"\x00\x01\x02\x03"))
    with pytest.raises(ImageConversionError, match="no data"):
        compressed_image_to_rgb(SimpleNamespace(format="png", data=b""))
    depth = SimpleNamespace(format="16UC1; compressedDepth png", data=b"\x00" * 20)
    with pytest.raises(ImageConversionError, match="compressed depth"):
        image_msg_to_rgb(depth)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_rgb_to_image_fields_roundtrip(encoding: str) -> None:
    fields = rgb_to_image_fields(RGB, encoding)
    channels = 4 if encoding.endswith("a8") else 3
    assert fields["step"] == 5 * channels and fields["data"].dtype == np.uint8
    assert (fields["height"], fields["width"], fields["is_bigendian"]) == (3, 5, 0)
    np.testing.assert_array_equal(raw_image_to_rgb(SimpleNamespace(**fields)), RGB)


def test_rgb_to_mono8_uses_rgb2gray() -> None:
    fields = rgb_to_image_fields(RGB, "mono8")
    gray = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(fields["data"].reshape(3, 5), gray)


def test_rgb_to_image_fields_rejects_bad_input() -> None:
    with pytest.raises(ImageConversionError, match="RGB uint8"):
        rgb_to_image_fields(RGB.astype(np.float32))
    with pytest.raises(ImageConversionError, match="RGB uint8"):
        rgb_to_image_fields(RGB[:, :, 0])
    with pytest.raises(ImageConversionError, match="cannot write encoding 'mono16'"):
        rgb_to_image_fields(RGB, "mono16")
