"""sensor_msgs Image / CompressedImage <-> numpy without ROS (plain message stand-ins)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from synboost_ros.ros.image_conversion import (
    CV_BRIDGE_ENCODINGS,
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    decode_array,
    decode_compressed,
    decode_image,
    decode_image_ours,
    encoding_warning,
    fill_image_msg,
)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(75, 133, 3), dtype=np.uint8)  # odd size on purpose


def raw_msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False):
    """A stand-in sensor_msgs/Image holding ``pixels`` with ``pad`` bytes after each row."""
    height, width = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if bigendian else "<u2")
    rows = pixels.reshape(height, -1).view(np.uint8)
    padded = np.zeros((height, rows.shape[1] + pad), dtype=np.uint8)
    padded[:, : rows.shape[1]] = rows
    return SimpleNamespace(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=padded.shape[1],
        data=padded.tobytes(),
    )


def compressed_msg(data: bytes, fmt: str = "jpeg"):
    return SimpleNamespace(format=fmt, data=data)


@pytest.mark.parametrize(
    ("encoding", "to_message"),
    [
        ("rgb8", None),
        ("bgr8", cv2.COLOR_RGB2BGR),
        ("8UC3", cv2.COLOR_RGB2BGR),
        ("rgba8", cv2.COLOR_RGB2RGBA),
        ("bgra8", cv2.COLOR_RGB2BGRA),
    ],
)
@pytest.mark.parametrize("pad", [0, 5])
def test_colour_encodings_give_the_rgb_image(encoding, to_message, pad):
    pixels = RGB if to_message is None else cv2.cvtColor(RGB, to_message)
    out = decode_image(raw_msg(pixels, encoding, pad=pad), bridge=None)
    assert out.dtype == np.uint8 and out.shape == RGB.shape
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(encoding):
    gray = RGB[..., 0]
    out = decode_image(raw_msg(gray, encoding, pad=3), bridge=None)
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 6])
def test_mono16_scales_like_cv_bridge_in_either_byte_order(bigendian, pad):
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    out = decode_image(raw_msg(values, "mono16", pad=pad, bigendian=bigendian), bridge=None)
    # cv_bridge: convertTo(CV_8U, 255 / 65535), i.e. round(v * 255 / 65535), exact in integers.
    expected = ((values.astype(np.int64) * 510 + 65535) // 131070).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    np.testing.assert_array_equal(out[..., 2], expected)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255 and out[128, 0, 0] == 128


def bayer_mosaic(pattern: str, colour: tuple[int, int, int], height: int, width: int):
    """Sample a uniform RGB scene through the 2x2 filter ``pattern`` (e.g. 'rggb')."""
    channel = {"r": 0, "g": 1, "b": 2}
    mosaic = np.zeros((height, width), dtype=np.uint8)
    for index, letter in enumerate(pattern):
        row, col = divmod(index, 2)
        mosaic[row::2, col::2] = colour[channel[letter]]
    return mosaic


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize(("height", "width"), [(40, 60), (75, 133)])
def test_bayer_patterns_recover_the_scene_colour(pattern, height, width):
    colour = (200, 100, 30)  # distinct channels: a swapped pattern shows
    mosaic = bayer_mosaic(pattern, colour, height, width)
    out = decode_image(raw_msg(mosaic, f"bayer_{pattern}8", pad=2), bridge=None)
    assert out.shape == (height, width, 3)
    interior = out[2:-2, 2:-2].reshape(-1, 3)
    np.testing.assert_array_equal(interior, np.tile(colour, (interior.shape[0], 1)))


# BT.601 studio-range (Y, U, V) of pure colours, and the RGB each must come out as.
YUV_COLOURS = {
    "red": ((81, 90, 240), (255, 0, 0)),
    "green": ((145, 54, 34), (0, 255, 0)),
    "blue": ((41, 240, 110), (0, 0, 255)),
    "white": ((235, 128, 128), (255, 255, 255)),
}
UYVY_ENCODINGS = ("uyvy", "yuv422")
YUYV_ENCODINGS = ("yuyv", "yuv422_yuy2")


def pack_yuv422(y: np.ndarray, u: np.ndarray, v: np.ndarray, order: str) -> np.ndarray:
    """HxWx2 bytes of packed 4:2:2 from full-width Y and half-width U, V: per pixel pair
    U Y0 V Y1 (``order`` 'uyvy') or Y0 U Y1 V ('yuyv')."""
    chroma = np.empty_like(y)
    chroma[:, 0::2], chroma[:, 1::2] = u, v
    pair = (chroma, y) if order == "uyvy" else (y, chroma)
    return np.stack(pair, axis=2)


def bt601_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Studio-range BT.601 YUV -> RGB, computed here, independent of OpenCV."""
    y = 1.164 * (y.astype(np.float64) - 16)
    u = np.repeat(u.astype(np.float64) - 128, 2, axis=1)
    v = np.repeat(v.astype(np.float64) - 128, 2, axis=1)
    rgb = np.stack([y + 1.596 * v, y - 0.813 * v - 0.391 * u, y + 2.018 * u], axis=2)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("encoding", UYVY_ENCODINGS + YUYV_ENCODINGS)
