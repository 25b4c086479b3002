"""Fuzzed sensor_msgs Image and CompressedImage through ``ros/image_conversion.py``.

Whatever the fields (encoding, sizes, step, byte order, data length, JPEG / PNG bytes, cut or
corrupted), a decoder returns an HxWx3 uint8 image within the size guard or raises
``ImageDecodeError``, nothing else; and it never allocates beyond its stated bound
(``MAX_PIXELS``; raw: 3 bytes of result per byte of data), measured with tracemalloc, which
sees NumPy's allocations.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")  # the dev extra (setup.py)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from synboost_ros.ros.image_conversion import (  # noqa: E402
    MAX_PIXELS,
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    compressed_size,
    decode_compressed,
    decode_image,
    decode_image_ours,
)

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
# Allocation slack on top of the bound: OpenCV's and NumPy's small bookkeeping.
SLACK_BYTES = 1 << 20
SIDES = st.one_of(
    st.integers(0, 64), st.sampled_from([2**15, 2**16 - 1, 2**31 - 1, 2**32 - 1, 8193])
)
ENCODINGS = st.one_of(
    st.sampled_from(SUPPORTED_ENCODINGS),
    st.sampled_from(["yuv422_yuy2", "16UC3", "32FC1", "", "RGB8"]),
    st.text(max_size=12),
)


@st.composite
def raw_images(draw: st.DrawFn) -> SimpleNamespace:
    """An Image whose fields are each right, near right or anything."""
    height, width = draw(SIDES), draw(SIDES)
    row = width * draw(st.sampled_from([1, 2, 3, 4]))
    step = draw(st.one_of(st.just(row), st.integers(0, 2 * row + 8), st.just(2**32 - 1)))
    exact = step * height if step * height <= 1 << 16 else 0
    size = draw(st.one_of(st.just(exact), st.integers(0, 4096)))
    return SimpleNamespace(
        height=height,
        width=width,
        encoding=draw(ENCODINGS),
        step=step,
        is_bigendian=draw(st.integers(0, 1)),
        data=draw(st.binary(min_size=size, max_size=size)),
    )


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring ``width`` x ``height``, 8-bit RGB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def jpeg_header(width: int, height: int) -> bytes:
    """A JPEG start and a baseline SOF0 segment declaring ``width`` x ``height``."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof


@st.composite
def compressed_payloads(draw: st.DrawFn) -> bytes:
    """Real JPEG / PNG files (cut, corrupted or extended), bare headers with any size, or
    random bytes."""
    kind = draw(st.sampled_from(["encoded", "header", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    if kind == "header":
        header = draw(st.sampled_from([png_header, jpeg_header]))
        width, height = draw(st.integers(0, 2**16 - 1)), draw(st.integers(0, 2**16 - 1))
        return header(width, height) + draw(st.binary(max_size=256)) + b"\xff\xd9"
    height, width = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    _, encoded = cv2.imencode(draw(st.sampled_from([".jpg", ".png"])), image)
    data = bytearray(encoded.tobytes())
    for _ in range(draw(st.integers(0, 4))):  # flip bytes
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[: cut if draw(st.booleans()) else len(data)])


def decoded_within_bound(decode, msg, bound: int):
    """Decode ``msg``; assert the result and the peak of traced allocations stay within
    ``bound`` bytes; return the image or the ImageDecodeError."""
    tracemalloc.start()
    try:
        result = decode(msg)
    except ImageDecodeError as error:
        result = error
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak <= bound + SLACK_BYTES, (peak, bound)
    return result


@FUZZ
@given(raw_images())
@pytest.mark.parametrize("decode", [decode_image, decode_image_ours])
def test_fuzzed_raw_images_decode_or_raise_image_decode_error_within_bound(decode, msg):
    result = decoded_within_bound(decode, msg, 3 * len(msg.data))
    if not isinstance(result, ImageDecodeError):
        assert result.shape == (msg.height, msg.width, 3) and result.dtype == np.uint8
        assert msg.height * msg.width <= MAX_PIXELS


@FUZZ
@given(compressed_payloads(), st.sampled_from(["jpeg", "png", "", "rgb8; jpeg compressed bgr8"]))
def test_fuzzed_compressed_images_decode_or_raise_image_decode_error_within_bound(data, fmt):
    msg = SimpleNamespace(format=fmt, data=data)
    result = decoded_within_bound(decode_compressed, msg, 3 * MAX_PIXELS)
    if not isinstance(result, ImageDecodeError):
        height, width, channels = result.shape
        assert channels == 3 and result.dtype == np.uint8
        assert compressed_size(data) == (width, height)


@pytest.mark.parametrize("header", [png_header, jpeg_header])
def test_a_small_compressed_frame_declaring_a_huge_image_is_refused_before_decoding(header):
    data = header(60000, 50000) + bytes(64) + b"\xff\xd9"
    assert compressed_size(data) == (60000, 50000)
    error = decoded_within_bound(decode_compressed, SimpleNamespace(format="jpeg", data=data), 0)
    assert isinstance(error, ImageDecodeError)
    assert "too large: 60000x50000 = 3000000000 pixels > 67108864 (8192x8192)" in str(error)


def test_absurd_raw_dimensions_are_refused_naming_the_limit():
    msg = SimpleNamespace(
        height=100_000, width=100_000, encoding="rgb8", step=300_000, is_bigendian=0, data=b""
    )
    with pytest.raises(ImageDecodeError, match="rgb8 image too large: 100000x100000"):
        decode_image(msg)
    at_limit = SimpleNamespace(**{**vars(msg), "height": 8192, "width": 8192, "step": 3 * 8192})
    with pytest.raises(ImageDecodeError, match="truncated data"):  # within the guard
        decode_image(at_limit)
