"""The three layers a scene is drawn into: RGB image, Cityscapes labelIds, instance ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from synboost_ros.data.world.camera import SUBPIXEL_BITS

Colour = Sequence[float]
# A texture maker gets the (height, width) of a pixel box and returns float RGB of that shape.
Texture = Callable[[int, int], np.ndarray]


class Canvas:
    """Painter's-algorithm canvas: later drawing covers earlier drawing in every layer.

    Colours are float RGB in 0..255 and are blended towards ``haze_colour`` with distance.
    """

    def __init__(self, size: tuple[int, int], haze_colour: Colour, haze_distance: float) -> None:
        height, width = size
        self.size = size
        self.image = np.zeros((height, width, 3), dtype=np.float32)
        self.label_ids = np.zeros((height, width), dtype=np.uint8)
        self.instance_ids = np.zeros((height, width), dtype=np.int32)
        self.haze_colour = np.asarray(haze_colour, dtype=np.float32)
        self.haze_distance = haze_distance
        self._instance_counts: dict[int, int] = {}

    def new_instance(self, label_id: int) -> int:
        """Next Cityscapes instance id (labelId * 1000 + k) of a thing class."""
        count = self._instance_counts.get(label_id, 0)
        self._instance_counts[label_id] = count + 1
        return label_id * 1000 + count

    def hazed(self, colour: Colour | np.ndarray, distance: float) -> np.ndarray:
        """Colour seen through ``distance`` metres of haze."""
        amount = 1.0 - np.exp(-max(distance, 0.0) / self.haze_distance)
        return (1.0 - amount) * np.asarray(colour, dtype=np.float32) + amount * self.haze_colour

    def fill(
        self,
        polygons: list[np.ndarray],
        colour: Colour,
        label_id: int,
        distance: float,
        instance_id: int | None = None,
    ) -> None:
        """Fill polygons with one colour and one label."""
        if not polygons:
            return
        shade = tuple(float(c) for c in self.hazed(colour, distance))
        cv2.fillPoly(self.image, polygons, shade, cv2.LINE_8, SUBPIXEL_BITS)
        self.mark(polygons, label_id, instance_id)

    def mark(
        self, polygons: list[np.ndarray], label_id: int, instance_id: int | None = None
    ) -> None:
        """Set the labels inside polygons without touching the image (see-through parts)."""
        if not polygons:
            return
        cv2.fillPoly(self.label_ids, polygons, int(label_id), cv2.LINE_8, SUBPIXEL_BITS)
        instance = label_id if instance_id is None else instance_id
        cv2.fillPoly(self.instance_ids, polygons, int(instance), cv2.LINE_8, SUBPIXEL_BITS)

    def paint(
        self,
        polygons: list[np.ndarray],
        texture: Texture,
        label_id: int,
        distance: float,
        instance_id: int | None = None,
    ) -> None:
        """Fill polygons with a texture computed over their bounding box."""
        found = self._local_mask(polygons)
        if found is None:
            return
        (y0, y1, x0, x1), mask = found
        pixels = self.hazed(texture(y1 - y0, x1 - x0), distance)
        self.image[y0:y1, x0:x1][mask] = pixels[mask]
        self.label_ids[y0:y1, x0:x1][mask] = label_id
        self.instance_ids[y0:y1, x0:x1][mask] = label_id if instance_id is None else instance_id

    def lines(
        self,
        polylines: list[np.ndarray],
        colour: Colour,
        thickness: int,
        label_id: int,
        distance: float,
        instance_id: int | None = None,
    ) -> None:
        """Draw open polylines (thin structures such as bicycle frames) in every layer."""
        if not polylines:
            return
        width = max(1, int(thickness))
        shade = tuple(float(c) for c in self.hazed(colour, distance))
        instance = label_id if instance_id is None else instance_id
        for layer, value in ((self.image, shade), (self.label_ids, label_id)):
            cv2.polylines(layer, polylines, False, value, width, cv2.LINE_8, SUBPIXEL_BITS)
        cv2.polylines(
            self.instance_ids, polylines, False, int(instance), width, cv2.LINE_8, SUBPIXEL_BITS
        )

    def tint(
        self,
        polygons: list[np.ndarray],
        colour: Colour,
        alpha: float,
        label_id: int,
        distance: float,
        instance_id: int | None = None,
    ) -> None:
        """Blend a colour over the image inside polygons and label them (fences, netting)."""
        found = self._local_mask(polygons)
        if found is None:
            return
        (y0, y1, x0, x1), mask = found
        region = self.image[y0:y1, x0:x1]
        region[mask] = (1.0 - alpha) * region[mask] + alpha * self.hazed(colour, distance)
        self.mark(polygons, label_id, instance_id)

    def darken(self, polygons: list[np.ndarray], factor: float) -> None:
        """Multiply the image inside polygons (shadows); labels are unchanged."""
        found = self._local_mask(polygons)
        if found is None:
            return
        (y0, y1, x0, x1), mask = found
        self.image[y0:y1, x0:x1][mask] *= factor

    def _local_mask(
        self, polygons: list[np.ndarray]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Clipped pixel box of the polygons and their filled mask inside it."""
        if not polygons:
            return None
        points = np.concatenate(polygons) >> SUBPIXEL_BITS
        height, width = self.size
        x0, y0 = np.maximum(points.min(axis=0), 0)
        x1, y1 = np.minimum(points.max(axis=0) + 2, (width, height))
        if x1 <= x0 or y1 <= y0:
            return None
        offset = np.array([x0, y0], dtype=np.int32) << SUBPIXEL_BITS
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillPoly(mask, [p - offset for p in polygons], 1, cv2.LINE_8, SUBPIXEL_BITS)
        return (int(y0), int(y1), int(x0), int(x1)), mask.astype(bool)
