"""``preprocessing``'s resizes and conversions as torch ops, on whatever device a tensor is.

The same rules as the OpenCV functions, so the device-resident pipeline sees what the host
pipeline sees:

- camera images: area interpolation when shrinking (exact area weights, as OpenCV's
  ``INTER_AREA``; whole factors as a mean over blocks), bilinear when a side grows, then
  rounded to whole levels as OpenCV's uint8 result is (half up for its 2x2 blocks, half to
  even otherwise; bilinear levels may differ by one where OpenCV's fixed-point weights
  round otherwise);
- class-id maps: nearest neighbour with OpenCV's source index ``floor(x * in / out)``;
- float maps: bilinear (half-pixel centres, no antialiasing, as ``INTER_LINEAR``), clipped
  to [0, 1];
- float images back to levels: clipped to [0, 1], times 255, rounded half up.

Images are (1, 3, H, W) float tensors of levels 0..255 until ``network_input`` divides them;
maps are (1, 1, H, W); class ids (1, H, W) integers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from synboost_ros.config import Size

_LEVELS = 255.0


def upload_image(
    image: np.ndarray, device: torch.device, staging: torch.Tensor | None = None
) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, H, W) float32 levels on ``device``. With ``staging`` (a pinned
    host tensor of the image's shape), the copy to the device goes through it, asynchronously."""
    host = torch.from_numpy(np.ascontiguousarray(image))
    if staging is not None:
        staging.copy_(host)
        host = staging
    on_device = host.to(device, non_blocking=staging is not None)
    return on_device.permute(2, 0, 1).unsqueeze(0).float()


def resize_image(levels: torch.Tensor, size: Size) -> torch.Tensor:
    """Resize a (1, 3, H, W) image of levels: area when shrinking, bilinear when a side grows;
    rounded to whole levels. Unchanged at that size."""
    height, width = levels.shape[-2:]
    if (height, width) == tuple(size):
        return levels
    if height < size[0] or width < size[1]:
        resized = F.interpolate(levels, size=tuple(size), mode="bilinear", align_corners=False)
        return round_levels(resized)
    resized = _area_axis(_area_axis(levels, size[0], axis=-2), size[1], axis=-1)
    halves = (height, width) == (2 * size[0], 2 * size[1])
    return round_levels(resized) if halves else torch.round(resized).clamp(0.0, _LEVELS)


def round_levels(levels: torch.Tensor) -> torch.Tensor:
    """Clip to 0..255 and round half up."""
    return torch.floor(levels.clamp(0.0, _LEVELS) + 0.5)


def network_input(levels: torch.Tensor, size: Size) -> torch.Tensor:
    """A camera image of levels as a stage's network input: (1, 3, h, w) float in [0, 1]."""
    return resize_image(levels, size) * (1.0 / _LEVELS)


def _area_axis(tensor: torch.Tensor, out: int, axis: int) -> torch.Tensor:
    """Area-weighted shrink of one axis (-2 or -1) to ``out`` samples."""
    length = tensor.shape[axis]
    if length == out:
        return tensor
    if length % out == 0:
        moved = tensor.movedim(axis, -1)
        blocks = moved.reshape(*moved.shape[:-1], out, length // out).mean(dim=-1)
        return blocks.movedim(-1, axis)
    weights = area_weights(length, out).to(tensor.device)
    if axis == -1:
        return tensor @ weights.T
    return weights @ tensor


@lru_cache(maxsize=32)
def area_weights(length: int, out: int) -> torch.Tensor:
    """(out, length) matrix: the share of output sample i that source sample j covers, each
    output covering [i * length / out, (i + 1) * length / out)."""
    scale = length / out
    starts = np.arange(out, dtype=np.float64) * scale
    ends = starts + scale
    cells = np.arange(length, dtype=np.float64)
    overlap = np.minimum(ends[:, None], cells[None] + 1) - np.maximum(starts[:, None], cells[None])
    return torch.from_numpy(np.clip(overlap, 0.0, None) / scale).float()


def resize_labels(labels: torch.Tensor, size: Size) -> torch.Tensor:
    """Nearest-neighbour resize of (..., H, W) class ids, OpenCV's source indices."""
    height, width = labels.shape[-2:]
    if (height, width) == tuple(size):
        return labels
    rows = _nearest_indices(height, size[0]).to(labels.device)
    cols = _nearest_indices(width, size[1]).to(labels.device)
    return labels.index_select(-2, rows).index_select(-1, cols)


@lru_cache(maxsize=32)
def _nearest_indices(length: int, out: int) -> torch.Tensor:
    """OpenCV's ``INTER_NEAREST`` sources: floor(x / (out / length)), at most length - 1."""
    indices = np.floor(np.arange(out, dtype=np.float64) * (1.0 / (out / length)))
    return torch.from_numpy(np.minimum(indices, length - 1).astype(np.int64))


def resize_map(plane: torch.Tensor, size: Size) -> torch.Tensor:
    """Bilinear resize of a (1, 1, h, w) float map, clipped to [0, 1]."""
    if tuple(plane.shape[-2:]) != tuple(size):
        plane = F.interpolate(plane, size=tuple(size), mode="bilinear", align_corners=False)
    return plane.clamp(0.0, 1.0)


def image_levels(image: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) float RGB in [0, 1] -> levels 0..255, rounded half up."""
    return torch.floor(image.clamp(0.0, 1.0) * _LEVELS + 0.5)


def resize_levels(levels: torch.Tensor, size: Size) -> torch.Tensor:
    """Bilinear resize of an image of levels, rounded again (the synthesized image to the
    camera size)."""
    if tuple(levels.shape[-2:]) == tuple(size):
        return levels
    resized = F.interpolate(levels, size=tuple(size), mode="bilinear", align_corners=False)
    return round_levels(resized)
