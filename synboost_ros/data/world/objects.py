"""Void objects (Cityscapes 'static' / 'dynamic') and out-of-distribution anomalies.

Void families, seen in training and labelled with their Cityscapes void labelId:
  static (4):  rubbish_bin, bollard, utility_cabinet, bench
  dynamic (5): wheelie_bin, crate_stack, handcart
They are box-like street furniture in muted colours (greys, dark greens, browns, dull blues),
placed on sidewalks and along curbs.

Anomaly families, only in anomaly scenes (labelId 0 'unlabeled', anomaly label 1):
  striped_blob:  irregular rounded blob with stripes of 2-3 saturated random hues
  checker_shard: jagged angular shard with a saturated two-hue checkerboard
  animal:        four-legged silhouette in a saturated odd colour with contrasting spots
  debris_field:  a scatter of small jagged pieces with saturated polka dots or stripes
  neon_ring:     upright tyre-sized ring painted with a cycling rainbow of hues
No class or void family uses saturated hue patterns, free-form outlines or rings, so the two
sets are disjoint in shape, colour and texture. Anomalies stand on or next to the road.
"""

from __future__ import annotations

import numpy as np

from synboost_ros.data.world import materials
from synboost_ros.data.world.appearance import Lighting, object_colour
from synboost_ros.data.world.camera import View
from synboost_ros.data.world.canvas import Canvas
from synboost_ros.data.world.labels import DYNAMIC, STATIC, UNLABELED
from synboost_ros.data.world.layout import LEFT, RIGHT, Item, RoadLayout
from synboost_ros.data.world.shapes import (
    Bounds,
    blob,
    draw_box,
    ellipse,
    rectangle,
    sub_quads,
    thick_segment,
    upright,
)
from synboost_ros.data.world.street import Drawer
from synboost_ros.data.world.textures import checker, hue_wheel, polka_dots, stripes

VOID_FAMILIES: dict[str, int] = {
    "rubbish_bin": STATIC,
    "bollard": STATIC,
    "utility_cabinet": STATIC,
    "bench": STATIC,
    "wheelie_bin": DYNAMIC,
    "crate_stack": DYNAMIC,
    "handcart": DYNAMIC,
}
ANOMALY_FAMILIES: tuple[str, ...] = (
    "striped_blob",
    "checker_shard",
    "animal",
    "debris_field",
    "neon_ring",
)

# (width, length, (min height, max height)) in metres.
_VOID_SIZES: dict[str, tuple[float, float, tuple[float, float]]] = {
    "rubbish_bin": (0.5, 0.5, (0.85, 1.1)),
    "bollard": (0.16, 0.16, (0.7, 1.0)),
    "utility_cabinet": (0.5, 1.0, (1.1, 1.4)),
    "bench": (0.6, 1.8, (0.8, 0.9)),
    "wheelie_bin": (0.6, 0.7, (1.0, 1.1)),
    "crate_stack": (0.55, 0.55, (0.5, 1.6)),
    "handcart": (0.6, 1.0, (0.9, 1.0)),
}
_MUTED: tuple[tuple[float, float, float], ...] = (
    (55, 80, 60),
    (90, 95, 100),
    (40, 40, 42),
    (120, 100, 75),
    (60, 75, 105),
    (150, 150, 140),
)
_WOOD = (140.0, 105.0, 70.0)


def _distance_in_view(
    rng: np.random.Generator, s: float, camera_s: float, near: float, far: float
) -> float:
    """Random distance in [near, far] where lateral position ``s`` is inside the image."""
    nearest = max(near, 2.2 * abs(s - camera_s) + 1.0)
    return float(rng.uniform(nearest, far)) if nearest < far else far


def sample_void_objects(rng: np.random.Generator, road: RoadLayout, camera_s: float) -> list[Item]:
    """1-5 void objects on sidewalks and along curbs (none in a quarter of the scenes)."""
    count = 0 if rng.random() < 0.25 else int(rng.integers(1, 6))
    families = list(VOID_FAMILIES)
    items = []
    for _ in range(count):
        family = families[int(rng.integers(len(families)))]
        width, length, (low, high) = _VOID_SIZES[family]
        side = LEFT if rng.random() < 0.5 else RIGHT
        curb = road.curb(side)
        if rng.random() < 0.7:
            walk = abs(road.sidewalk_edge(side) - curb)
            s = curb + side * rng.uniform(0.4, max(walk - 0.3, 0.5))
        else:
            s = curb - side * rng.uniform(0.3, 0.8)
        items.append(
            Item(
                family,
                float(s),
                _distance_in_view(rng, s, camera_s, 4.0, 40.0),
                width,
                length,
                float(rng.uniform(low, high)),
                int(rng.integers(2**31)),
            )
        )
    return items


