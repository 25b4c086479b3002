"""Per-class colour distributions: each class keeps a recognisable look but varies."""

from __future__ import annotations

import colorsys

import numpy as np

RGB = tuple[float, float, float]

_FACADES: tuple[RGB, ...] = (
    (205, 190, 165),
    (225, 215, 190),
    (150, 85, 65),
    (135, 135, 135),
    (215, 215, 210),
    (220, 200, 145),
    (170, 180, 185),
    (185, 150, 120),
)
_CAR_PAINTS: tuple[RGB, ...] = (
    (225, 225, 225),
    (175, 178, 182),
    (25, 25, 28),
    (70, 72, 75),
    (150, 25, 25),
    (30, 50, 120),
    (20, 30, 60),
    (45, 75, 55),
    (190, 175, 145),
    (105, 110, 120),
)
_BUS_PAINTS: tuple[RGB, ...] = ((225, 185, 40), (190, 35, 35), (230, 230, 225), (40, 90, 160))
_TRUCK_PAINTS: tuple[RGB, ...] = ((230, 230, 230), (200, 200, 195), (60, 90, 150), (170, 40, 35))
_TRAM_PAINTS: tuple[RGB, ...] = ((235, 235, 230), (220, 190, 40), (200, 40, 40))
_CLOTHES: tuple[RGB, ...] = (
    (30, 30, 35),
    (60, 60, 65),
    (40, 50, 90),
    (140, 30, 30),
    (200, 200, 195),
    (90, 70, 50),
    (60, 90, 60),
    (150, 120, 90),
    (110, 40, 90),
    (50, 80, 140),
)
_TROUSERS: tuple[RGB, ...] = ((35, 40, 70), (30, 30, 32), (70, 70, 72), (120, 105, 80))
_SKINS: tuple[RGB, ...] = ((235, 195, 165), (200, 150, 115), (150, 100, 70), (95, 65, 45))


def as_rgb(values: np.ndarray) -> RGB:
    """Three floats from an array-like colour."""
    return (float(values[0]), float(values[1]), float(values[2]))


def jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    """Colour with a random brightness change and a smaller per-channel change."""
    gain = 1.0 + rng.uniform(-amount, amount)
    channels = 1.0 + rng.uniform(-amount / 3, amount / 3, 3)
    return as_rgb(np.clip(np.asarray(colour) * gain * channels, 0.0, 255.0))


def _pick(rng: np.random.Generator, options: tuple[RGB, ...], amount: float) -> RGB:
    return jitter(rng, options[int(rng.integers(len(options)))], amount)


def grey(rng: np.random.Generator, low: float, high: float, tint: float = 0.04) -> RGB:
    """A near-neutral grey between ``low`` and ``high``."""
    level = rng.uniform(low, high)
    return as_rgb(level * (1.0 + rng.uniform(-tint, tint, 3)))


def asphalt(rng: np.random.Generator) -> RGB:
    """Road surface."""
    return grey(rng, 70.0, 115.0, 0.05)


def paving(rng: np.random.Generator) -> RGB:
    """Sidewalk: light grey slabs, sometimes beige or reddish."""
    if rng.random() < 0.7:
        return grey(rng, 125.0, 170.0)
    return _pick(rng, ((175, 160, 140), (160, 115, 105)), 0.1)


def grass(rng: np.random.Generator) -> RGB:
    """Terrain: grass to dry soil."""
    return jitter(rng, (105 + rng.uniform(-15, 35), 125.0, 70.0), 0.15)


def leaves(rng: np.random.Generator) -> RGB:
    """Vegetation foliage."""
    return jitter(rng, (60.0, 95.0 + rng.uniform(-15, 20), 40.0), 0.2)


def facade(rng: np.random.Generator) -> RGB:
    """Building walls."""
    return _pick(rng, _FACADES, 0.12)


def glass(rng: np.random.Generator) -> RGB:
    """Windows: dark, slightly blue reflections."""
    return jitter(rng, (55.0, 65.0, 80.0), 0.35)


def concrete(rng: np.random.Generator) -> RGB:
    """Walls along the street."""
    return grey(rng, 120.0, 175.0, 0.06)


def metal(rng: np.random.Generator) -> RGB:
    """Poles and fences: grey, or painted dark green / black."""
    return _pick(rng, ((120, 122, 125), (150, 150, 150), (40, 55, 45), (35, 35, 38)), 0.12)


def car_paint(rng: np.random.Generator) -> RGB:
    """Car body."""
    return _pick(rng, _CAR_PAINTS, 0.1)


def bus_paint(rng: np.random.Generator) -> RGB:
    """Bus body."""
    return _pick(rng, _BUS_PAINTS, 0.08)


def truck_paint(rng: np.random.Generator) -> RGB:
    """Truck cab and box."""
    return _pick(rng, _TRUCK_PAINTS, 0.1)


def tram_paint(rng: np.random.Generator) -> RGB:
    """Tram body."""
    return _pick(rng, _TRAM_PAINTS, 0.06)


def clothing(rng: np.random.Generator) -> RGB:
    """Tops and jackets."""
    return _pick(rng, _CLOTHES, 0.15)


def trousers(rng: np.random.Generator) -> RGB:
    """Trousers and skirts."""
    return _pick(rng, _TROUSERS, 0.15)


def skin(rng: np.random.Generator) -> RGB:
    """Faces and hands."""
    return _pick(rng, _SKINS, 0.08)


def vivid(rng: np.random.Generator) -> RGB:
    """Saturated colour of random hue: used only by the anomaly families."""
    red, green, blue = colorsys.hsv_to_rgb(
        rng.uniform(0.0, 1.0), rng.uniform(0.8, 1.0), rng.uniform(0.85, 1.0)
    )
    return (255.0 * red, 255.0 * green, 255.0 * blue)