def test_yuv422_stripes_of_pure_colours_come_out_as_those_colours(encoding):
    order = "uyvy" if encoding in UYVY_ENCODINGS else "yuyv"
    stripes = list(YUV_COLOURS.values())
    y = np.concatenate([np.full((6, 8), c[0][0], np.uint8) for c in stripes], axis=1)
    u = np.concatenate([np.full((6, 4), c[0][1], np.uint8) for c in stripes], axis=1)
    v = np.concatenate([np.full((6, 4), c[0][2], np.uint8) for c in stripes], axis=1)

    out = decode_image(raw_msg(pack_yuv422(y, u, v, order), encoding, pad=3), bridge=None)

    assert out.shape == (6, 32, 3) and out.dtype == np.uint8
    for index, (_, rgb) in enumerate(stripes):
        stripe = out[:, 8 * index : 8 * index + 8].reshape(-1, 3).astype(int)
        assert np.abs(stripe - rgb).max() <= 2, (encoding, rgb, stripe[0])


@pytest.mark.parametrize("encoding", UYVY_ENCODINGS + YUYV_ENCODINGS)
def test_yuv422_matches_opencv_and_the_bt601_formula(encoding):
    order = "uyvy" if encoding in UYVY_ENCODINGS else "yuyv"
    y = RNG.integers(16, 236, (75, 134), dtype=np.uint8)
    u, v = RNG.integers(16, 241, (2, 75, 67), dtype=np.uint8)
    packed = pack_yuv422(y, u, v, order)
    code = cv2.COLOR_YUV2RGB_UYVY if order == "uyvy" else cv2.COLOR_YUV2RGB_YUY2

    out = decode_image(raw_msg(packed, encoding, pad=6), bridge=None)

    np.testing.assert_array_equal(out, cv2.cvtColor(packed, code))
    assert np.abs(out.astype(int) - bt601_rgb(y, u, v)).max() <= 3


@pytest.mark.parametrize("encoding", UYVY_ENCODINGS + YUYV_ENCODINGS)
def test_yuv422_refuses_an_odd_width_and_a_short_step(encoding):
    odd = plain(4, 5, encoding, 10, 40)
    with pytest.raises(
        ImageDecodeError, match=f"{encoding} packs 2 pixels .* multiple of 2; got 5"
    ):
        decode_image(odd, bridge=None)
    with pytest.raises(ImageDecodeError, match="step 7 < width \\* bytes per pixel = 4 \\* 2"):
        decode_image(plain(4, 4, encoding, 7, 28), bridge=None)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1", "16SC1", "32SC1", "64FC1"])
def test_depth_images_are_refused_as_not_camera_images(encoding):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(plain(4, 4, encoding, 16, 64), bridge=None)
    text = str(caught.value)
    assert f"encoding {encoding!r} is a depth" in text
    assert "this node wants colour or mono camera images" in text and "yuyv" in text


def test_only_8uc3_carries_a_warning():
    assert "taking it as bgr8" in encoding_warning("8UC3")
    assert [e for e in SUPPORTED_ENCODINGS if encoding_warning(e) is not None] == ["8UC3"]


def plain(height: int, width: int, encoding: str, step: int, size: int):
    return SimpleNamespace(
        height=height, width=width, encoding=encoding, step=step, is_bigendian=0, data=bytes(size)
    )


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        (plain(2, 2, "xyz", 6, 12), ["unknown encoding", "'xyz'"]),
        (plain(4, 5, "rgb8", 10, 40), ["step 10", "15"]),
        (plain(4, 5, "rgb8", 15, 59), ["truncated", "59", "60"]),
        (plain(4, 5, "rgb8", 15, 61), ["too long", "61"]),
        (plain(0, 0, "rgb8", 0, 0), ["empty", "0x0"]),
        (plain(3, 4, "mono16", 7, 21), ["step 7", "8"]),
    ],
)
def test_bad_raw_images_raise_a_clear_error(msg, words):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(msg, bridge=None)
    for word in words:
        assert word in str(caught.value)


