"""Drawers of the street's fixed parts: buildings, vegetation, walls, fences, poles, signs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from synboost_ros.data.world import materials
from synboost_ros.data.world.appearance import Lighting, object_colour
from synboost_ros.data.world.camera import View
from synboost_ros.data.world.canvas import Canvas
from synboost_ros.data.world.labels import LABEL
from synboost_ros.data.world.layout import Item
from synboost_ros.data.world.shapes import (
    Face,
    draw_box,
    ellipse,
    face_brightness,
    lying,
    rectangle,
    sub_quads,
    upright,
    visible_faces,
)
from synboost_ros.data.world.textures import foliage, mottled

Drawer = Callable[[Canvas, View, Item, Lighting], None]

BUILDING_DEPTH = 12.0  # metres a building extends back from its façade
_BARK = (85.0, 72.0, 60.0)


def _near_distance(view: View, item: Item) -> float:
    """Distance to the part of an item nearest to the camera along the road."""
    z = min(max(view.camera_z, item.z), item.z + item.length)
    return view.distance(item.s, z)


def draw_building(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Box-shaped building; ``item.s`` is its façade plane, the body extends outwards."""
    rng = np.random.default_rng(item.seed)
    side = 1.0 if item.s >= 0 else -1.0
    wall = object_colour(rng, materials.facade(rng), lighting)
    outer = item.s + side * BUILDING_DEPTH
    bounds = (
        (min(item.s, outer), max(item.s, outer)),
        (0.0, item.height),
        (item.z, item.z + item.length),
    )
    distance = _near_distance(view, item)
    style = _FacadeStyle(rng)
    for face in visible_faces(view, *bounds):
        colour = np.asarray(wall) * face_brightness(face, lighting)
        canvas.paint(
            view.polygons(face.corners),
            lambda h, w, c=colour: mottled(rng, (h, w), c, 0.06, 10.0),
            LABEL["building"],
            distance,
        )
        if face.normal not in ("top", "bottom"):
            style.draw(canvas, view, face, item.height, distance, colour)