def sample_anomalies(rng: np.random.Generator, road: RoadLayout, camera_s: float) -> list[Item]:
    """1-3 anomalies, three quarters on the carriageway, the rest beside the curb."""
    items = []
    for _ in range(int(rng.integers(1, 4))):
        family = ANOMALY_FAMILIES[int(rng.integers(len(ANOMALY_FAMILIES)))]
        if rng.random() < 0.75:
            s = rng.uniform(road.curb(LEFT) + 0.5, road.curb(RIGHT) - 0.5)
        else:
            side = LEFT if rng.random() < 0.5 else RIGHT
            s = road.curb(side) + side * rng.uniform(-0.3, 1.5)
        size = float(rng.uniform(0.3, 1.2))
        if family == "debris_field":
            width, length, height = rng.uniform(1.0, 3.0), rng.uniform(1.0, 3.0), 0.3
        elif family == "animal":
            width, length, height = size * 1.4, 0.4, size
        else:
            width, length, height = size, 0.3, size
        items.append(
            Item(
                family,
                float(s),
                _distance_in_view(rng, s, camera_s, 5.0, 30.0),
                float(width),
                float(length),
                float(height),
                int(rng.integers(2**31)),
            )
        )
    return items


# Void objects --------------------------------------------------------------------------------


def _bounds(item: Item, y0: float = 0.0, y1: float | None = None) -> Bounds:
    """Box bounds of an item's footprint between heights y0 and y1 (default: its height)."""
    top = item.height if y1 is None else y1
    return (
        (item.s - item.width / 2, item.s + item.width / 2),
        (y0, top),
        (item.z, item.z + item.length),
    )


def _muted(rng: np.random.Generator, lighting: Lighting) -> tuple[float, float, float]:
    return object_colour(rng, _MUTED[int(rng.integers(len(_MUTED)))], lighting)


