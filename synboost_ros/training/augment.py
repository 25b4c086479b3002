"""Data augmentation on NumPy images (HxWx3 uint8) and label maps (HxW), driven by a Generator.

Resizing is the inference pipeline's own (``synboost_ros.preprocessing``).
"""

from __future__ import annotations

import numpy as np

from synboost_ros.classes import IGNORE_ID
from synboost_ros.config import Size
from synboost_ros.preprocessing import resize_image, resize_labels

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def random_scale_crop(
    image: np.ndarray,
    labels: np.ndarray,
    size: Size,
    scale_range: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Rescale to ``size`` times a random factor, then crop (or pad) a ``size`` window.

    Factor 1 reproduces the inference input. Padding is black in the image and
    ``IGNORE_ID`` in the labels.
    """
    low, high = scale_range
    if not 0 < low <= high:
        raise ValueError(f"scale range must satisfy 0 < low <= high, got {scale_range}")
    height, width = size
    scale = rng.uniform(low, high)
    scaled = (max(1, round(height * scale)), max(1, round(width * scale)))
    image = resize_image(image, scaled)
    labels = resize_labels(labels, scaled)
    pad_h, pad_w = max(0, height - scaled[0]), max(0, width - scaled[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)), constant_values=IGNORE_ID)
    top = int(rng.integers(0, image.shape[0] - height + 1))
    left = int(rng.integers(0, image.shape[1] - width + 1))
    window = (slice(top, top + height), slice(left, left + width))
    return image[window], labels[window]


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    """Random brightness, contrast and saturation factors in [1 - strength, 1 + strength]."""
    brightness, contrast, saturation = rng.uniform(1.0 - strength, 1.0 + strength, size=3)
    pixels = image.astype(np.float32) * brightness
    pixels = (pixels - pixels.mean()) * contrast + pixels.mean()
    gray = (pixels @ _LUMA)[..., None]
    pixels = (pixels - gray) * saturation + gray
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def random_hflip(rng: np.random.Generator, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mirror all arrays (HxW or HxWxC) left-right together with probability 0.5."""
    if rng.random() < 0.5:
        return tuple(np.ascontiguousarray(array[:, ::-1]) for array in arrays)
    return arrays