class _FacadeStyle:
    """Window grid, shop fronts and floor bands shared by all faces of one building."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.floor = rng.uniform(2.9, 3.5)
        self.ground_floor = rng.uniform(3.4, 4.5)
        self.spacing = rng.uniform(2.3, 3.6)
        self.window = (rng.uniform(0.35, 0.6), rng.uniform(0.4, 0.6))  # of spacing, of floor
        self.glass = [materials.glass(rng) for _ in range(3)]
        self.frame = materials.grey(rng, 40.0, 230.0)
        self.shops = rng.random() < 0.6
        self.bands = rng.random() < 0.5

    def draw(
        self,
        canvas: Canvas,
        view: View,
        face: Face,
        height: float,
        distance: float,
        wall: np.ndarray,
    ) -> None:
        """Add windows, shop fronts and bands to one vertical face."""
        width = float(np.linalg.norm(face.corners[1] - face.corners[0]))
        columns = int((width - 0.6) / self.spacing)
        floors = int((height - self.ground_floor - 0.6) / self.floor)
        if columns < 1:
            return
        margin = (width - columns * self.spacing) / 2.0
        u_centre = (margin + self.spacing * (np.arange(columns) + 0.5)) / width
        half_u = self.window[0] * self.spacing / width / 2.0
        building_label = LABEL["building"]
        if self.bands and floors > 0:
            levels = (self.ground_floor + self.floor * np.arange(floors)) / height
            boxes = np.column_stack(
                [np.zeros(floors), np.ones(floors), levels, levels + 0.25 / height]
            )
            canvas.fill(
                view.polygons(sub_quads(face.corners, boxes)), wall * 0.8, building_label, distance
            )
        levels = self.ground_floor + self.floor * np.arange(max(floors, 0)) + 0.9
        if not self.shops:
            levels = np.concatenate([[1.0], levels])
        if len(levels):
            uu, vv = np.meshgrid(u_centre, levels / height)
            tall = self.window[1] * self.floor / height
            boxes = np.column_stack(
                [uu.ravel() - half_u, uu.ravel() + half_u, vv.ravel(), vv.ravel() + tall]
            )
            self._glaze(canvas, view, face, boxes, width, height, distance)
        if self.shops:
            boxes = np.column_stack(
                [
                    u_centre - 0.42 * self.spacing / width,
                    u_centre + 0.42 * self.spacing / width,
                    np.full(columns, 0.3 / height),
                    np.full(columns, (self.ground_floor - 0.8) / height),
                ]
            )
            self._glaze(canvas, view, face, boxes, width, height, distance)

    def _glaze(
        self,
        canvas: Canvas,
        view: View,
        face: Face,
        boxes: np.ndarray,
        width: float,
        height: float,
        distance: float,
    ) -> None:
        """Frames, then glass in three tones, for window boxes in face units."""
        pad = np.array([-0.08 / width, 0.08 / width, -0.08 / height, 0.08 / height])
        label = LABEL["building"]
        frames = view.polygons(sub_quads(face.corners, boxes + pad))
        if not frames:
            return
        canvas.fill(frames, self.frame, label, distance)
        panes = view.polygon_groups(sub_quads(face.corners, boxes))
        tone = self.rng.integers(0, len(self.glass), len(boxes))
        for index, colour in enumerate(self.glass):
            chosen = [p for group, t in zip(panes, tone, strict=True) if t == index for p in group]
            canvas.fill(chosen, colour, label, distance)


def draw_tree(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Trunk and an irregular leafy crown, with a soft shadow on the ground."""
    rng = np.random.default_rng(item.seed)
    radius = item.width / 2.0
    trunk_top = item.height - 1.4 * radius
    centre_z = item.z + item.length / 2.0
    distance = view.distance(item.s, centre_z)
    vegetation = LABEL["vegetation"]
    shadow = lying(ellipse(0.0, 0.0, radius * 0.9, radius * 0.7), item.s, centre_z, 0.01)
    canvas.darken(view.polygons(shadow), 0.75)
    trunk = 0.08 + 0.04 * radius
    draw_box(
        canvas,
        view,
        lighting,
        (
            (item.s - trunk, item.s + trunk),
            (0.0, trunk_top + radius * 0.5),
            (centre_z - trunk, centre_z + trunk),
        ),
        materials.jitter(rng, _BARK, 0.2),
        vegetation,
    )
    crown = _crown_outline(rng, radius)
    crown_points = upright(crown, item.s, centre_z, trunk_top + radius)
    colour = object_colour(rng, materials.leaves(rng), lighting)
    leaf = max(view.pixels_per_metre(distance) * 0.25, 1.5)
    canvas.paint(
        view.polygons(crown_points),
        lambda h, w: foliage(rng, (h, w), colour, leaf),
        vegetation,
        distance,
    )


def _crown_outline(rng: np.random.Generator, radius: float) -> np.ndarray:
    """Lumpy crown silhouette: a wobbly ellipse, sometimes taller than wide."""
    count = 28
    angle = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
    lumps = 1.0 + 0.12 * np.sin(rng.integers(5, 9) * angle + rng.uniform(0, 6.3))
    lumps += rng.normal(0.0, 0.05, count)
    stretch = rng.uniform(0.85, 1.3)
    return np.column_stack(
        [radius * lumps * np.cos(angle), stretch * radius * lumps * np.sin(angle)]
    )


