"""Camera mounting, lighting and sensor effects: everything that varies how a scene looks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synboost_ros.data.world.camera import CameraParams
from synboost_ros.data.world.materials import RGB, as_rgb, jitter


@dataclass(frozen=True)
class Lighting:
    """Global look of one scene."""

    exposure: float  # overall gain
    contrast: float  # gain around mid-grey
    tint: RGB  # per-channel gains (colour temperature)
    sun_side: float  # +1: faces looking left (lit from the right) are bright; -1 the opposite
    overcast: float  # 0 clear blue sky .. 1 grey sky and flat shading
    haze_distance: float  # metres at which haze covers 63 % of a colour
    noise_sigma: float  # sensor noise, grey levels
    blur_sigma: float  # optical blur, pixels at 512 px image width
    vignette: float  # relative darkening of the corners


def sample_camera(rng: np.random.Generator, lane_offset: float) -> CameraParams:
    """A car-mounted camera like the Cityscapes one, with small random mounting changes."""
    return CameraParams(
        height=float(rng.uniform(1.2, 1.7)),
        pitch_deg=float(rng.uniform(0.5, 3.5)),
        roll_deg=float(rng.normal(0.0, 0.6)),
        focal_scale=float(rng.uniform(1.0, 1.25)),
        lane_offset=lane_offset,
    )


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """Random daylight conditions."""
    warm = rng.uniform(-0.06, 0.06)
    return Lighting(
        exposure=float(rng.uniform(0.8, 1.2)),
        contrast=float(rng.uniform(0.85, 1.15)),
        tint=(1.0 + warm, 1.0 + rng.uniform(-0.02, 0.02), 1.0 - warm),
        sun_side=float(rng.choice([-1.0, 1.0])),
        overcast=float(rng.uniform(0.0, 1.0)),
        haze_distance=float(rng.uniform(150.0, 600.0)),
        noise_sigma=float(rng.uniform(1.0, 5.0)),
        blur_sigma=float(rng.uniform(0.0, 0.9)),
        vignette=float(rng.uniform(0.0, 0.3)),
    )


def sky_colours(lighting: Lighting) -> tuple[RGB, RGB]:
    """(horizon, zenith) colours: blue on clear days, grey when overcast."""
    clear_horizon, clear_zenith = np.array([200, 215, 230]), np.array([85, 130, 195])
    grey_horizon, grey_zenith = np.array([205, 208, 212]), np.array([165, 170, 178])
    mix = lighting.overcast
    horizon = (1 - mix) * clear_horizon + mix * grey_horizon
    zenith = (1 - mix) * clear_zenith + mix * grey_zenith
    return as_rgb(horizon), as_rgb(zenith)


def face_shade(lighting: Lighting, facing: float) -> float:
    """Brightness of a vertical face whose outward normal points ``facing`` (-1 left, +1 right)."""
    contrast = 0.3 * (1.0 - 0.7 * lighting.overcast)
    return 1.0 - contrast * (0.5 + 0.5 * facing * lighting.sun_side)


def object_colour(rng: np.random.Generator, colour: RGB, lighting: Lighting) -> RGB:
    """Per-object colour jitter on top of the class distribution."""
    return jitter(rng, colour, 0.06 * (1.0 + lighting.overcast))


def finish(image: np.ndarray, lighting: Lighting, rng: np.random.Generator) -> np.ndarray:
    """Apply exposure, contrast, tint, vignetting, blur and sensor noise; returns RGB uint8."""
    height, width = image.shape[:2]
    out = (image - 128.0) * lighting.contrast + 128.0
    out *= lighting.exposure * np.asarray(lighting.tint, dtype=np.float32)
    if lighting.vignette > 0.0:
        y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
        x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
        out *= (1.0 - lighting.vignette * 0.5 * (x * x + y * y))[..., None]
    sigma = lighting.blur_sigma * width / 512.0
    if sigma > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    out += rng.normal(0.0, lighting.noise_sigma, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 255.0).astype(np.uint8)
