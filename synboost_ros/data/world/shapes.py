"""Geometry helpers in road coordinates: boxes, planar figures and their outlines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synboost_ros.data.world.appearance import Lighting, face_shade
from synboost_ros.data.world.camera import View
from synboost_ros.data.world.canvas import Canvas, Colour

# Extent of an axis-aligned box: ((s0, s1), (y0, y1), (z0, z1)) in road coordinates.
Bounds = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Face:
    """A visible box face: corners (u0 v0, u1 v0, u1 v1, u0 v1) in road coordinates."""

    corners: np.ndarray  # (4, 3)
    normal: str  # "near", "far", "left", "right", "top" or "bottom"


def visible_faces(
    view: View, s: tuple[float, float], y: tuple[float, float], z: tuple[float, float]
) -> list[Face]:
    """Faces of an axis-aligned box that point towards the camera.

    Vertical faces run u along the road or across it and v upwards; top and bottom run
    u across and v along the road.
    """
    (s0, s1), (y0, y1), (z0, z1) = s, y, z
    faces: list[Face] = []
    if view.camera_z < z0:
        faces.append(
            Face(np.array([[s0, y0, z0], [s1, y0, z0], [s1, y1, z0], [s0, y1, z0]]), "near")
        )
    if view.camera_z > z1:
        faces.append(
            Face(np.array([[s1, y0, z1], [s0, y0, z1], [s0, y1, z1], [s1, y1, z1]]), "far")
        )
    if view.camera_s < s0:
        faces.append(
            Face(np.array([[s0, y0, z0], [s0, y0, z1], [s0, y1, z1], [s0, y1, z0]]), "left")
        )
    if view.camera_s > s1:
        faces.append(
            Face(np.array([[s1, y0, z0], [s1, y0, z1], [s1, y1, z1], [s1, y1, z0]]), "right")
        )
    if view.camera_y > y1:
        faces.append(
            Face(np.array([[s0, y1, z0], [s1, y1, z0], [s1, y1, z1], [s0, y1, z1]]), "top")
        )
    if view.camera_y < y0:
        faces.append(
            Face(np.array([[s0, y0, z0], [s1, y0, z0], [s1, y0, z1], [s0, y0, z1]]), "bottom")
        )
    return faces


def face_brightness(face: Face, lighting: Lighting) -> float:
    """Light falling on a face: sides depend on the sun, tops are bright, bottoms dark."""
    if face.normal == "left":
        return face_shade(lighting, -1.0)
    if face.normal == "right":
        return face_shade(lighting, 1.0)
    return {"near": 0.92, "far": 0.92, "top": 1.1, "bottom": 0.5}[face.normal]


def sub_quads(corners: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Quads inside a face: ``boxes`` (N, 4) of (u0, u1, v0, v1) in 0..1 -> (N, 4, 3) points."""
    boxes = np.atleast_2d(boxes)
    origin = corners[0]
    along_u = corners[1] - corners[0]
    along_v = corners[3] - corners[0]
    u = boxes[:, [0, 1, 1, 0]][..., None]
    v = boxes[:, [2, 2, 3, 3]][..., None]
    return origin + u * along_u + v * along_v


def draw_box(
    canvas: Canvas,
    view: View,
    lighting: Lighting,
    bounds: Bounds,
    colour: Colour,
    label_id: int,
    instance_id: int | None = None,
) -> list[Face]:
    """Fill the visible faces of a box, each shaded by its light; returns them."""
    s, y, z = bounds
    distance = view.distance(0.5 * (s[0] + s[1]), max(z[0], view.camera_z))
    faces = visible_faces(view, s, y, z)
    if not faces:
        return faces
    groups = view.polygon_groups(np.array([face.corners for face in faces]))
    for face, polygons in zip(faces, groups, strict=True):
        shade = np.asarray(colour) * face_brightness(face, lighting)
        canvas.fill(polygons, shade, label_id, distance, instance_id)
    return faces


def upright(outline: np.ndarray, s: float, z: float, y0: float = 0.0) -> np.ndarray:
    """2-D outline (K, 2) of (right, up) metres -> points in the vertical plane at ``z``."""
    outline = np.asarray(outline, dtype=np.float64)
    count = len(outline)
    return np.column_stack([s + outline[:, 0], y0 + outline[:, 1], np.full(count, z)])


def lying(outline: np.ndarray, s: float, z: float, y: float = 0.0) -> np.ndarray:
    """2-D outline (K, 2) of (right, ahead) metres -> points on the horizontal plane at ``y``."""
    outline = np.asarray(outline, dtype=np.float64)
    count = len(outline)
    return np.column_stack([s + outline[:, 0], np.full(count, y), z + outline[:, 1]])


def ellipse(cx: float, cy: float, rx: float, ry: float, count: int = 16) -> np.ndarray:
    """Polygon approximating an ellipse, (count, 2)."""
    angle = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
    return np.column_stack([cx + rx * np.cos(angle), cy + ry * np.sin(angle)])


def rectangle(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle outline, (4, 2)."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def blob(rng: np.random.Generator, radius: float, roughness: float, count: int = 20) -> np.ndarray:
    """Irregular star-shaped outline around the origin, (count, 2)."""
    angle = np.sort(rng.uniform(0.0, 2.0 * np.pi, count))
    spectrum = rng.normal(0.0, 1.0, (3, 2))
    wobble = sum(
        spectrum[k, 0] * np.cos((k + 2) * angle) + spectrum[k, 1] * np.sin((k + 2) * angle)
        for k in range(3)
    )
    radii = radius * np.clip(1.0 + roughness * wobble / 2.0, 0.35, 1.8)
    return np.column_stack([radii * np.cos(angle), radii * np.sin(angle)])


def thick_segment(a: tuple[float, float], b: tuple[float, float], width: float) -> np.ndarray:
    """Rectangle of ``width`` around the segment a-b, (4, 2)."""
    start, end = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    direction = end - start
    normal = np.array([-direction[1], direction[0]]) / max(np.linalg.norm(direction), 1e-9)
    offset = normal * width / 2.0
    return np.array([start + offset, end + offset, end - offset, start - offset])