def test_a_list_payload_is_accepted():
    msg = raw_msg(RGB[:4, :5], "rgb8")
    msg.data = list(msg.data)
    np.testing.assert_array_equal(decode_image(msg, bridge=None), RGB[:4, :5])


def test_decoded_image_is_a_writable_copy():
    msg = raw_msg(RGB, "rgb8")
    out = decode_image(msg, bridge=None)
    out[0, 0] = 0
    assert out.flags.writeable and bytes(msg.data[:3]) == RGB[0, 0].tobytes()


def encode(ext: str, rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def test_png_decodes_exactly_whatever_the_format_string_says():
    out = decode_compressed(compressed_msg(encode(".png", RGB), "rgb8; png compressed bgr8"))
    np.testing.assert_array_equal(out, RGB)


def test_jpeg_decodes_to_rgb_in_the_right_channel_order():
    smooth = np.zeros((48, 64, 3), dtype=np.uint8)
    smooth[..., 0], smooth[..., 2] = 220, 40  # red-ish: swapped channels would be blue-ish
    out = decode_compressed(compressed_msg(encode(".jpg", smooth), "jpeg"))
    assert out.shape == smooth.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - smooth.astype(int)).max() <= 4


def test_jpeg_with_trailing_zero_padding_is_accepted():
    data = encode(".jpg", RGB) + bytes(8)
    assert decode_compressed(compressed_msg(data)).shape == RGB.shape


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", ["empty"]),
        (b"\x00\x01 not an image at all" * 4, ["cannot decode", "88 bytes"]),
        (encode(".jpg", RGB)[:-300], ["truncated JPEG"]),
        (encode(".png", RGB)[:-300], ["cannot decode"]),
    ],
)
def test_bad_compressed_images_raise_a_clear_error(data, words):
    with pytest.raises(ImageDecodeError) as caught:
        decode_compressed(compressed_msg(data, "jpeg"))
    for word in words:
        assert word in str(caught.value)
    assert "'jpeg'" in str(caught.value)


