"""Ground-truth labels from Image and CompressedImage messages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from synboost_ros.ros.image_conversion import ImageDecodeError, fill_image_msg
from synboost_ros.ros.labels import decode_label

LABEL = np.array([[0, 1, 255], [1, 0, 0]], dtype=np.uint8)


def _png(array: np.ndarray) -> CompressedImage:
    return CompressedImage(format="png", data=cv2.imencode(".png", array)[1].tobytes())


def test_mono8_images_and_png_give_the_labels():
    np.testing.assert_array_equal(decode_label(_png(LABEL)), LABEL)
    image = fill_image_msg(Image(), LABEL, "mono8", Header())
    np.testing.assert_array_equal(decode_label(image), LABEL)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_png(np.full((2, 3), 7, np.uint8)), r"labels must be 0, 1 or 255; found \[7\]"),
        (_png(np.zeros((2, 3, 3), np.uint8)), "one 8-bit channel"),
        (CompressedImage(format="png", data=b"not a png"), "cannot decode the label image"),
        (fill_image_msg(Image(), np.zeros((2, 3, 3), np.uint8), "rgb8", Header()), "mono8"),
    ],
)
def test_other_labels_are_refused_with_the_reason(message, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        decode_label(message)
