"""Drawers of road users: cars, trucks, buses, trams, two-wheelers and pedestrians."""

from __future__ import annotations

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
    lying,
    rectangle,
    sub_quads,
    thick_segment,
    upright,
)
from synboost_ros.data.world.street import Drawer

_TYRE = (22.0, 22.0, 24.0)
_UNDERBODY = (30.0, 30.0, 32.0)
_TAIL = (200.0, 25.0, 25.0)
_HEAD = (235.0, 235.0, 215.0)


def _span(item: Item) -> tuple[tuple[float, float], tuple[float, float]]:
    """Lateral and longitudinal extent of an item's footprint."""
    return (item.s - item.width / 2, item.s + item.width / 2), (item.z, item.z + item.length)


def _ground_shadow(canvas: Canvas, view: View, item: Item) -> None:
    """Dark patch under a vehicle."""
    (s0, s1), (z0, z1) = _span(item)
    patch = lying(rectangle(s0 - 0.15, s1 + 0.15, z0 - 0.2, z1 + 0.1), 0.0, 0.0, 0.01)
    canvas.darken(view.polygons(patch), 0.5)


def _vehicle_base(
    canvas: Canvas, view: View, item: Item, lighting: Lighting, label: int, instance: int
) -> None:
    """Shadow, dark underbody and the wheels seen below the body."""
    _ground_shadow(canvas, view, item)
    (s0, s1), (z0, z1) = _span(item)
    draw_box(
        canvas,
        view,
        lighting,
        ((s0 + 0.1, s1 - 0.1), (0.0, 0.45), (z0 + 0.3, z1 - 0.3)),
        _UNDERBODY,
        label,
        instance,
    )
    for wheel_z in (z0 + 0.55, z1 - 0.95):
        for wheel_s in (s0 + 0.05, s1 - 0.3):
            draw_box(
                canvas,
                view,
                lighting,
                ((wheel_s, wheel_s + 0.25), (0.0, 0.62), (wheel_z, wheel_z + 0.4)),
                _TYRE,
                label,
                instance,
            )


def _glass(
    canvas: Canvas,
    view: View,
    faces: list[Face],
    boxes: dict[str, np.ndarray],
    colour: tuple[float, float, float],
    label: int,
    distance: float,
    instance: int,
) -> None:
    """Windows on the visible faces; ``boxes`` maps a face normal to (N, 4) face-unit boxes."""
    for face in faces:
        if face.normal in boxes:
            polygons = view.polygons(sub_quads(face.corners, boxes[face.normal]))
            canvas.fill(polygons, colour, label, distance, instance)


def _end_details(
    canvas: Canvas,
    view: View,
    faces: list[Face],
    item: Item,
    label: int,
    distance: float,
    instance: int,
) -> None:
    """Lamps and number plate on the end of the body that faces the camera."""
    lamp = _TAIL if item.facing > 0 else _HEAD
    lamps = np.array([[0.04, 0.2, 0.55, 0.8], [0.8, 0.96, 0.55, 0.8]])
    plate = np.array([[0.38, 0.62, 0.15, 0.35]])
    for face in faces:
        if face.normal in ("near", "far"):
            canvas.fill(
                view.polygons(sub_quads(face.corners, lamps)), lamp, label, distance, instance
            )
            canvas.fill(
                view.polygons(sub_quads(face.corners, plate)),
                (225.0, 225.0, 220.0),
                label,
                distance,
                instance,
            )


