"""Resizing and array conversion of images and maps, shared by inference and training.

The inference pipeline, the training augmentation and the training's inference maps all call
these functions, so what a network sees in training is what it sees at run time:

- camera images: area interpolation when shrinking, bilinear when a side grows;
- class-id and label maps: nearest neighbour;
- float maps: bilinear, then clipped to [0, 1];
- network input: 1x3xHxW float32 RGB in [0, 1]. Each network's own input normalisation
  (``config.InputNormalization``) is applied inside its stage graph, not here;
- back to an image (a synthesis, a network input): clipped to [0, 1], rounded to uint8.
"""

from __future__ import annotations

import cv2
import numpy as np

from synboost_ros.config import Size


def resize(array: np.ndarray, size: Size, interpolation: int) -> np.ndarray:
    """Resize an HxW or HxWxC array to (height, width); returned unchanged at that size."""
    height, width = size
    if array.shape[:2] == (height, width):
        return array
    return cv2.resize(array, (width, height), interpolation=interpolation)


def resize_image(image: np.ndarray, size: Size) -> np.ndarray:
    """Resize an RGB image: area interpolation when shrinking, bilinear when a side grows."""
    height, width = size
    grows = image.shape[0] < height or image.shape[1] < width
    return resize(image, size, cv2.INTER_LINEAR if grows else cv2.INTER_AREA)


def resize_labels(labels: np.ndarray, size: Size) -> np.ndarray:
    """Nearest-neighbour resize of an integer (class-id or label) map."""
    return resize(labels, size, cv2.INTER_NEAREST)


def resize_map(plane: np.ndarray, size: Size) -> np.ndarray:
    """Bilinear resize of a float map, HxW or with leading unit axes (1, 1, h, w), to an
    HxW float32 map clipped to [0, 1]."""
    plane = np.asarray(plane, dtype=np.float32)
    plane = plane.reshape(plane.shape[-2:])
    return np.clip(resize(plane, size, cv2.INTER_LINEAR), 0.0, 1.0)


def image_array(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> contiguous 1x3xHxW float32 in [0, 1]."""
    return np.ascontiguousarray((image.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[None])


def network_input(image: np.ndarray, size: Size) -> np.ndarray:
    """A camera image as the network input of a stage of size ``size`` (1x3xHxW float32)."""
    return image_array(resize_image(image, size))


def to_uint8_image(chw: np.ndarray) -> np.ndarray:
    """3xHxW float RGB -> HxWx3 uint8, clipped to [0, 1] and rounded."""
    return (np.clip(chw, 0.0, 1.0).transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
