"""Sky and road plane, shaded per pixel from each ray's hit point in road coordinates."""

from __future__ import annotations

import numpy as np

from synboost_ros.data.world import materials
from synboost_ros.data.world.appearance import Lighting, sky_colours
from synboost_ros.data.world.camera import GroundRays, View
from synboost_ros.data.world.canvas import Canvas
from synboost_ros.data.world.labels import LABEL
from synboost_ros.data.world.layout import LEFT, RIGHT, RoadLayout
from synboost_ros.data.world.textures import noise_field

ROAD, SIDEWALK, TERRAIN, SKY = (LABEL[name] for name in ("road", "sidewalk", "terrain", "sky"))
_CURB_WIDTH = 0.25
_CENTRE_LINE_WIDTH = 0.15
_LINE_WIDTH = 0.12
_DASH, _GAP = 3.0, 6.0


def draw_sky(
    canvas: Canvas, rays: GroundRays, lighting: Lighting, rng: np.random.Generator
) -> None:
    """Gradient sky with soft clouds over every pixel above the horizon."""
    horizon, zenith = (np.asarray(c, dtype=np.float32) for c in sky_colours(lighting))
    height = np.clip(rays.elevation / 0.35, 0.0, 1.0)[..., None] ** 0.7
    sky = (1.0 - height) * horizon + height * zenith
    clouds = np.clip(noise_field(rng, canvas.size, canvas.size[1] / 6.0) * 1.5 - 0.2, 0.0, 1.0)
    cover = (clouds * rng.uniform(0.2, 0.8))[..., None]
    sky = (1.0 - cover) * sky + cover * np.float32(235.0)
    above = ~rays.ground
    canvas.image[above] = sky[above]
    canvas.label_ids[above] = SKY
    canvas.instance_ids[above] = SKY


def draw_ground(
    canvas: Canvas, view: View, rays: GroundRays, road: RoadLayout, rng: np.random.Generator
) -> None:
    """Road with markings, curbs, sidewalks and grass verges on every pixel below the horizon."""
    ground = rays.ground
    s, z, distance = rays.s[ground], rays.z[ground], rays.distance[ground]
    footprint = np.maximum(distance / view.focal, 1e-3)  # metres across one pixel
    depth_footprint = footprint * distance / view.camera_y  # metres along the road per pixel
    labels, colours = _surface(road, s, rng)
    shade = 1.0 + 0.08 * noise_field(rng, canvas.size, 12.0)[ground]
    shade += rng.normal(0.0, 0.03, shade.shape).astype(np.float32)
    colours *= shade[:, None]
    paint = _markings(road, s, z, footprint, depth_footprint) * (labels == ROAD)
    colours += paint[:, None] * (np.float32(225.0) - colours)
    colours *= _rails(road, s, footprint)[:, None]
    sidewalk = labels == SIDEWALK
    colours[sidewalk] *= _paving_joints(s[sidewalk], z[sidewalk], footprint[sidewalk])[:, None]
    canvas.image[ground] = _hazed(canvas, colours, distance)
    canvas.label_ids[ground] = labels
    canvas.instance_ids[ground] = labels


def _hazed(canvas: Canvas, colours: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Per-pixel version of ``Canvas.hazed`` for (N, 3) colours at (N,) distances."""
    amount = (1.0 - np.exp(-distance / canvas.haze_distance))[:, None]
    return (1.0 - amount) * colours + amount * canvas.haze_colour


def _surface(
    road: RoadLayout, s: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Label and base colour of every ground hit from its lateral position."""
    labels = np.full(s.shape, TERRAIN, dtype=np.uint8)
    colours = np.empty((len(s), 3), dtype=np.float32)
    asphalt, curb = materials.asphalt(rng), materials.grey(rng, 150.0, 190.0)
    colours[:] = materials.grass(rng)
    for side in (LEFT, RIGHT):
        offset = side * s  # distance outwards from the centre line on this side
        walk = (offset > side * road.curb(side)) & (offset <= side * road.sidewalk_edge(side))
        behind = offset > side * road.frontage_line(side)
        outer_paving = behind & (road.frontage[0 if side == LEFT else 1] == "buildings")
        paving = materials.paving(rng)
        labels[walk | outer_paving] = SIDEWALK
        colours[walk | outer_paving] = paving
        curb_band = walk & (offset <= side * road.curb(side) + _CURB_WIDTH)
        colours[curb_band] = curb
    on_road = (s >= road.curb(LEFT)) & (s <= road.curb(RIGHT))
    labels[on_road] = ROAD
    colours[on_road] = asphalt
    return labels, colours


def _line(offset: np.ndarray, width: float, footprint: np.ndarray) -> np.ndarray:
    """Coverage (0..1) of a line ``width`` wide centred at ``offset = 0``, anti-aliased."""
    half = np.maximum(width, footprint) / 2.0
    inside = np.abs(offset) <= half
    return inside * np.clip(width / footprint, 0.0, 1.0)


def _markings(
    road: RoadLayout,
    s: np.ndarray,
    z: np.ndarray,
    footprint: np.ndarray,
    depth_footprint: np.ndarray,
) -> np.ndarray:
    """Paint coverage of lane lines, edge lines and the zebra crossing."""
    paint = np.zeros(s.shape, dtype=np.float32)
    dash = (np.mod(z, _DASH + _GAP) < _DASH).astype(np.float32)
    resolved = np.clip(1.5 / depth_footprint, 0.0, 1.0)  # dashes blur into grey far away
    dash = resolved * dash + (1.0 - resolved) * _DASH / (_DASH + _GAP)
    if road.lanes[0] > 0:
        centre = _line(s, _CENTRE_LINE_WIDTH, footprint)
        paint = np.maximum(paint, centre * (dash if road.dashed_centre else 1.0))
    for side in (LEFT, RIGHT):
        for lane in range(1, road.lanes[0 if side == LEFT else 1]):
            paint = np.maximum(
                paint, _line(s - side * lane * road.lane_width, _LINE_WIDTH, footprint) * dash
            )
        index = 0 if side == LEFT else 1
        inset = 0.0 if road.parking[index] else 0.3
        edge = side * (road.lanes[index] * road.lane_width - inset)
        paint = np.maximum(paint, _line(s - edge, _LINE_WIDTH, footprint))
    if road.crosswalk_z is not None:
        across = (z >= road.crosswalk_z) & (z <= road.crosswalk_z + 4.0)
        stripes = np.mod(s, 1.0) < 0.5
        fade = np.clip(0.5 / footprint, 0.0, 1.0)
        paint = np.maximum(paint, across * (stripes * fade + (1 - fade) * 0.5))
    return paint * 0.85


def _rails(road: RoadLayout, s: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Brightness factor drawing two pairs of dark tram rail grooves."""
    if not road.tram:
        return np.ones(s.shape, dtype=np.float32)
    centre = road.lane_centre(RIGHT, 0)
    grooves = np.zeros(s.shape, dtype=np.float32)
    for rail in (-0.72, 0.72):
        grooves = np.maximum(grooves, _line(s - centre - rail, 0.1, footprint))
    return 1.0 - 0.45 * grooves


def _paving_joints(s: np.ndarray, z: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Brightness factor drawing the joints of square paving slabs, fading with distance."""
    slab = 0.6
    joints = np.maximum(
        _line(np.mod(s + slab / 2, slab) - slab / 2, 0.03, footprint),
        _line(np.mod(z + slab / 2, slab) - slab / 2, 0.03, footprint),
    )
    return 1.0 - 0.18 * joints
