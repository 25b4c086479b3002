"""Scene description: the random layout of one street, drawn from (seed, index) alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synboost_ros.data.world.appearance import Lighting, sample_camera, sample_lighting
from synboost_ros.data.world.camera import CameraParams
from synboost_ros.data.world.layout import LEFT, RIGHT, Item, RoadLayout
from synboost_ros.data.world.objects import sample_anomalies, sample_void_objects

_START_Z = -40.0  # the street begins behind the camera, for forward camera motion
_SEED_RANGE = 2**31
_VEHICLES = frozenset({"car", "truck", "bus", "tram", "cyclist", "motorcyclist"})


@dataclass(frozen=True)
class SceneParams:
    """Everything needed to render a scene; ``texture_seed`` drives the pixel-level noise."""

    seed: int
    index: int
    road: RoadLayout
    camera: CameraParams
    lighting: Lighting
    items: tuple[Item, ...]
    texture_seed: int


def sample_scene(seed: int, index: int, anomalies: bool = False) -> SceneParams:
    """Scene ``index`` of the world ``seed``.

    With ``anomalies`` the same street gains 1-3 anomalies and loses the vehicles that would
    stand on them or hide them from the camera. The layout depends on (seed, index) only, so
    it does not change with the number of scenes generated or the number of worker processes.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    rng = np.random.default_rng([seed, index, 0])
    road = _sample_road(rng)
    lane = int(rng.integers(road.lanes[1]))
    camera = sample_camera(rng, road.lane_centre(RIGHT, lane) + rng.normal(0.0, 0.2))
    lighting = sample_lighting(rng)
    items: list[Item] = []
    for side in (LEFT, RIGHT):
        items += _frontage(rng, road, side)
        items += _street_furniture(rng, road, side)
        items += _pedestrians(rng, road, side)
    items += _far_row(rng, road)
    items += _traffic(rng, road, camera.lane_offset)
    items += sample_void_objects(rng, road, camera.lane_offset)
    texture_seed = int(rng.integers(_SEED_RANGE))
    if anomalies:
        found = sample_anomalies(np.random.default_rng([seed, index, 1]), road, camera.lane_offset)
        items = _clear_view(items, found, camera.lane_offset) + found
    return SceneParams(seed, index, road, camera, lighting, tuple(items), texture_seed)


def _clear_view(items: list[Item], targets: list[Item], camera_s: float) -> list[Item]:
    """Drop vehicles standing on a target or between it and the camera (free road ahead of it)."""

    def blocks(vehicle: Item, target: Item) -> bool:
        if vehicle.z > target.z + target.length:
            return False
        middle = min(vehicle.z + vehicle.length / 2, target.z)
        sight = camera_s + (target.s - camera_s) * max(middle, 0.0) / max(target.z, 1e-3)
        return abs(vehicle.s - sight) < (vehicle.width + target.width) / 2 + 0.3

    return [
        item
        for item in items
        if item.kind not in _VEHICLES or not any(blocks(item, target) for target in targets)
    ]


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(_SEED_RANGE))


