"""Pinhole camera that drives along the road; scene points are given in road coordinates.

Road coordinates: ``s`` metres right of the road centre line, ``y`` metres up, ``z`` metres
along the road. The centre line bends as ``x = curvature * z**2 / 2``; ``camera_offset`` moves
the camera forward along it, so a sequence of offsets is a drive through one scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Polygons go to OpenCV in fixed point with this many fractional bits (sub-pixel accuracy).
SUBPIXEL_BITS = 4
_NEAR = 0.25  # metres; geometry closer than this to the camera plane is clipped away
_MAX_PIXELS = 1.0e5  # clamp for projected coordinates of points just past the near plane


@dataclass(frozen=True)
class CameraParams:
    """Intrinsics and mounting of the camera."""

    height: float  # metres above the road
    pitch_deg: float  # positive looks down
    roll_deg: float
    focal_scale: float  # focal length in units of the image width
    lane_offset: float  # lateral position of the camera, metres right of the centre line


@dataclass(frozen=True)
class GroundRays:
    """Per-pixel intersection of the camera rays with the road plane and the sky direction."""

    ground: np.ndarray  # bool HxW: the ray hits the road plane
    s: np.ndarray  # float32 HxW road coordinates of the hit (undefined off the ground)
    z: np.ndarray
    distance: np.ndarray  # float32 HxW metres from the camera to the hit
    elevation: np.ndarray  # float32 HxW sine of the ray's angle above the horizon


class View:
    """Projects road-coordinate geometry into an image of ``size`` (height, width)."""

    def __init__(
        self,
        params: CameraParams,
        size: tuple[int, int],
        curvature: float,
        camera_offset: float = 0.0,
    ) -> None:
        self.size = size
        self.curvature = curvature
        height, width = size
        self.focal = params.focal_scale * width
        self.centre = ((width - 1) / 2.0, (height - 1) / 2.0)
        self.camera_s = params.lane_offset
        self.camera_z = camera_offset
        self.camera_y = params.height
        self._position = np.array(
            [self.road_x(camera_offset) + params.lane_offset, params.height, camera_offset]
        )
        self._rotation = _rotation(
            heading=np.arctan(curvature * camera_offset),
            pitch=np.radians(params.pitch_deg),
            roll=np.radians(params.roll_deg),
        )

    def road_x(self, z: np.ndarray | float) -> np.ndarray | float:
        """World x of the road centre line at distance ``z``."""
        return 0.5 * self.curvature * np.square(z)

    def distance(self, s: float, z: float) -> float:
        """Horizontal distance from the camera to a road point (painter's order, haze)."""
        return float(np.hypot(s - self.camera_s, z - self.camera_z))

    def pixels_per_metre(self, distance: float) -> float:
        """Image scale of something ``distance`` metres ahead."""
        return self.focal / max(distance, _NEAR)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Road points (..., 3) as (s, y, z) -> camera coordinates (x right, y down, z ahead)."""
        world = np.array(points, dtype=np.float64)
        world[..., 0] += self.road_x(world[..., 2])
        return (world - self._position) @ self._rotation.T

    def project(self, camera_points: np.ndarray) -> np.ndarray:
        """Camera coordinates (..., 3) in front of the camera -> pixel coordinates (..., 2)."""
        depth = np.maximum(camera_points[..., 2:3], 1e-6)
        uv = camera_points[..., :2] * (self.focal / depth) + self.centre
        return np.minimum(np.maximum(uv, -_MAX_PIXELS), _MAX_PIXELS)

    def polygons(self, points: np.ndarray) -> list[np.ndarray]:
        """Project polygons given as (M, K, 3) or (K, 3) road points; fixed-point int32 output.

        Polygons are clipped at the near plane; ones entirely behind the camera are dropped.
        """
        return [polygon for group in self.polygon_groups(points) for polygon in group]

    def polygon_groups(self, points: np.ndarray) -> list[list[np.ndarray]]:
        """Like ``polygons`` but one list per input polygon (empty when it is behind the camera)."""
        batch = np.asarray(points, dtype=np.float64)
        if batch.ndim == 2:
            batch = batch[None]
        cam = self.to_camera(batch)
        in_front = cam[..., 2] >= _NEAR
        projected = _fixed_point(self.project(cam))
        whole = in_front.all(axis=1)
        groups: list[list[np.ndarray]] = []
        for index in range(len(batch)):
            if whole[index]:
                groups.append([projected[index]])
            elif in_front[index].any():
                kept = _clip_near(cam[index])
                groups.append([_fixed_point(self.project(kept))] if len(kept) >= 2 else [])
            else:
                groups.append([])
        return groups

    def box_in_view(
        self, s: tuple[float, float], y: tuple[float, float], z: tuple[float, float]
    ) -> bool:
        """False only when an axis-aligned box certainly projects outside the image."""
        ahead = (max(z[0], self.camera_z + 2 * _NEAR), z[1])
        if ahead[1] <= ahead[0]:
            return False
        corners = np.array(np.meshgrid(s, y, ahead, indexing="ij")).reshape(3, -1).T
        cam = self.to_camera(corners)
        if np.any(cam[:, 2] < _NEAR):
            return True
        uv = self.project(cam)
        height, width = self.size
        low, high = uv.min(axis=0), uv.max(axis=0)
        return bool(high[0] >= 0 and high[1] >= 0 and low[0] < width and low[1] < height)

    def ground_rays(self) -> GroundRays:
        """Intersect every pixel's ray with the road plane (vectorised)."""
        height, width = self.size
        u = (np.arange(width, dtype=np.float32) - self.centre[0]) / self.focal
        v = (np.arange(height, dtype=np.float32) - self.centre[1]) / self.focal
        rays = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.float32(1.0)), axis=-1)
        world = rays @ self._rotation.astype(np.float32)  # camera -> world direction (R^T d)
        norm = np.linalg.norm(world, axis=-1)
        down = -world[..., 1]
        ground = down > 1e-4
        t = np.where(ground, self.camera_y / np.maximum(down, 1e-4), 0.0).astype(np.float32)
        x = self._position[0] + t * world[..., 0]
        z = self._position[2] + t * world[..., 2]
        s = x - self.road_x(z)
        distance = t * np.hypot(world[..., 0], world[..., 2])
        elevation = world[..., 1] / norm
        return GroundRays(
            ground=ground,
            s=s.astype(np.float32),
            z=z.astype(np.float32),
            distance=distance.astype(np.float32),
            elevation=elevation.astype(np.float32),
        )


def _rotation(heading: float, pitch: float, roll: float) -> np.ndarray:
    """World (x right, y up, z ahead) -> camera (x right, y down, z ahead) rotation."""
    ch, sh = np.cos(heading), np.sin(heading)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    yaw = np.array([[ch, 0.0, -sh], [0.0, 1.0, 0.0], [sh, 0.0, ch]])
    flip = np.diag([1.0, -1.0, 1.0])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    spin = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return spin @ tilt @ flip @ yaw


def _clip_near(polygon: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman clip of one camera-space polygon against the near plane."""
    kept: list[np.ndarray] = []
    count = len(polygon)
    for i in range(count):
        current, following = polygon[i], polygon[(i + 1) % count]
        current_in, following_in = current[2] >= _NEAR, following[2] >= _NEAR
        if current_in:
            kept.append(current)
        if current_in != following_in:
            t = (_NEAR - current[2]) / (following[2] - current[2])
            kept.append(current + t * (following - current))
    return np.array(kept) if kept else np.zeros((0, 3))


def _fixed_point(uv: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> int32 points for OpenCV drawing with ``shift=SUBPIXEL_BITS``."""
    return np.round(uv * (1 << SUBPIXEL_BITS)).astype(np.int32)
