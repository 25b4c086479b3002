"""sensor_msgs Image / CompressedImage <-> numpy, with or without cv_bridge.

Decoding works on plain attributes (``height``, ``width``, ``encoding``, ``step``,
``is_bigendian``, ``data``; ``format`` and ``data`` for compressed images), so any object
with those fields can be decoded. The camera decoders return a fresh, writable HxWx3 uint8
RGB array; ``decode_array`` reads the package's own output encodings (``OUTPUT_ENCODINGS``,
as ``fill_image_msg`` writes them) back into fresh arrays of their type. Every decoder raises
``ImageDecodeError`` naming what is wrong with the message, and nothing else.

Size guard: an image larger than ``MAX_PIXELS`` (8192x8192) is refused before anything is
allocated for it, whatever its data holds: raw images by their width and height, compressed
ones by the size in their JPEG (SOF) or PNG (IHDR) header, so a small compressed frame cannot
make the decoder allocate gigabytes. Within the guard a decoder allocates its result, at most
``3 * MAX_PIXELS`` bytes (and for raw images at most 3 bytes per byte of data), plus OpenCV's
temporaries of the same order.

Conversions follow cv_bridge's ``imgmsg_to_cv2(msg, "rgb8")``: ``mono16`` is scaled to 8 bit
by 255/65535 with rounding (so 0 -> 0, 65535 -> 255, 32768 -> 128), and the Bayer encodings
are demosaiced with OpenCV's bilinear method. ``8UC1`` is read as ``mono8`` and ``8UC3`` as
``bgr8`` (cv_bridge refuses both; they are what OpenCV-based drivers publish); as image_proc
does, the guess about ``8UC3`` deserves one warning, whose text ``encoding_warning`` gives.
Packed YUV 4:2:2 (USB cameras), 2 bytes per pixel and an even width, is converted by OpenCV:
``uyvy`` and its older name ``yuv422`` as UYVY, ``yuyv`` and ``yuv422_yuy2`` as YUYV. Depth
images (``16UC1``, ``32FC1``, ...) are refused: this node wants colour or mono images.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

try:
    from cv_bridge import CvBridge
except ImportError:
    CvBridge = None


class ImageDecodeError(ValueError):
    """An image message that cannot be turned into an RGB image."""


def _same(image: np.ndarray) -> np.ndarray:
    return image.copy()


def _color(code: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: cv2.cvtColor(image, code)


def _mono16_to_rgb(image: np.ndarray) -> np.ndarray:
    mono8 = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    return cv2.cvtColor(mono8, cv2.COLOR_GRAY2RGB)


@dataclass(frozen=True)
class _Layout:
    """How one encoding lays out a pixel and how it becomes RGB."""

    channels: int
    bytes_per_channel: int
    to_rgb: Callable[[np.ndarray], np.ndarray]
    pixels_per_group: int = 1  # YUV 4:2:2: two pixels share their U and V bytes

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.bytes_per_channel


# OpenCV's legacy Bayer codes name the pattern by the pixels at row 1, columns 1-2; ROS names
# it by the top-left 2x2 block. So ROS rggb (R at row 0, column 0) is OpenCV "BG".
_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(3, 1, _same),
    "bgr8": _Layout(3, 1, _color(cv2.COLOR_BGR2RGB)),
    "8UC3": _Layout(3, 1, _color(cv2.COLOR_BGR2RGB)),
    "rgba8": _Layout(4, 1, _color(cv2.COLOR_RGBA2RGB)),
    "bgra8": _Layout(4, 1, _color(cv2.COLOR_BGRA2RGB)),
    "mono8": _Layout(1, 1, _color(cv2.COLOR_GRAY2RGB)),
    "8UC1": _Layout(1, 1, _color(cv2.COLOR_GRAY2RGB)),
    "mono16": _Layout(1, 2, _mono16_to_rgb),
    "bayer_rggb8": _Layout(1, 1, _color(cv2.COLOR_BayerBG2RGB)),
    "bayer_bggr8": _Layout(1, 1, _color(cv2.COLOR_BayerRG2RGB)),
    "bayer_gbrg8": _Layout(1, 1, _color(cv2.COLOR_BayerGR2RGB)),
    "bayer_grbg8": _Layout(1, 1, _color(cv2.COLOR_BayerGB2RGB)),
    # sensor_msgs names: uyvy / yuyv; yuv422 / yuv422_yuy2 are their older (deprecated) names.
    "uyvy": _Layout(2, 1, _color(cv2.COLOR_YUV2RGB_UYVY), pixels_per_group=2),
    "yuv422": _Layout(2, 1, _color(cv2.COLOR_YUV2RGB_UYVY), pixels_per_group=2),
    "yuyv": _Layout(2, 1, _color(cv2.COLOR_YUV2RGB_YUY2), pixels_per_group=2),
    "yuv422_yuy2": _Layout(2, 1, _color(cv2.COLOR_YUV2RGB_YUY2), pixels_per_group=2),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)
# Single-channel measurements (REP 118 depth: 16UC1 in mm, 32FC1 in m), not camera images.
DEPTH_ENCODINGS = frozenset({"16UC1", "16SC1", "32SC1", "32FC1", "64FC1"})
# Encodings read on a guess, with the one warning the node logs about them.
_ENCODING_WARNINGS = {
    "8UC3": "encoding 8UC3 does not say which channel order it has; taking it as bgr8",
}

# Encodings cv_bridge converts to rgb8 the way we do (it refuses 8UC1 / 8UC3; releases differ
# in which YUV names they know).
CV_BRIDGE_ENCODINGS = frozenset(SUPPORTED_ENCODINGS) - {
    "8UC1",
    "8UC3",
    "uyvy",
    "yuv422",
    "yuyv",
    "yuv422_yuy2",
}

# Encodings of the images this package publishes: numpy dtype and channel count.
OUTPUT_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "32FC1": (np.dtype(np.float32), 1),
}
HOST_IS_BIGENDIAN = int(sys.byteorder == "big")

DEFAULT_BRIDGE = CvBridge() if CvBridge is not None else None

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...): not DHT, JPG, DAC.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7 (SOI and EOI too, handled apart).
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})

MAX_SIDE = 8192
MAX_PIXELS = MAX_SIDE * MAX_SIDE


def check_pixels(width: int, height: int, what: str) -> None:
    """``ImageDecodeError`` when ``width * height`` exceeds ``MAX_PIXELS``."""
    if width * height > MAX_PIXELS:
        raise ImageDecodeError(
            f"{what} too large: {width}x{height} = {width * height} pixels > "
            f"{MAX_PIXELS} ({MAX_SIDE}x{MAX_SIDE}); refused before decoding"
        )


def _jpeg_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from the first start-of-frame segment of a JPEG; None if it has none
    before the data ends or a segment is malformed."""
    index = 2
    while index + 4 <= len(raw):
        if raw[index] != 0xFF:
            return None
        marker = raw[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in _JPEG_STANDALONE:
            index += 2
            continue
        (length,) = struct.unpack_from(">H", raw, index + 2)
        if marker in _JPEG_SOF:
            if index + 9 > len(raw):
                return None
            height, width = struct.unpack_from(">HH", raw, index + 5)
            return width, height
        if length < 2:
            return None
        index += 2 + length
    return None


def compressed_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) that a JPEG or PNG declares in its header; None when it is neither or
    the header is incomplete."""
    if raw.startswith(_PNG_START) and len(raw) >= 24 and raw[12:16] == b"IHDR":
        width, height = struct.unpack_from(">II", raw, 16)
        return width, height
    if raw.startswith(_JPEG_START):
        return _jpeg_size(raw)
    return None


def _bytes_of(data: Any) -> np.ndarray:
    """The message payload as a flat uint8 array, without copying where possible."""
    if isinstance(data, list):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def encoding_warning(encoding: str) -> str | None:
    """What to warn about once for images of ``encoding`` (e.g. 8UC3 read as bgr8), or None."""
    return _ENCODING_WARNINGS.get(encoding)


def _layout_of(msg: Any) -> _Layout:
    """Check encoding, size, step and data length; return the pixel layout."""
    layout = _LAYOUTS.get(msg.encoding)
    supported = f"supported: {', '.join(SUPPORTED_ENCODINGS)}"
    if msg.encoding in DEPTH_ENCODINGS:
        raise ImageDecodeError(
            f"encoding {msg.encoding!r} is a depth (or other single-channel measurement) image; "
            f"this node wants colour or mono camera images ({supported})"
        )
    if layout is None:
        raise ImageDecodeError(f"unknown encoding {msg.encoding!r}; {supported}")
    if int(msg.width) % layout.pixels_per_group:
        raise ImageDecodeError(
            f"{msg.encoding} packs {layout.pixels_per_group} pixels together, so the width must "
            f"be a multiple of {layout.pixels_per_group}; got {msg.width}"
        )
    _check_size(msg, layout.bytes_per_pixel)
    return layout


def _check_size(msg: Any, bytes_per_pixel: int) -> None:
    """Check size, step and data length of an image of ``bytes_per_pixel``."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageDecodeError(f"empty image: {width}x{height} pixels")
    check_pixels(width, height, f"{msg.encoding} image")
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f"step {step} < width * bytes per pixel = {width} * {bytes_per_pixel} "
            f"= {row_bytes} for a {width}x{height} {msg.encoding} image"
        )
    size = len(msg.data)
    if size != step * height:
        kind = "truncated data" if size < step * height else "data too long"
        raise ImageDecodeError(
            f"{kind}: {size} bytes != step * height = {step} * {height} = {step * height} "
            f"for a {width}x{height} {msg.encoding} image"
        )