def _sample_road(rng: np.random.Generator) -> RoadLayout:
    """Street cross-section: 0-2 oncoming and 1-2 own lanes, parking, sidewalks, verges."""
    one_way = rng.random() < 0.2
    lanes = (0 if one_way else int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    frontage = (_frontage_kind(rng), _frontage_kind(rng))
    verge = (_verge_width(rng, frontage[0]), _verge_width(rng, frontage[1]))
    return RoadLayout(
        lane_width=float(rng.uniform(2.9, 3.6)),
        lanes=lanes,
        parking=(bool(rng.random() < 0.5), bool(rng.random() < 0.5)),
        sidewalk=(float(rng.uniform(1.8, 5.0)), float(rng.uniform(1.8, 5.0))),
        verge=verge,
        frontage=frontage,
        curvature=0.0 if rng.random() < 0.5 else float(rng.uniform(-0.0015, 0.0015)),
        crosswalk_z=float(rng.uniform(12.0, 45.0)) if rng.random() < 0.35 else None,
        end_z=float(rng.uniform(90.0, 220.0)),
        tram=bool(rng.random() < 0.1 and lanes[0] > 0),
        dashed_centre=bool(rng.random() < 0.6),
    )


def _frontage_kind(rng: np.random.Generator) -> str:
    """What lines one side of the street: mostly buildings, sometimes a park."""
    return "park" if rng.random() < 0.25 else "buildings"


def _verge_width(rng: np.random.Generator, frontage: str) -> float:
    """Grass strip behind the sidewalk: always before a park, sometimes before buildings."""
    return float(rng.uniform(2.0, 6.0)) if frontage == "park" or rng.random() < 0.2 else 0.0


def _frontage(rng: np.random.Generator, road: RoadLayout, side: int) -> list[Item]:
    """A row of buildings, or a park (trees, bushes and buildings set far back)."""
    line = road.frontage_line(side)
    if road.frontage[0 if side == LEFT else 1] == "park":
        items = _tree_row(
            rng,
            line + side * rng.uniform(1.0, 4.0),
            road.end_z,
            spacing=(5.0, 9.0),
            size=(1.5, 4.0),
        )
        if rng.random() < 0.6:
            items += _building_row(rng, line + side * rng.uniform(15.0, 30.0), road.end_z)
        return items
    return _building_row(rng, line, road.end_z)


def _building_row(rng: np.random.Generator, line: float, end_z: float) -> list[Item]:
    """Façades along ``line`` from behind the camera to the end of the street."""
    items = []
    z = _START_Z
    side = 1.0 if line > 0 else -1.0
    while z < end_z:
        length = float(rng.uniform(8.0, 30.0))
        setback = side * rng.uniform(0.0, 0.6) if rng.random() < 0.3 else 0.0
        items.append(
            Item(
                "building",
                float(line + setback),
                z,
                12.0,
                length,
                float(rng.uniform(8.0, 26.0)),
                _seed(rng),
            )
        )
        z += length + (float(rng.uniform(1.0, 6.0)) if rng.random() < 0.15 else 0.0)
    return items


def _tree_row(
    rng: np.random.Generator,
    s: float,
    end_z: float,
    spacing: tuple[float, float],
    size: tuple[float, float],
) -> list[Item]:
    """Trees along ``s`` with random spacing; crowns ``size`` metres in radius."""
    items = []
    z = _START_Z + rng.uniform(0.0, spacing[1])
    while z < end_z:
        radius = float(rng.uniform(*size))
        items.append(
            Item(
                "tree",
                float(s + rng.normal(0.0, 0.3)),
                float(z),
                2 * radius,
                0.4,
                float(rng.uniform(2.2, 3.2) * radius + 1.5),
                _seed(rng),
            )
        )
        z += rng.uniform(*spacing)
    return items


def _street_furniture(rng: np.random.Generator, road: RoadLayout, side: int) -> list[Item]:
    """Street lights, trees, signs, traffic lights, hedges, walls and fences on one side."""
    curb = road.curb(side)
    walk_edge = road.sidewalk_edge(side)
    items: list[Item] = []
    z = _START_Z + rng.uniform(0.0, 30.0)
    spacing = rng.uniform(18.0, 35.0)
    while z < road.end_z:
        items.append(
            Item(
                "lamp_post",
                curb + side * 0.5,
                float(z),
                0.18,
                0.18,
                float(rng.uniform(6.0, 9.0)),
                _seed(rng),
            )
        )
        z += spacing
    if rng.random() < 0.5:
        items += _tree_row(
            rng,
            curb + side * rng.uniform(0.8, 1.4),
            road.end_z * 0.7,
            spacing=(7.0, 14.0),
            size=(1.2, 2.8),
        )
    for _ in range(int(rng.integers(0, 3))):
        items.append(
            Item(
                "sign_post",
                curb + side * rng.uniform(0.3, 0.8),
                float(rng.uniform(5.0, 70.0)),
                float(rng.uniform(0.6, 0.9)),
                0.08,
                float(rng.uniform(2.4, 3.4)),
                _seed(rng),
            )
        )
    if road.crosswalk_z is not None:
        items.append(
            Item(
                "traffic_light",
                curb + side * 0.4,
                road.crosswalk_z - 1.0,
                0.3,
                0.3,
                float(rng.uniform(3.0, 5.5)),
                _seed(rng),
            )
        )
    edge_kind = rng.choice(["none", "hedge", "wall", "fence"], p=[0.4, 0.2, 0.2, 0.2])
    if edge_kind != "none":
        items += _edge_run(rng, str(edge_kind), walk_edge + side * 0.2, road.end_z * 0.6)
    if rng.random() < 0.3:
        items += [
            Item(
                "bicycle",
                float(walk_edge - side * rng.uniform(0.5, 1.0)),
                float(rng.uniform(5.0, 50.0)),
                0.5,
                1.75,
                1.0,
                _seed(rng),
            )
            for _ in range(int(rng.integers(1, 4)))
        ]
    return items


def _edge_run(rng: np.random.Generator, kind: str, s: float, end_z: float) -> list[Item]:
    """A hedge, wall or fence along the back of the sidewalk, in short segments for depth order."""
    start = float(rng.uniform(_START_Z, end_z / 2))
    stop = float(rng.uniform(start + 10.0, end_z))
    height = float(rng.uniform(0.6, 1.8))
    width = 0.05 if kind == "fence" else float(rng.uniform(0.25, 0.8))
    seed = _seed(rng)
    segment = 3.0
    return [
        Item(kind, s, z, width, segment, height, seed)
        for z in np.arange(start, stop, segment).tolist()
    ]


def _pedestrians(rng: np.random.Generator, road: RoadLayout, side: int) -> list[Item]:
    """People on the sidewalk, and some crossing at the zebra."""
    curb = road.curb(side)
    walk = abs(road.sidewalk_edge(side) - curb)
    items = [
        Item(
            "person",
            float(curb + side * rng.uniform(0.4, walk - 0.3)),
            float(rng.uniform(4.0, 60.0)),
            0.5,
            0.3,
            float(rng.uniform(1.5, 1.95)),
            _seed(rng),
        )
        for _ in range(int(rng.poisson(2.5)))
    ]
    if road.crosswalk_z is not None and side == RIGHT:
        items += [
            Item(
                "person",
                float(rng.uniform(road.curb(LEFT), road.curb(RIGHT))),
                float(road.crosswalk_z + rng.uniform(0.5, 3.5)),
                0.5,
                0.3,
                float(rng.uniform(1.5, 1.95)),
                _seed(rng),
            )
            for _ in range(int(rng.integers(0, 4)))
        ]
    return items


def _far_row(rng: np.random.Generator, road: RoadLayout) -> list[Item]:
    """Buildings and trees across the end of the street, closing the view."""
    items = []
    s = -80.0
    gap = rng.random() < 0.5  # the road continues through the row
    while s < 80.0:
        width = float(rng.uniform(10.0, 25.0))
        centre = s + width / 2
        through_road = road.curb(LEFT) - 5.0 < centre < road.curb(RIGHT) + 5.0
        if not (gap and through_road):
            if rng.random() < 0.75:
                items.append(
                    Item(
                        "building",
                        centre,
                        road.end_z,
                        width,
                        15.0,
                        float(rng.uniform(8.0, 30.0)),
                        _seed(rng),
                    )
                )
            else:
                items.append(
                    Item(
                        "tree",
                        centre,
                        road.end_z,
                        width * 0.6,
                        0.5,
                        float(rng.uniform(8.0, 14.0)),
                        _seed(rng),
                    )
                )
        s += width
    return items


def _traffic(rng: np.random.Generator, road: RoadLayout, camera_s: float) -> list[Item]:
    """Parked cars, moving vehicles in every lane, a tram on its rails, cyclists."""
    items: list[Item] = []
    for side in (LEFT, RIGHT):
        index = 0 if side == LEFT else 1
        if road.parking[index]:
            items += _vehicle_queue(
                rng,
                road.curb(side) - side * 1.15,
                side,
                (2.0, 60.0),
                gap=(0.6, 4.0),
                cars_only=True,
            )
        for lane in range(road.lanes[index]):
            s = road.lane_centre(side, lane)
            ahead = 7.0 if abs(s - camera_s) < road.lane_width / 2 else 0.0
            items += _vehicle_queue(
                rng,
                s,
                side,
                (ahead + rng.uniform(0.0, 25.0), 110.0),
                gap=(4.0, 30.0),
                cars_only=False,
            )
    if road.tram and rng.random() < 0.6:
        items.append(
            Item(
                "tram",
                road.lane_centre(RIGHT, 0),
                float(rng.uniform(15.0, 60.0)),
                2.4,
                float(rng.uniform(18.0, 30.0)),
                3.6,
                _seed(rng),
                facing=1,
            )
        )
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.4 else 0):
        kind = "cyclist" if rng.random() < 0.7 else "motorcyclist"
        s = road.curb(RIGHT if rng.random() < 0.7 else LEFT)
        items.append(
            Item(
                kind,
                float(s - np.sign(s) * rng.uniform(0.6, 1.5)),
                float(rng.uniform(6.0, 50.0)),
                0.6,
                1.8,
                float(rng.uniform(1.6, 1.9)),
                _seed(rng),
            )
        )
    return items


def _vehicle_queue(
    rng: np.random.Generator,
    s: float,
    facing: int,
    z_range: tuple[float, float],
    gap: tuple[float, float],
    cars_only: bool,
) -> list[Item]:
    """Vehicles one behind the other along lane ``s``."""
    items = []
    z = z_range[0]
    while z < z_range[1]:
        kind = "car"
        if not cars_only:
            kind = str(rng.choice(["car", "truck", "bus"], p=[0.93, 0.04, 0.03]))
        width, length, height = {
            "car": (rng.uniform(1.65, 1.95), rng.uniform(3.8, 4.9), rng.uniform(1.4, 1.65)),
            "truck": (2.45, rng.uniform(7.0, 10.0), rng.uniform(3.2, 3.9)),
            "bus": (2.55, rng.uniform(10.5, 12.5), rng.uniform(3.0, 3.3)),
        }[kind]
        if rng.random() < 0.8:
            items.append(
                Item(
                    kind,
                    float(s + rng.normal(0.0, 0.15)),
                    float(z),
                    float(width),
                    float(length),
                    float(height),
                    _seed(rng),
                    facing=facing,
                )
            )
        z += length + rng.uniform(*gap)
    return items