def draw_rubbish_bin(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Fixed litter bin: box with a darker rim."""
    rng = np.random.default_rng(item.seed)
    colour = _muted(rng, lighting)
    draw_box(canvas, view, lighting, _bounds(item), colour, STATIC)
    draw_box(
        canvas, view, lighting, _bounds(item, item.height - 0.08), np.asarray(colour) * 0.6, STATIC
    )


def draw_bollard(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Short post with a pale reflective band."""
    rng = np.random.default_rng(item.seed)
    draw_box(canvas, view, lighting, _bounds(item), materials.grey(rng, 30.0, 80.0), STATIC)
    band = item.height - 0.2
    draw_box(
        canvas, view, lighting, _bounds(item, band, band + 0.08), (210.0, 210.0, 200.0), STATIC
    )


def draw_utility_cabinet(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Electrical cabinet with door seams."""
    rng = np.random.default_rng(item.seed)
    colour = _muted(rng, lighting)
    faces = draw_box(canvas, view, lighting, _bounds(item), colour, STATIC)
    seams = np.array([[0.49, 0.51, 0.05, 0.95], [0.05, 0.95, 0.93, 0.95]])
    distance = view.distance(item.s, item.z)
    for face in faces:
        if face.normal in ("left", "right", "near"):
            polygons = view.polygons(sub_quads(face.corners, seams))
            canvas.fill(polygons, np.asarray(colour) * 0.55, STATIC, distance)


def draw_bench(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Wooden bench: two metal legs, seat and backrest."""
    rng = np.random.default_rng(item.seed)
    wood = object_colour(rng, _WOOD, lighting)
    metal = materials.grey(rng, 30.0, 70.0)
    (s0, s1), _, (z0, z1) = _bounds(item)
    outer = s1 if item.s > 0 else s0  # backrest on the side away from the road
    for z in (z0 + 0.1, z1 - 0.15):
        draw_box(canvas, view, lighting, ((s0, s1), (0.0, 0.45), (z, z + 0.05)), metal, STATIC)
    draw_box(canvas, view, lighting, ((s0, s1), (0.42, 0.48), (z0, z1)), wood, STATIC)
    draw_box(
        canvas,
        view,
        lighting,
        ((outer - 0.05, outer + 0.05), (0.5, item.height), (z0, z1)),
        wood,
        STATIC,
    )


def draw_wheelie_bin(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Wheeled refuse container: body, overhanging lid, two wheels."""
    rng = np.random.default_rng(item.seed)
    colour = _muted(rng, lighting)
    (s0, s1), _, (z0, z1) = _bounds(item)
    for s in (s0, s1 - 0.12):
        draw_box(
            canvas,
            view,
            lighting,
            ((s, s + 0.12), (0.0, 0.22), (z1 - 0.25, z1)),
            (25.0, 25.0, 25.0),
            DYNAMIC,
        )
    draw_box(
        canvas,
        view,
        lighting,
        ((s0 + 0.03, s1 - 0.03), (0.1, item.height - 0.07), (z0 + 0.03, z1 - 0.03)),
        colour,
        DYNAMIC,
    )
    draw_box(
        canvas,
        view,
        lighting,
        ((s0, s1), (item.height - 0.07, item.height), (z0, z1)),
        np.asarray(colour) * 0.8,
        DYNAMIC,
    )


def draw_crate_stack(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """One to three wooden crates with dark slat gaps."""
    rng = np.random.default_rng(item.seed)
    count = max(1, round(item.height / 0.55))
    size = item.height / count
    distance = view.distance(item.s, item.z)
    slats = np.array([[0.0, 1.0, 0.3, 0.36], [0.0, 1.0, 0.63, 0.69]])
    for level in range(count):
        shift = rng.uniform(-0.08, 0.08)
        wood = object_colour(rng, _WOOD, lighting)
        bounds = (
            (item.s - size / 2 + shift, item.s + size / 2 + shift),
            (level * size, (level + 1) * size),
            (item.z, item.z + size),
        )
        for face in draw_box(canvas, view, lighting, bounds, wood, DYNAMIC):
            polygons = view.polygons(sub_quads(face.corners, slats))
            canvas.fill(polygons, np.asarray(wood) * 0.45, DYNAMIC, distance)


def draw_handcart(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Hand truck: a metal box on two wheels with a push handle."""
    rng = np.random.default_rng(item.seed)
    colour = _muted(rng, lighting)
    (s0, s1), _, (z0, z1) = _bounds(item)
    for s in (s0, s1 - 0.1):
        draw_box(
            canvas,
            view,
            lighting,
            ((s, s + 0.1), (0.0, 0.35), (z0 + 0.3, z0 + 0.65)),
            (25.0, 25.0, 25.0),
            DYNAMIC,
        )
    draw_box(canvas, view, lighting, ((s0, s1), (0.3, 0.7), (z0, z1)), colour, DYNAMIC)
    handle = upright(rectangle(-item.width / 2, item.width / 2, 0.7, item.height), item.s, z1)
    hole = upright(
        rectangle(-item.width / 2 + 0.05, item.width / 2 - 0.05, 0.7, item.height - 0.05),
        item.s,
        z1,
    )
    canvas.fill(
        view.polygons(np.array([handle, hole])),
        materials.grey(rng, 60.0, 110.0),
        DYNAMIC,
        view.distance(item.s, z1),
    )


# Anomalies -----------------------------------------------------------------------------------


def _vivid_pair(rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Two clearly different saturated hues."""
    first = materials.vivid(rng)
    second = materials.vivid(rng)
    while np.abs(np.subtract(first, second)).sum() < 200:
        second = materials.vivid(rng)
    return [first, second]


def _pattern_scale(view: View, item: Item, metres: float) -> float:
    """Pixels covered by ``metres`` at the item's distance."""
    return max(view.pixels_per_metre(view.distance(item.s, item.z)) * metres, 2.0)


def draw_striped_blob(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Rounded irregular blob with saturated stripes."""
    rng = np.random.default_rng(item.seed)
    radius = item.height / 2
    outline = blob(rng, radius, 0.6, 24)
    outline[:, 1] = np.maximum(outline[:, 1], -radius)
    colours = _vivid_pair(rng) + ([materials.vivid(rng)] if rng.random() < 0.5 else [])
    period = _pattern_scale(view, item, rng.uniform(0.05, 0.15))
    angle = rng.uniform(0.0, np.pi)
    canvas.paint(
        view.polygons(upright(outline, item.s, item.z, radius)),
        lambda h, w: stripes((h, w), period, angle, colours),
        UNLABELED,
        view.distance(item.s, item.z),
    )


def draw_checker_shard(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Jagged angular shard standing on the ground, with a saturated checkerboard."""
    rng = np.random.default_rng(item.seed)
    count = int(rng.integers(5, 9))
    angle = np.sort(rng.uniform(0.0, 2 * np.pi, count))
    radii = item.height / 2 * rng.uniform(0.35, 1.0, count)
    outline = np.column_stack([radii * np.cos(angle), radii * np.sin(angle)])
    outline[:, 1] -= outline[:, 1].min()
    cell = _pattern_scale(view, item, rng.uniform(0.04, 0.12))
    tilt = rng.uniform(0.0, np.pi / 2)
    colours = _vivid_pair(rng)
    canvas.paint(
        view.polygons(upright(outline, item.s, item.z)),
        lambda h, w: checker((h, w), cell, tilt, colours),
        UNLABELED,
        view.distance(item.s, item.z),
    )


def _animal_outline(rng: np.random.Generator, length: float, height: float) -> list[np.ndarray]:
    """Side-view quadruped: body, neck and head, four legs, tail; metres from the feet."""
    direction = 1.0 if rng.random() < 0.5 else -1.0
    half = length / 2
    leg = height * rng.uniform(0.35, 0.5)
    body_height = height * 0.35
    body = ellipse(0.0, leg + body_height / 2, half * 0.75, body_height / 2, 16)
    head_x = direction * half * 0.85
    head = ellipse(head_x, height * 0.88, half * 0.22, height * 0.12, 12)
    neck = thick_segment(
        (direction * half * 0.55, leg + body_height * 0.6), (head_x, height * 0.85), height * 0.14
    )
    legs = [
        thick_segment(
            (x * half, leg + 0.1 * body_height),
            (x * half + rng.normal(0, 0.03), 0.0),
            height * 0.08,
        )
        for x in (-0.6, -0.45, 0.45, 0.6)
    ]
    tail = thick_segment(
        (-direction * half * 0.7, leg + body_height * 0.8),
        (-direction * half * 1.05, leg + body_height * 0.2),
        height * 0.05,
    )
    return [body, head, neck, tail, *legs]


def draw_animal(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Four-legged animal silhouette in a saturated colour with spots of another."""
    rng = np.random.default_rng(item.seed)
    parts = _animal_outline(rng, item.width, item.height)
    body, spots = _vivid_pair(rng)
    period = _pattern_scale(view, item, rng.uniform(0.08, 0.2))
    polygons = [p for part in parts for p in view.polygons(upright(part, item.s, item.z))]
    canvas.paint(
        polygons,
        lambda h, w: polka_dots((h, w), period, body, spots),
        UNLABELED,
        view.distance(item.s, item.z),
    )


def draw_debris_field(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Small jagged pieces scattered over the item's footprint, each with its own pattern."""
    rng = np.random.default_rng(item.seed)
    count = int(rng.integers(4, 10))
    offsets = np.column_stack(
        [rng.uniform(-item.width / 2, item.width / 2, count), rng.uniform(0.0, item.length, count)]
    )
    for ds, dz in offsets[np.argsort(-offsets[:, 1])]:
        radius = rng.uniform(0.08, 0.25)
        outline = blob(rng, radius, 1.2, 9)
        outline[:, 1] -= outline[:, 1].min()
        colours = _vivid_pair(rng)
        scale = _pattern_scale(view, item, rng.uniform(0.03, 0.08))
        polygons = view.polygons(upright(outline, item.s + ds, item.z + dz))
        if rng.random() < 0.5:
            canvas.paint(
                polygons,
                lambda h, w, c=colours, p=scale: polka_dots((h, w), p, *c),
                UNLABELED,
                view.distance(item.s + ds, item.z + dz),
            )
        else:
            canvas.paint(
                polygons,
                lambda h, w, c=colours, p=scale: stripes((h, w), p, 0.7, c),
                UNLABELED,
                view.distance(item.s + ds, item.z + dz),
            )


def draw_neon_ring(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Upright ring (a tyre's shape) painted with cycling rainbow hues."""
    rng = np.random.default_rng(item.seed)
    radius = item.height / 2
    inner = radius * rng.uniform(0.45, 0.7)
    squash = rng.uniform(0.5, 1.0)  # seen at an angle
    ring = [
        upright(ellipse(0.0, radius, radius * squash, radius, 24), item.s, item.z),
        upright(ellipse(0.0, radius, inner * squash, inner, 24), item.s, item.z),
    ]
    start = rng.uniform(0.0, 180.0)
    turns = int(rng.integers(1, 4))
    canvas.paint(
        view.polygons(np.array(ring)),
        lambda h, w: hue_wheel((h, w), start, turns),
        UNLABELED,
        view.distance(item.s, item.z),
    )


DRAWERS: dict[str, Drawer] = {
    "rubbish_bin": draw_rubbish_bin,
    "bollard": draw_bollard,
    "utility_cabinet": draw_utility_cabinet,
    "bench": draw_bench,
    "wheelie_bin": draw_wheelie_bin,
    "crate_stack": draw_crate_stack,
    "handcart": draw_handcart,
    "striped_blob": draw_striped_blob,
    "checker_shard": draw_checker_shard,
    "animal": draw_animal,
    "debris_field": draw_debris_field,
    "neon_ring": draw_neon_ring,
}