def _pixels(msg: Any, layout: _Layout) -> np.ndarray:
    """A view of the pixels of a checked message, in native byte order."""
    dtype = np.dtype(np.uint16 if layout.bytes_per_channel == 2 else np.uint8)
    return _strided(msg, dtype, layout.channels)


def _strided(msg: Any, dtype: np.dtype, channels: int) -> np.ndarray:
    """A view of the pixels (HxW or HxWxC), skipping row padding, in native byte order."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    stored = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    shape: tuple[int, ...] = (height, width)
    strides: tuple[int, ...] = (step, channels * dtype.itemsize)
    if channels > 1:
        shape += (channels,)
        strides += (dtype.itemsize,)
    pixels = np.ndarray(shape, dtype=stored, buffer=_bytes_of(msg.data), strides=strides)
    return pixels.astype(stored.newbyteorder("="), copy=False)


def decode_image_ours(msg: Any) -> np.ndarray:
    """Our own sensor_msgs/Image -> HxWx3 uint8 RGB conversion (no cv_bridge)."""
    layout = _layout_of(msg)
    try:
        return np.ascontiguousarray(layout.to_rgb(_pixels(msg, layout)))
    except cv2.error as error:
        raise ImageDecodeError(f"OpenCV cannot convert {msg.encoding} image: {error}") from error


def decode_image(msg: Any, bridge: Any = DEFAULT_BRIDGE) -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 RGB, through cv_bridge when it is installed.

    The message is checked first, so bad input gives the same ``ImageDecodeError`` either
    way. Big-endian data never goes through cv_bridge: some of its releases byte-swap with
    ``ndarray.newbyteorder``, which NumPy 2 removed.
    """
    _layout_of(msg)
    if bridge is None or msg.encoding not in CV_BRIDGE_ENCODINGS or msg.is_bigendian:
        return decode_image_ours(msg)
    try:
        rgb = bridge.imgmsg_to_cv2(msg, "rgb8")
    except Exception as error:
        raise ImageDecodeError(f"cv_bridge cannot convert {msg.encoding} image: {error}") from error
    if rgb.shape != (int(msg.height), int(msg.width), 3):
        raise ImageDecodeError(f"cv_bridge returned shape {rgb.shape} for a {msg.encoding} image")
    return np.array(rgb, dtype=np.uint8, copy=True)


