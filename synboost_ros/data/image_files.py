"""Reading and writing the PNG/JPEG files of the datasets, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_rgb(path: Path) -> np.ndarray:
    """Read a colour image as RGB uint8 HxWx3."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image file {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_single_channel(path: Path) -> np.ndarray:
    """Read a label or id map unchanged (8 or 16 bit); it must have one channel."""
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError(f"cannot read label file {path}")
    if array.ndim != 2:
        raise ValueError(f"label file {path} must have a single channel, found shape {array.shape}")
    return array


def write_png(path: Path, array: np.ndarray) -> None:
    """Write an RGB (HxWx3) or single-channel (8/16 bit) array as PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    if not cv2.imwrite(str(path), data, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise ValueError(f"cannot write PNG file {path}")


def check_same_size(
    image: np.ndarray, label: np.ndarray, image_path: Path, label_path: Path
) -> None:
    """Refuse a label map whose size differs from its image."""
    if image.shape[:2] != label.shape:
        raise ValueError(
            f"label {label_path} is {label.shape[1]}x{label.shape[0]} but image {image_path} "
            f"is {image.shape[1]}x{image.shape[0]}"
        )
