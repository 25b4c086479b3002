"""Procedural textures: float RGB arrays (0..255) of a given (height, width)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Colour = Sequence[float]


def noise_field(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth noise in about [-1, 1] with features ``cell`` pixels across."""
    height, width = shape
    cell = max(cell, 1.0)
    coarse = rng.uniform(-1.0, 1.0, (int(height / cell) + 2, int(width / cell) + 2))
    smooth = cv2.resize(
        coarse.astype(np.float32), None, fx=cell, fy=cell, interpolation=cv2.INTER_CUBIC
    )
    return smooth[:height, :width]


def mottled(
    rng: np.random.Generator,
    shape: tuple[int, int],
    colour: Colour,
    amount: float,
    cell: float,
    grain: float = 0.0,
) -> np.ndarray:
    """A colour modulated by smooth noise (``amount`` relative) plus per-pixel grain."""
    variation = 1.0 + amount * noise_field(rng, shape, cell)
    if grain > 0.0:
        variation += rng.normal(0.0, grain, shape).astype(np.float32)
    return variation[..., None] * np.asarray(colour, dtype=np.float32)


def foliage(
    rng: np.random.Generator, shape: tuple[int, int], colour: Colour, leaf: float
) -> np.ndarray:
    """Leafy texture: clumps of light and shadow at two scales."""
    clumps = noise_field(rng, shape, 4.0 * leaf)
    leaves = noise_field(rng, shape, leaf)
    light = 1.0 + 0.35 * clumps + 0.25 * leaves
    return np.clip(light, 0.3, 1.8)[..., None] * np.asarray(colour, dtype=np.float32)


def _band_coordinate(shape: tuple[int, int], period: float, angle: float) -> np.ndarray:
    """Coordinate across bands of width ``period`` pixels tilted by ``angle`` radians."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return (x * np.cos(angle) + y * np.sin(angle)) / max(period, 1.0)


def stripes(
    shape: tuple[int, int], period: float, angle: float, colours: Sequence[Colour]
) -> np.ndarray:
    """Parallel stripes cycling through ``colours``."""
    band = np.floor(_band_coordinate(shape, period, angle)).astype(np.int64) % len(colours)
    return np.asarray(colours, dtype=np.float32)[band]


def checker(
    shape: tuple[int, int], period: float, angle: float, colours: Sequence[Colour]
) -> np.ndarray:
    """Checkerboard of two colours, squares ``period`` pixels wide."""
    along = np.floor(_band_coordinate(shape, period, angle))
    across = np.floor(_band_coordinate(shape, period, angle + np.pi / 2))
    parity = ((along + across) % 2).astype(np.int64)
    return np.asarray(colours[:2], dtype=np.float32)[parity]


def polka_dots(
    shape: tuple[int, int], period: float, background: Colour, dot: Colour
) -> np.ndarray:
    """Round dots of one colour on another, on a square grid of ``period`` pixels."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    period = max(period, 2.0)
    dy = (y % period) - period / 2
    dx = (x % period) - period / 2
    inside = dx * dx + dy * dy < (0.3 * period) ** 2
    image = np.empty((height, width, 3), dtype=np.float32)
    image[...] = np.asarray(background, dtype=np.float32)
    image[inside] = np.asarray(dot, dtype=np.float32)
    return image


def hue_wheel(shape: tuple[int, int], start_hue: float, turns: int) -> np.ndarray:
    """Fully saturated hues cycling ``turns`` times around the box centre."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = np.arctan2(y - height / 2, x - width / 2)
    hue = (start_hue + turns * 180.0 * (angle / (2 * np.pi) + 0.5)) % 180.0
    hsv = np.stack([hue, np.full_like(hue, 255), np.full_like(hue, 240)], axis=-1)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
