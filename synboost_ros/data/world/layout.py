"""Vocabulary of a scene description: the road cross-section and the placed items."""

from __future__ import annotations

from dataclasses import dataclass

LEFT, RIGHT = -1, 1


@dataclass(frozen=True)
class RoadLayout:
    """Cross-section and course of the street; ``s`` is metres right of the centre line.

    Oncoming lanes lie left of ``s = 0``, lanes in the camera's direction right of it; a parking
    strip, the curb and the sidewalk, then a grass verge and the frontage follow on each side.
    """

    lane_width: float
    lanes: tuple[int, int]  # (oncoming, same direction)
    parking: tuple[bool, bool]  # 2.3 m parking strip on the (left, right) side
    sidewalk: tuple[float, float]  # widths, metres
    verge: tuple[float, float]  # grass strip between sidewalk and frontage, metres (0 = none)
    frontage: tuple[str, str]  # "buildings" or "park"
    curvature: float  # 1/metres; the centre line bends as curvature * z**2 / 2
    crosswalk_z: float | None  # start of a zebra crossing, metres ahead
    end_z: float  # distance of the row of buildings or trees that closes the view
    tram: bool  # tram rails in the first lane of the camera's direction
    dashed_centre: bool  # centre line dashed (else solid)

    def curb(self, side: int) -> float:
        """Signed ``s`` of the road edge on ``side`` (LEFT or RIGHT)."""
        index = 0 if side == LEFT else 1
        parking = 2.3 if self.parking[index] else 0.0
        return side * (self.lanes[index] * self.lane_width + parking)

    def sidewalk_edge(self, side: int) -> float:
        """Signed ``s`` of the outer edge of the sidewalk."""
        return self.curb(side) + side * self.sidewalk[0 if side == LEFT else 1]

    def frontage_line(self, side: int) -> float:
        """Signed ``s`` where the frontage (façades, park) begins."""
        return self.sidewalk_edge(side) + side * self.verge[0 if side == LEFT else 1]

    def lane_centre(self, side: int, lane: int) -> float:
        """Signed ``s`` of the centre of moving lane ``lane`` (0 = next to the centre line)."""
        return side * (lane + 0.5) * self.lane_width


@dataclass(frozen=True)
class Item:
    """One object placed in road coordinates; its details come from ``seed`` when drawn."""

    kind: str
    s: float  # lateral centre, metres right of the centre line
    z: float  # near end, metres along the road
    width: float  # extent across the road
    length: float  # extent along the road
    height: float
    seed: int
    facing: int = 1  # vehicles: +1 drives away from the camera, -1 comes towards it
