"""Render the demo drive: a camera driving down one procedural street with anomalies on it.

The camera starts ``START_OFFSET_M`` metres before the scene origin (the street begins 40 m
behind it) and drives forward at ``SPEED_MPS``, so the 1-3 anomalies placed 5-30 m past the
origin approach from far away and finally pass out of view. Everything is a pure function of
``DriveSpec``: the same spec always gives the same frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from synboost_ros.data.world import render_scene, sample_scene

if TYPE_CHECKING:
    from synboost_ros.demo.drive_bag import DriveFrame

# Scene 152 of world 0: a free lane ahead, an animal, lost cargo and a debris field on the
# road, at least one of them in view for about 80 % of the default drive.
DEFAULT_SEED = 0
DEFAULT_INDEX = 152
DEFAULT_SIZE = (256, 512)
DEFAULT_RATE_HZ = 10.0
DEFAULT_FRAMES = 100
SPEED_MPS = 8.0  # about 29 km/h
START_OFFSET_M = -38.0
# First header stamp: 2025-01-01T00:00:00Z, so the bag is identical whenever it is made.
START_STAMP_NS = 1_735_689_600 * 1_000_000_000
JPEG_QUALITY = 90
FRAME_ID = "camera"


@dataclass(frozen=True)
class DriveSpec:
    """What to render: which street, how many frames, how often and how large."""

    seed: int = DEFAULT_SEED
    index: int = DEFAULT_INDEX
    frames: int = DEFAULT_FRAMES
    rate_hz: float = DEFAULT_RATE_HZ
    size: tuple[int, int] = DEFAULT_SIZE

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"a drive needs at least 1 frame, got {self.frames}")
        if not self.rate_hz > 0:
            raise ValueError(f"frame rate must be > 0 Hz, got {self.rate_hz}")

    def camera_offset(self, frame: int) -> float:
        """Metres the camera has driven down the road at ``frame``."""
        return START_OFFSET_M + SPEED_MPS * frame / self.rate_hz

    def stamp_ns(self, frame: int) -> int:
        """Header stamp of ``frame``."""
        return START_STAMP_NS + round(frame * 1e9 / self.rate_hz)

    def command(self, out: str | Path) -> str:
        """The ``synboost demo make-bag`` command line that renders this drive into ``out``."""
        height, width = self.size
        return (
            f"synboost demo make-bag --out {out} --frames {self.frames} --rate {self.rate_hz:g} "
            f"--seed {self.seed} --index {self.index} --size {height}x{width}"
        )


def render_drive(spec: DriveSpec) -> Iterator[DriveFrame]:
    """Render the frames of the drive, in order, with a progress bar."""
    # drive_bag (rclpy, rosbags) is imported on use: `synboost --help` reads the defaults here.
    from synboost_ros.demo.drive_bag import DriveFrame

    scene = sample_scene(spec.seed, spec.index, anomalies=True)
    for frame in tqdm(range(spec.frames), desc="render drive", unit="frame"):
        rendered = render_scene(scene, spec.size, spec.camera_offset(frame))
        yield DriveFrame(spec.stamp_ns(frame), rendered.image, rendered.anomaly_label)


def readme_text(spec: DriveSpec, out: str | Path) -> str:
    """README of a rendered drive bag: what it holds and the command that made it."""
    height, width = spec.size
    seconds = spec.frames / spec.rate_hz
    return f"""# Demo drive

A short drive through one street of the procedural world (`synboost_ros.data.world`):
scene {spec.index} of world seed {spec.seed}, with anomalies.
The camera drives forward at {SPEED_MPS:g} m/s from {-START_OFFSET_M:g} m before the scene origin,
so the anomalies on the road (animals, lost cargo, debris) approach and pass out of view.

- {spec.frames} frames of {height}x{width} pixels (HxW) at {spec.rate_hz:g} Hz ({seconds:g} s)
- rosbag2, mcap storage, two topics with equal header stamps per frame:
  - `/camera/image_raw/compressed`: sensor_msgs/CompressedImage, JPEG quality {JPEG_QUALITY}
  - `/camera/anomaly_gt/compressed`: sensor_msgs/CompressedImage, PNG mono8 labels
    (0 normal, 1 anomaly, 255 ignored)

`synboost demo run` replays it through `anomaly_node` and scores the node's anomaly maps
against the labels. Made with:

    {spec.command(out)}
"""


def make_drive_bag(out: str | Path, spec: DriveSpec) -> int:
    """Render ``spec`` into a new rosbag2 folder ``out`` with a README; return the frame count."""
    from synboost_ros.demo.drive_bag import write_drive_bag

    out = Path(out)
    if out.exists():
        raise ValueError(f"output folder {out} already exists; remove it or choose another --out")
    count = write_drive_bag(out, render_drive(spec), FRAME_ID, JPEG_QUALITY)
    (out / "README.md").write_text(readme_text(spec, out), encoding="utf-8")
    return count
