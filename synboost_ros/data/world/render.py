"""Render a scene description into an RGB image, Cityscapes labelIds and instance ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synboost_ros.classes import IGNORE_ID, label_ids_to_train_ids
from synboost_ros.data.world import agents, objects, street
from synboost_ros.data.world.appearance import finish, sky_colours
from synboost_ros.data.world.camera import View
from synboost_ros.data.world.canvas import Canvas
from synboost_ros.data.world.ground import draw_ground, draw_sky
from synboost_ros.data.world.labels import DYNAMIC, STATIC, UNLABELED
from synboost_ros.data.world.layout import Item
from synboost_ros.data.world.scene import SceneParams

DRAWERS = {**street.DRAWERS, **agents.DRAWERS, **objects.DRAWERS}
MIN_SIDE = 8  # pixels: the smallest image height and width drawn


@dataclass(frozen=True)
class RenderedScene:
    """One rendered frame and its ground truth."""

    image: np.ndarray  # RGB uint8 HxWx3
    label_ids: np.ndarray  # Cityscapes labelIds uint8 HxW (0 = anomaly, 4/5 = void objects)
    instance_ids: np.ndarray  # int32 HxW: labelId * 1000 + k for things, else the labelId

    @property
    def train_ids(self) -> np.ndarray:
        """Train ids (255 = ignore) of the label map."""
        return label_ids_to_train_ids(self.label_ids)

    @property
    def anomaly_label(self) -> np.ndarray:
        """Fishyscapes-style label: 1 anomaly, 255 void objects (ignored), 0 elsewhere."""
        label = np.zeros(self.label_ids.shape, dtype=np.uint8)
        label[(self.label_ids == STATIC) | (self.label_ids == DYNAMIC)] = IGNORE_ID
        label[self.label_ids == UNLABELED] = 1
        return label


def render_scene(
    params: SceneParams, size: tuple[int, int], camera_offset: float = 0.0
) -> RenderedScene:
    """Draw ``params`` at ``size`` (height, width) from ``camera_offset`` metres down the road.

    A sequence of increasing offsets drives the camera forward through the same scene.
    """
    height, width = size
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ValueError(f"image size must be at least {MIN_SIDE}x{MIN_SIDE}, got {height}x{width}")
    rng = np.random.default_rng(params.texture_seed)
    view = View(params.camera, size, params.road.curvature, camera_offset)
    horizon, _ = sky_colours(params.lighting)
    canvas = Canvas(size, horizon, params.lighting.haze_distance)
    rays = view.ground_rays()
    draw_sky(canvas, rays, params.lighting, rng)
    draw_ground(canvas, view, rays, params.road, rng)
    for item in _painter_order(view, params.items):
        if _may_be_visible(view, item):
            DRAWERS[item.kind](canvas, view, item, params.lighting)
    image = finish(canvas.image, params.lighting, rng)
    return RenderedScene(image, canvas.label_ids, canvas.instance_ids)


# How far parts of an item reach sideways beyond its footprint (building bodies, arms).
_LATERAL_REACH = {"building": street.BUILDING_DEPTH, "traffic_light": 5.0, "lamp_post": 2.0}


def _may_be_visible(view: View, item: Item) -> bool:
    """Cheap frustum test on a padded box around the item."""
    half = item.width / 2 + _LATERAL_REACH.get(item.kind, 0.5)
    return view.box_in_view(
        (item.s - half, item.s + half),
        (0.0, item.height + 1.0),
        (item.z - 1.0, item.z + item.length + 1.0),
    )


def _painter_order(view: View, items: tuple[Item, ...]) -> list[Item]:
    """Backdrop first, then everything else; each group far to near; behind-camera items dropped."""
    visible = [item for item in items if item.z + item.length > view.camera_z]

    def key(item: Item) -> tuple[bool, float]:
        backdrop = item.kind in street.BACKDROP_KINDS
        if backdrop:  # long façades: their nearest point decides
            reference = min(max(view.camera_z, item.z), item.z + item.length)
        else:
            reference = item.z + item.length / 2
        return (not backdrop, -view.distance(item.s, reference))

    return sorted(visible, key=key)