class RecordingBridge:
    """Stands in for cv_bridge.CvBridge and records what it was asked."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    def imgmsg_to_cv2(self, msg, desired_encoding):
        self.calls.append((msg.encoding, desired_encoding))
        if self.fail:
            raise RuntimeError("boom")
        return decode_image_ours(msg)


def test_cv_bridge_is_used_for_the_encodings_it_supports():
    bridge = RecordingBridge()
    decode_image(raw_msg(RGB, "rgb8"), bridge=bridge)
    decode_image(raw_msg(RGB, "8UC3"), bridge=bridge)
    decode_image(raw_msg(RGB[..., 0].astype(np.uint16), "mono16", bigendian=True), bridge=bridge)
    decode_image(raw_msg(RGB[..., 0].astype(np.uint16), "mono16"), bridge=bridge)
    assert bridge.calls == [("rgb8", "rgb8"), ("mono16", "rgb8")]


def test_bad_messages_are_refused_before_cv_bridge_sees_them():
    bridge = RecordingBridge()
    msg = raw_msg(RGB, "rgb8")
    msg.data = msg.data[:-1]
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(msg, bridge=bridge)
    assert bridge.calls == []


def test_cv_bridge_failures_become_image_decode_errors():
    with pytest.raises(ImageDecodeError, match="cv_bridge cannot convert rgb8 image: boom"):
        decode_image(raw_msg(RGB, "rgb8"), bridge=RecordingBridge(fail=True))


def test_ours_matches_cv_bridge_where_cv_bridge_is_installed():
    cv_bridge = pytest.importorskip(
        "cv_bridge", reason="cv_bridge is not installable here (no ROS apt packages)"
    )
    from sensor_msgs.msg import Image

    bridge = cv_bridge.CvBridge()
    gray16 = np.arange(75 * 133, dtype=np.uint16).reshape(75, 133) * 7
    cases = {
        "rgb8": RGB,
        "bgr8": RGB,
        "rgba8": cv2.cvtColor(RGB, cv2.COLOR_RGB2RGBA),
        "bgra8": cv2.cvtColor(RGB, cv2.COLOR_RGB2BGRA),
        "mono8": RGB[..., 1],
        "mono16": gray16,
        **{f"bayer_{p}8": RGB[..., 2] for p in ("rggb", "bggr", "gbrg", "grbg")},
    }
    assert set(cases) == CV_BRIDGE_ENCODINGS
    for encoding, pixels in cases.items():
        plain = raw_msg(pixels, encoding, pad=4)
        msg = Image(
            height=plain.height,
            width=plain.width,
            encoding=encoding,
            is_bigendian=0,
            step=plain.step,
            data=plain.data,
        )
        np.testing.assert_array_equal(
            decode_image_ours(msg), bridge.imgmsg_to_cv2(msg, "rgb8"), err_msg=encoding
        )


@pytest.mark.parametrize(
    ("encoding", "array"),
    [
        ("mono8", RGB[..., 0]),
        ("rgb8", RGB),
        ("32FC1", RNG.random((75, 133), dtype=np.float32)),
    ],
)
def test_outgoing_image_fields(encoding, array):
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 1234, 567
    msg = fill_image_msg(Image(), array, encoding, header)
    channels = 1 if array.ndim == 2 else 3
    assert (msg.height, msg.width, msg.encoding) == (75, 133, encoding)
    assert msg.step == 133 * channels * array.dtype.itemsize
    assert msg.is_bigendian == (sys.byteorder == "big")
    assert len(msg.data) == msg.step * msg.height
    assert msg.header.frame_id == "camera_optical"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1234, 567)
    restored = np.frombuffer(bytes(msg.data), dtype=array.dtype).reshape(array.shape)
    np.testing.assert_array_equal(restored, array)


def test_outgoing_image_refuses_a_shape_that_does_not_fit_the_encoding():
    with pytest.raises(ValueError, match="rgb8 needs 3 channel"):
        fill_image_msg(SimpleNamespace(), RGB[..., 0], "rgb8", None)
    with pytest.raises(ValueError, match="cannot publish 'bgr16'"):
        fill_image_msg(SimpleNamespace(), RGB, "bgr16", None)


OUTPUT_ARRAYS = {
    "mono8": RGB[..., 0],
    "rgb8": RGB,
    "32FC1": RNG.standard_normal((75, 133), dtype=np.float32) * 1e3,
}


@pytest.mark.parametrize("encoding", OUTPUT_ARRAYS)
def test_published_images_decode_back_to_the_same_array(encoding):
    array = OUTPUT_ARRAYS[encoding]
    msg = fill_image_msg(SimpleNamespace(), array, encoding, None)

    decoded = decode_array(msg)

    assert decoded.dtype == array.dtype and decoded.flags.writeable
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("encoding", OUTPUT_ARRAYS)
@pytest.mark.parametrize("bigendian", [False, True])
def test_output_arrays_decode_with_row_padding_in_either_byte_order(encoding, bigendian):
    array = OUTPUT_ARRAYS[encoding]
    stored = array.astype(array.dtype.newbyteorder(">" if bigendian else "<"))
    rows = stored.reshape(array.shape[0], -1).view(np.uint8)
    padded = np.full((rows.shape[0], rows.shape[1] + 5), 0xAB, dtype=np.uint8)
    padded[:, : rows.shape[1]] = rows
    msg = SimpleNamespace(
        height=array.shape[0],
        width=array.shape[1],
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=padded.shape[1],
        data=padded.tobytes(),
    )

    np.testing.assert_array_equal(decode_array(msg), array)


def test_output_arrays_refuse_other_encodings_and_bad_sizes():
    with pytest.raises(ImageDecodeError, match="cannot read 'bgr8' as an array"):
        decode_array(raw_msg(RGB, "bgr8"))
    truncated = fill_image_msg(SimpleNamespace(), OUTPUT_ARRAYS["32FC1"], "32FC1", None)
    truncated.data = truncated.data[:-4]
    with pytest.raises(ImageDecodeError, match="truncated data"):
        decode_array(truncated)
    narrow = fill_image_msg(SimpleNamespace(), RGB, "rgb8", None)
    narrow.step = 133 * 2
    with pytest.raises(ImageDecodeError, match="step 266 < width"):
        decode_array(narrow)