def draw_car(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Passenger car: body box, narrower cabin with windows, wheels and lamps."""
    rng = np.random.default_rng(item.seed)
    label = LABEL["car"]
    instance = canvas.new_instance(label)
    paint = object_colour(rng, materials.car_paint(rng), lighting)
    _vehicle_base(canvas, view, item, lighting, label, instance)
    (s0, s1), (z0, z1) = _span(item)
    belt = rng.uniform(0.85, 1.05)
    distance = view.distance(item.s, max(z0, view.camera_z))
    body = draw_box(
        canvas, view, lighting, ((s0, s1), (0.3, belt), (z0, z1)), paint, label, instance
    )
    _end_details(canvas, view, body, item, label, distance, instance)
    length = z1 - z0
    rear, front = 0.18 * length, 0.28 * length
    cabin_z = (z0 + rear, z1 - front) if item.facing > 0 else (z0 + front, z1 - rear)
    cabin = draw_box(
        canvas,
        view,
        lighting,
        ((s0 + 0.1, s1 - 0.1), (belt, item.height), cabin_z),
        paint,
        label,
        instance,
    )
    glass = materials.glass(rng)
    windows = {
        "near": np.array([[0.06, 0.94, 0.08, 0.85]]),
        "far": np.array([[0.06, 0.94, 0.08, 0.85]]),
        "left": np.array([[0.04, 0.47, 0.1, 0.85], [0.53, 0.96, 0.1, 0.85]]),
        "right": np.array([[0.04, 0.47, 0.1, 0.85], [0.53, 0.96, 0.1, 0.85]]),
    }
    _glass(canvas, view, cabin, windows, glass, label, distance, instance)


def draw_truck(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Lorry: a tall cargo box and a cab with a windscreen."""
    rng = np.random.default_rng(item.seed)
    label = LABEL["truck"]
    instance = canvas.new_instance(label)
    _vehicle_base(canvas, view, item, lighting, label, instance)
    (s0, s1), (z0, z1) = _span(item)
    cab_length = 2.2
    cab_z = (z1 - cab_length, z1) if item.facing > 0 else (z0, z0 + cab_length)
    cargo_z = (z0, z1 - cab_length - 0.2) if item.facing > 0 else (z0 + cab_length + 0.2, z1)
    distance = view.distance(item.s, max(z0, view.camera_z))
    cab_colour = object_colour(rng, materials.truck_paint(rng), lighting)
    cargo_colour = object_colour(rng, materials.truck_paint(rng), lighting)
    cab = draw_box(
        canvas,
        view,
        lighting,
        ((s0 + 0.05, s1 - 0.05), (0.5, 2.9), cab_z),
        cab_colour,
        label,
        instance,
    )
    windscreen = {
        "near": np.array([[0.08, 0.92, 0.55, 0.9]]),
        "left": np.array([[0.55, 0.95, 0.55, 0.9]]),
        "right": np.array([[0.55, 0.95, 0.55, 0.9]]),
    }
    if item.facing < 0:
        _glass(canvas, view, cab, windscreen, materials.glass(rng), label, distance, instance)
    cargo = draw_box(
        canvas,
        view,
        lighting,
        ((s0, s1), (0.6, item.height), cargo_z),
        cargo_colour,
        label,
        instance,
    )
    seam = np.array([[0.495, 0.505, 0.03, 0.97]])
    _glass(canvas, view, cargo, {"near": seam}, (60.0, 60.0, 60.0), label, distance, instance)
    _end_details(canvas, view, cargo if item.facing > 0 else cab, item, label, distance, instance)


def draw_bus(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """City bus: long tall box with a continuous window band and a destination display."""
    rng = np.random.default_rng(item.seed)
    label = LABEL["bus"]
    instance = canvas.new_instance(label)
    _vehicle_base(canvas, view, item, lighting, label, instance)
    (s0, s1), (z0, z1) = _span(item)
    distance = view.distance(item.s, max(z0, view.camera_z))
    paint = object_colour(rng, materials.bus_paint(rng), lighting)
    faces = draw_box(
        canvas, view, lighting, ((s0, s1), (0.35, item.height), (z0, z1)), paint, label, instance
    )
    band = (1.1 / item.height, 2.6 / item.height)
    count = 5
    panes = np.array([[(k + 0.06) / count, (k + 0.94) / count, *band] for k in range(count)])
    windows = {
        "left": panes,
        "right": panes,
        "near": np.array([[0.05, 0.95, band[0], band[1] + 0.05]]),
    }
    _glass(canvas, view, faces, windows, materials.glass(rng), label, distance, instance)
    if item.facing < 0:
        display = {"near": np.array([[0.2, 0.8, 0.9, 0.97]])}
        _glass(canvas, view, faces, display, (240.0, 170.0, 40.0), label, distance, instance)
    _end_details(canvas, view, faces, item, label, distance, instance)


def draw_tram(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Tram (Cityscapes 'train'): long articulated box, window band and a pantograph."""
    rng = np.random.default_rng(item.seed)
    label = LABEL["train"]
    instance = canvas.new_instance(label)
    _ground_shadow(canvas, view, item)
    (s0, s1), (z0, z1) = _span(item)
    distance = view.distance(item.s, max(z0, view.camera_z))
    paint = object_colour(rng, materials.tram_paint(rng), lighting)
    faces = draw_box(
        canvas,
        view,
        lighting,
        ((s0, s1), (0.25, item.height - 0.4), (z0, z1)),
        paint,
        label,
        instance,
    )
    skirt = {normal: np.array([[0.0, 1.0, 0.0, 0.12]]) for normal in ("left", "right", "near")}
    _glass(canvas, view, faces, skirt, (45.0, 45.0, 48.0), label, distance, instance)
    sections = int(item.length / 2.0)
    panes = np.array(
        [[(k + 0.08) / sections, (k + 0.92) / sections, 0.35, 0.82] for k in range(sections)]
    )
    windows = {"left": panes, "right": panes, "near": np.array([[0.08, 0.92, 0.4, 0.88]])}
    _glass(canvas, view, faces, windows, materials.glass(rng), label, distance, instance)
    _end_details(canvas, view, faces, item, label, distance, instance)
    mast_z = z0 + item.length * 0.4
    top = item.height - 0.4
    bars = [
        upright(thick_segment((-0.4, 0.0), (0.0, 0.38), 0.05), item.s, mast_z, top),
        upright(thick_segment((0.4, 0.0), (0.0, 0.38), 0.05), item.s, mast_z, top),
        upright(rectangle(-0.6, 0.6, 0.36, 0.4), item.s, mast_z, top),
    ]
    canvas.fill(view.polygons(np.array(bars)), (40.0, 40.0, 40.0), label, distance, instance)


def _person_parts(
    rng: np.random.Generator, height: float
) -> list[tuple[np.ndarray, tuple[float, float, float]]]:
    """Front-view figure: legs, torso, arms, head, hair; outlines in metres from the feet."""
    top = materials.clothing(rng)
    legs = materials.trousers(rng)
    skin = materials.skin(rng)
    hair = materials.grey(rng, 20.0, 120.0, 0.2)
    h = height
    slim = rng.uniform(0.75, 1.1)  # narrower when seen more from the side
    stance = rng.uniform(0.02, 0.1) * h
    shoulder, hip, waist = 0.13 * h * slim, 0.09 * h * slim, 0.52 * h
    parts = [
        (thick_segment((-0.05 * h, waist), (-stance, 0.0), 0.075 * h), legs),
        (thick_segment((0.05 * h, waist), (stance, 0.0), 0.075 * h), legs),
        (
            np.array(
                [
                    [-hip, waist - 0.03 * h],
                    [hip, waist - 0.03 * h],
                    [shoulder, 0.82 * h],
                    [-shoulder, 0.82 * h],
                ]
            ),
            top,
        ),
        (thick_segment((-shoulder, 0.8 * h), (-shoulder - 0.03 * h, 0.5 * h), 0.055 * h), top),
        (thick_segment((shoulder, 0.8 * h), (shoulder + 0.03 * h, 0.5 * h), 0.055 * h), top),
        (ellipse(0.0, 0.925 * h, 0.055 * h, 0.07 * h, 12), skin),
        (ellipse(0.0, 0.95 * h, 0.058 * h, 0.05 * h, 12), hair),
    ]
    if rng.random() < 0.2:  # skirt or long coat
        parts.insert(
            2,
            (
                np.array(
                    [
                        [-0.12 * h * slim, 0.3 * h],
                        [0.12 * h * slim, 0.3 * h],
                        [hip, waist],
                        [-hip, waist],
                    ]
                ),
                legs,
            ),
        )
    return parts


def _rider_parts(
    rng: np.random.Generator, height: float, seat: float, bars: float
) -> list[tuple[np.ndarray, tuple[float, float, float]]]:
    """Side-view seated figure; ``seat`` is the saddle height, ``bars`` the hand reach (signed)."""
    top = materials.clothing(rng)
    legs = materials.trousers(rng)
    skin = materials.skin(rng)
    helmet = materials.jitter(rng, (60.0, 60.0, 65.0), 0.6) if rng.random() < 0.6 else None
    h = height
    direction = np.sign(bars)
    shoulder = (0.25 * bars, seat + 0.33 * h)
    knee = (0.45 * bars, seat + 0.05 * h)
    parts = [
        (thick_segment((0.0, seat), knee, 0.09 * h), legs),
        (thick_segment(knee, (0.4 * bars, seat - 0.25 * h), 0.07 * h), legs),
        (thick_segment((0.0, seat + 0.02 * h), shoulder, 0.16 * h), top),
        (thick_segment(shoulder, (bars, seat + 0.2 * h), 0.05 * h), top),
        (
            ellipse(
                shoulder[0] + 0.02 * h * direction, shoulder[1] + 0.1 * h, 0.055 * h, 0.065 * h, 12
            ),
            skin,
        ),
    ]
    if helmet is not None:
        parts.append(
            (ellipse(shoulder[0], shoulder[1] + 0.125 * h, 0.065 * h, 0.045 * h, 12), helmet)
        )
    return parts


def draw_person(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Pedestrian facing towards or away from the camera."""
    rng = np.random.default_rng(item.seed)
    label = LABEL["person"]
    instance = canvas.new_instance(label)
    distance = view.distance(item.s, item.z)
    shadow = lying(ellipse(0.0, 0.0, 0.35, 0.25), item.s, item.z, 0.01)
    canvas.darken(view.polygons(shadow), 0.7)
    for outline, colour in _person_parts(rng, item.height):
        shade = object_colour(rng, colour, lighting)
        canvas.fill(
            view.polygons(upright(outline, item.s, item.z)), shade, label, distance, instance
        )


def _two_wheeler_geometry(
    item: Item, rng: np.random.Generator, radius: float
) -> tuple[list[tuple[float, float]], tuple[float, float], tuple[float, float]]:
    """Side-view wheel centres, saddle and handlebar points (metres; random riding direction)."""
    direction = 1.0 if rng.random() < 0.5 else -1.0
    half = item.length / 2 - radius
    wheels = [(-half * direction, radius), (half * direction, radius)]
    seat = (0.0, 2.2 * radius + 0.1)
    bars = (0.75 * half * direction, 2.4 * radius + 0.15)
    return wheels, seat, bars


def _draw_motorcycle(
    canvas: Canvas, view: View, item: Item, rng: np.random.Generator, instance: int
) -> tuple[float, float]:
    """Motorcycle: filled body and heavy wheels; returns saddle height and bar reach."""
    label = LABEL["motorcycle"]
    radius = 0.31
    wheels, seat, bars = _two_wheeler_geometry(item, rng, radius)
    distance = view.distance(item.s, item.z)
    body = np.array(
        [
            [wheels[0][0] * 0.7, radius * 1.3],
            [wheels[1][0] * 0.6, radius * 1.2],
            [bars[0], bars[1] - 0.1],
            seat,
            [wheels[0][0] * 0.8, seat[1] - 0.05],
        ]
    )
    paint = materials.car_paint(rng)
    canvas.fill(view.polygons(upright(body, item.s, item.z)), paint, label, distance, instance)
    for centre_x, centre_y in wheels:
        for scale, colour in ((1.0, _TYRE), (0.45, (140.0, 140.0, 145.0))):
            disc = ellipse(centre_x, centre_y, radius * scale, radius * scale, 16)
            canvas.fill(
                view.polygons(upright(disc, item.s, item.z)), colour, label, distance, instance
            )
    return seat[1], bars[0]


def _draw_bicycle(
    canvas: Canvas, view: View, item: Item, rng: np.random.Generator, instance: int
) -> tuple[float, float]:
    """Bicycle: thin rims and frame tubes; returns saddle height and bar reach."""
    label = LABEL["bicycle"]
    radius = 0.34
    wheels, seat, bars = _two_wheeler_geometry(item, rng, radius)
    distance = view.distance(item.s, item.z)
    thickness = max(1, round(0.04 * view.pixels_per_metre(distance)))
    rims = [ellipse(x, y, radius, radius, 20) for x, y in wheels]
    rims = [np.vstack([rim, rim[:1]]) for rim in rims]  # closed outlines
    bracket = (0.0, radius)
    tubes = [
        np.array([wheels[0], bracket, seat, wheels[0]]),
        np.array([bracket, bars, wheels[1]]),
        np.array([seat, (bars[0] * 0.8, seat[1])]),
    ]

    def lines(outlines: list[np.ndarray]) -> list[np.ndarray]:
        return [p for o in outlines for p in view.polygons(upright(o, item.s, item.z))]

    canvas.lines(lines(rims), _TYRE, thickness, label, distance, instance)
    canvas.lines(lines(tubes), materials.car_paint(rng), thickness, label, distance, instance)
    return seat[1], bars[0]


def _draw_two_wheeler(
    canvas: Canvas, view: View, item: Item, lighting: Lighting, vehicle: str, ridden: bool
) -> None:
    """Bicycle or motorcycle in side view, with its rider when ``ridden``."""
    rng = np.random.default_rng(item.seed)
    instance = canvas.new_instance(LABEL[vehicle])
    shadow = lying(ellipse(0.0, 0.0, item.length / 2, 0.3), item.s, item.z, 0.01)
    canvas.darken(view.polygons(shadow), 0.7)
    draw = _draw_bicycle if vehicle == "bicycle" else _draw_motorcycle
    seat, bars = draw(canvas, view, item, rng, instance)
    if not ridden:
        return
    rider = LABEL["rider"]
    rider_instance = canvas.new_instance(rider)
    distance = view.distance(item.s, item.z)
    for outline, colour in _rider_parts(rng, item.height, seat, bars):
        shade = object_colour(rng, colour, lighting)
        points = upright(outline, item.s, item.z - 0.05)
        canvas.fill(view.polygons(points), shade, rider, distance, rider_instance)


def draw_cyclist(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Rider on a bicycle."""
    _draw_two_wheeler(canvas, view, item, lighting, "bicycle", ridden=True)


def draw_motorcyclist(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Rider on a motorcycle."""
    _draw_two_wheeler(canvas, view, item, lighting, "motorcycle", ridden=True)


def draw_parked_bicycle(canvas: Canvas, view: View, item: Item, lighting: Lighting) -> None:
    """Bicycle without a rider."""
    _draw_two_wheeler(canvas, view, item, lighting, "bicycle", ridden=False)


DRAWERS: dict[str, Drawer] = {
    "car": draw_car,
    "truck": draw_truck,
    "bus": draw_bus,
    "tram": draw_tram,
    "person": draw_person,
    "cyclist": draw_cyclist,
    "motorcyclist": draw_motorcyclist,
    "bicycle": draw_parked_bicycle,
}
