"""Procedural driving world: streets with the 19 Cityscapes classes, void objects and anomalies.

Scene ``index`` of world ``seed`` is a pure function of the two numbers. Typical use::

    params = sample_scene(seed=0, index=7, anomalies=True)
    frame = render_scene(params, (256, 512), camera_offset=5.0)  # 5 m further down the road
"""

from __future__ import annotations

from synboost_ros.data.world.generate import generate_world
from synboost_ros.data.world.objects import ANOMALY_FAMILIES, VOID_FAMILIES
from synboost_ros.data.world.render import RenderedScene, render_scene
from synboost_ros.data.world.scene import SceneParams, sample_scene

__all__ = [
    "ANOMALY_FAMILIES",
    "VOID_FAMILIES",
    "RenderedScene",
    "SceneParams",
    "generate_world",
    "render_scene",
    "sample_scene",
]