def decode_compressed(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png) -> HxWx3 uint8 RGB.

    The format string is not trusted: the data is recognised by its signature, and only JPEG
    and PNG are decoded, after the size in their header passed the guard. A JPEG must end
    with its end-of-image marker (trailing zero padding allowed), so a truncated frame is
    refused even by OpenCV builds that would return a partly grey image.
    """
    data = _bytes_of(msg.data)
    described = f"compressed image (format {msg.format!r}, {data.size} bytes)"
    if data.size == 0:
        raise ImageDecodeError(f"empty {described}")
    raw = data.tobytes()
    if raw.startswith(_JPEG_START) and not raw.rstrip(b"\x00").endswith(_JPEG_END):
        raise ImageDecodeError(f"truncated JPEG: no end-of-image marker in {described}")
    size = compressed_size(raw)
    if size is None:
        raise ImageDecodeError(f"cannot decode {described}: not JPEG/PNG, or no size in its header")
    check_pixels(*size, described)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDecodeError(f"cannot decode {described}: corrupt, or not JPEG/PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image in one of ``OUTPUT_ENCODINGS`` -> a fresh array of that encoding.

    The inverse of ``fill_image_msg``: HxW (mono8 uint8, 32FC1 float32) or HxWx3 (rgb8 uint8),
    whatever the row padding and byte order of the message.
    """
    if msg.encoding not in OUTPUT_ENCODINGS:
        raise ImageDecodeError(
            f"cannot read {msg.encoding!r} as an array; use one of {list(OUTPUT_ENCODINGS)}"
        )
    dtype, channels = OUTPUT_ENCODINGS[msg.encoding]
    _check_size(msg, channels * dtype.itemsize)
    return _strided(msg, dtype, channels).copy()


def fill_image_msg(msg: Any, array: np.ndarray, encoding: str, header: Any) -> Any:
    """Fill a sensor_msgs/Image with ``array`` (mono8, rgb8 or 32FC1) and ``header``."""
    if encoding not in OUTPUT_ENCODINGS:
        raise ValueError(f"cannot publish {encoding!r}; use one of {list(OUTPUT_ENCODINGS)}")
    dtype, channels = OUTPUT_ENCODINGS[encoding]
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ValueError(f"{encoding} needs {channels} channel(s), got shape {array.shape}")
    pixels = np.ascontiguousarray(array, dtype=dtype)
    msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = HOST_IS_BIGENDIAN
    msg.step = msg.width * channels * dtype.itemsize
    msg.data = pixels.tobytes()
    return msg