def draw_hedge(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Trimmed hedge: a leafy box."""
    rng = np.random.default_rng(item.seed)
    colour = object_colour(rng, materials.leaves(rng), lighting)
    distance = _near_distance(view, item)
    leaf = max(view.pixels_per_metre(distance) * 0.15, 1.5)
    bounds = (
        (item.s - item.width / 2, item.s + item.width / 2),
        (0.0, item.height),
        (item.z, item.z + item.length),
    )
    for face in visible_faces(view, *bounds):
        shade = np.asarray(colour) * face_brightness(face, lighting)
        canvas.paint(
            view.polygons(face.corners),
            lambda h, w, c=shade: foliage(rng, (h, w), c, leaf),
            LABEL["vegetation"],
            distance,
        )


def draw_wall(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Low concrete or stone wall with a lighter coping."""
    rng = np.random.default_rng(item.seed)
    colour = object_colour(rng, materials.concrete(rng), lighting)
    distance = _near_distance(view, item)
    bounds = (
        (item.s - item.width / 2, item.s + item.width / 2),
        (0.0, item.height),
        (item.z, item.z + item.length),
    )
    for face in visible_faces(view, *bounds):
        shade = np.asarray(colour) * face_brightness(face, lighting)
        canvas.paint(
            view.polygons(face.corners),
            lambda h, w, c=shade: mottled(rng, (h, w), c, 0.1, 4.0, grain=0.04),
            LABEL["wall"],
            distance,
        )


def draw_fence(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """See-through metal fence: posts, rails and a mesh tint over what lies behind."""
    rng = np.random.default_rng(item.seed)
    colour = object_colour(rng, materials.metal(rng), lighting)
    distance = _near_distance(view, item)
    fence = LABEL["fence"]
    z0, z1 = item.z, item.z + item.length
    panel = np.array(
        [[item.s, 0.0, z0], [item.s, 0.0, z1], [item.s, item.height, z1], [item.s, item.height, z0]]
    )
    canvas.tint(view.polygons(panel), colour, 0.35, fence, distance)
    posts = np.arange(z0, z1 + 1e-6, 2.0)
    rails = (0.1, item.height - 0.05)
    quads = [
        np.array(
            [
                [item.s, 0.0, z],
                [item.s, 0.0, z + 0.08],
                [item.s, item.height, z + 0.08],
                [item.s, item.height, z],
            ]
        )
        for z in posts
    ]
    quads += [
        np.array([[item.s, y, z0], [item.s, y, z1], [item.s, y + 0.05, z1], [item.s, y + 0.05, z0]])
        for y in rails
    ]
    canvas.fill(view.polygons(np.array(quads)), colour, fence, distance)


def draw_lamp_post(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Street light: pole, an arm reaching over the road and the lamp head."""
    rng = np.random.default_rng(item.seed)
    colour = object_colour(rng, materials.metal(rng), lighting)
    pole = LABEL["pole"]
    half = item.width / 2
    toward_road = -1.0 if item.s > 0 else 1.0
    arm = rng.uniform(0.8, 2.0)
    z = item.z
    draw_box(
        canvas,
        view,
        lighting,
        ((item.s - half, item.s + half), (0.0, item.height), (z, z + item.width)),
        colour,
        pole,
    )
    tip = item.s + toward_road * arm
    draw_box(
        canvas,
        view,
        lighting,
        ((min(item.s, tip), max(item.s, tip)), (item.height - 0.12, item.height), (z, z + 0.1)),
        colour,
        pole,
    )
    draw_box(
        canvas,
        view,
        lighting,
        ((tip - 0.3, tip + 0.3), (item.height - 0.25, item.height - 0.05), (z - 0.1, z + 0.2)),
        colour,
        pole,
    )


def draw_sign_post(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Thin pole carrying one traffic sign of a common European shape."""
    rng = np.random.default_rng(item.seed)
    metal = object_colour(rng, materials.grey(rng, 120.0, 160.0), lighting)
    half = 0.04
    size = item.width
    draw_box(
        canvas,
        view,
        lighting,
        (
            (item.s - half, item.s + half),
            (0.0, item.height - size / 2),
            (item.z, item.z + 2 * half),
        ),
        metal,
        LABEL["pole"],
    )
    distance = view.distance(item.s, item.z)
    for outline, colour in _sign_parts(rng, size):
        points = upright(outline, item.s, item.z - 0.02, item.height - size / 2)
        canvas.fill(view.polygons(points), colour, LABEL["traffic sign"], distance)


def _sign_parts(
    rng: np.random.Generator, size: float
) -> list[tuple[np.ndarray, tuple[float, float, float]]]:
    """Outlines (centred on the sign) and colours, back to front, of one random sign."""
    red, white, blue, black = (190, 30, 35), (235, 235, 230), (30, 80, 170), (25, 25, 25)
    yellow = (235, 190, 40)
    r = size / 2
    kind = int(rng.integers(6))
    if kind == 0:  # prohibition: red ring
        return [(ellipse(0, 0, r, r, 20), red), (ellipse(0, 0, 0.75 * r, 0.75 * r, 20), white)]
    if kind == 1:  # warning: red triangle
        tri = np.array([[-r, -0.8 * r], [r, -0.8 * r], [0.0, r]])
        return [
            (tri, red),
            (tri * 0.7, white),
            (rectangle(-0.07 * r, 0.07 * r, -0.4 * r, 0.2 * r), black),
        ]
    if kind == 2:  # mandatory: blue disc with an arrow
        arrow = (
            np.array(
                [
                    [-0.12, -0.6],
                    [0.12, -0.6],
                    [0.12, 0.1],
                    [0.35, 0.1],
                    [0.0, 0.6],
                    [-0.35, 0.1],
                    [-0.12, 0.1],
                ]
            )
            * r
        )
        return [(ellipse(0, 0, r, r, 20), blue), (arrow, white)]
    if kind == 3:  # information: blue rectangle
        return [
            (rectangle(-r, r, -0.75 * r, 0.75 * r), blue),
            (rectangle(-0.5 * r, 0.5 * r, -0.4 * r, 0.4 * r), white),
        ]
    if kind == 4:  # stop: red octagon
        return [
            (ellipse(0, 0, r, r, 8) @ _rotation(np.pi / 8), red),
            (rectangle(-0.6 * r, 0.6 * r, -0.12 * r, 0.12 * r), white),
        ]
    diamond = np.array([[0.0, -r], [r, 0.0], [0.0, r], [-r, 0.0]])  # priority road
    return [(diamond, white), (diamond * 0.7, yellow)]


def _rotation(angle: float) -> np.ndarray:
    """2-D rotation matrix for row vectors."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s], [-s, c]])


def draw_traffic_light(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Pole with a three-lamp signal head; sometimes hung over the road on an arm."""
    rng = np.random.default_rng(item.seed)
    metal = object_colour(rng, materials.metal(rng), lighting)
    pole = LABEL["pole"]
    z = item.z
    draw_box(
        canvas,
        view,
        lighting,
        ((item.s - 0.07, item.s + 0.07), (0.0, item.height), (z, z + 0.14)),
        metal,
        pole,
    )
    head_s = item.s
    head_top = item.height
    if rng.random() < 0.35:
        reach = rng.uniform(2.5, 5.0) * (-1.0 if item.s > 0 else 1.0)
        head_s = item.s + reach
        draw_box(
            canvas,
            view,
            lighting,
            (
                (min(item.s, head_s), max(item.s, head_s)),
                (item.height - 0.15, item.height),
                (z, z + 0.12),
            ),
            metal,
            pole,
        )
        head_top = item.height - 0.1
    housing = materials.grey(rng, 25.0, 60.0) if rng.random() < 0.8 else (150.0, 150.0, 60.0)
    light = LABEL["traffic light"]
    bounds = ((head_s - 0.16, head_s + 0.16), (head_top - 0.95, head_top), (z - 0.3, z))
    draw_box(canvas, view, lighting, bounds, housing, light)
    if view.camera_z >= z - 0.3:
        return
    lit = int(rng.integers(3))
    lamps = ((255.0, 40.0, 30.0), (255.0, 180.0, 20.0), (40.0, 230.0, 110.0))
    distance = view.distance(head_s, z)
    for index, colour in enumerate(lamps):
        shade = colour if index == lit else tuple(0.2 * c for c in colour)
        centre_y = head_top - 0.18 - 0.3 * index
        disc = upright(ellipse(0.0, 0.0, 0.1, 0.1, 12), head_s, z - 0.31, centre_y)
        canvas.fill(view.polygons(disc), shade, light, distance)


DRAWERS: dict[str, Drawer] = {
    "building": draw_building,
    "tree": draw_tree,
    "hedge": draw_hedge,
    "wall": draw_wall,
    "fence": draw_fence,
    "lamp_post": draw_lamp_post,
    "sign_post": draw_sign_post,
    "traffic_light": draw_traffic_light,
}
# Drawn first, far to near: they stand behind everything else on the street.
BACKDROP_KINDS = frozenset({"building"})
