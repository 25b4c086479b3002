"""The demo report from recorded node outputs and the replayed ground truth.

Writes ``overlay.gif`` (the node's ``~/overlay``, with its object boxes, at the pace it came
out), ``contact_sheet.png`` (rows of frames; columns input, semantic colour, entropy, perceptual
difference, anomaly heat map with the ground truth outlined and the node's ``~/anomaly_objects``
boxed, ALARM when ``~/anomaly_summary`` raised it and the summary's figures),
``latency.json``, ``metrics.json`` (pixel AP / FPR95 / AUROC and the SegmentMeIfYouCan
component metrics) and ``summary.json`` (the per-frame summaries and the alarm rates). Plain
Python: both inputs are keyed by the published header stamp (ns).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synboost_ros.benchmark import percentiles
from synboost_ros.demo.recording import (
    DEFAULT_PREVIEW_WIDTH,
    PREVIEW_TOPICS,
    DiagnosticsSnapshot,
    FrameOutputs,
    RecordedRun,
    preview_size,
)
from synboost_ros.demo.replay_source import ReplayFrame
from synboost_ros.metrics.anomaly import ANOMALY_LABEL
from synboost_ros.metrics.stamped import StampedAnomalyMetrics
from synboost_ros.visualize import (
    OFF_DRIVABLE_COLOR,
    ON_DRIVABLE_COLOR,
    heatmap,
    semantic_color,
    write_rgb,
)

CONTACT_ROWS = 6
COUNTERS = ("frames_in", "frames_out", "frames_dropped", "frames_bad", "frames_idle")
TITLE_HEIGHT = 20
TEXT_COLOR = (255, 255, 255)
OUTLINE_COLOR = (0, 255, 255)
MIN_FRAME_MS = 20  # GIF players round shorter frame times up anyway


@dataclass(frozen=True)
class ReportFiles:
    """Where the report went."""

    animation: Path
    contact_sheet: Path
    latency: Path
    metrics: Path
    summary: Path


def anomaly_metrics(
    frames: Mapping[int, FrameOutputs], replayed: Mapping[int, ReplayFrame]
) -> dict:
    """AP, FPR95 and AUROC of the recorded anomaly maps against the labels of their frames,
    and the component metrics at the best-F1 score threshold (``metrics.stamped``)."""
    scorer = StampedAnomalyMetrics(max_pending=None)
    for stamp, frame in replayed.items():
        scorer.add_label(stamp, frame.label)
    for stamp, outputs in frames.items():
        if outputs.anomaly is not None:
            scorer.add_scores(stamp, outputs.anomaly)
    return {"frames_published": len(replayed), **scorer.result()}


def summary_report(frames: Mapping[int, FrameOutputs], replayed: Mapping[int, ReplayFrame]) -> dict:
    """The recorded ``~/anomaly_summary`` per frame, and how often the alarm was raised: over
    all frames, over those whose ground truth shows an anomaly, and over those without."""
    start = min(replayed) if replayed else 0
    rows = []
    for stamp, outputs in frames.items():
        if outputs.summary is None or stamp not in replayed:
            continue
        values = outputs.summary
        rows.append(
            {
                "t_s": round((stamp - start) / 1e9, 3),
                "anomaly_in_view": bool((replayed[stamp].label == ANOMALY_LABEL).any()),
                "alarm": values.get("alarm") == "true",
                "max_score_drivable": float(values.get("max_score_drivable", "nan")),
                "anomalous_share_drivable": float(values.get("anomalous_share_drivable", "nan")),
                "objects": int(values.get("objects", 0)),
                "objects_on_drivable": int(values.get("objects_on_drivable", 0)),
                "boxes": len(outputs.boxes) if outputs.boxes is not None else None,
            }
        )

    def rate(chosen: list[dict]) -> float | None:
        return round(sum(r["alarm"] for r in chosen) / len(chosen), 4) if chosen else None

    with_anomaly = [r for r in rows if r["anomaly_in_view"]]
    without = [r for r in rows if not r["anomaly_in_view"]]
    thresholds = next(iter(f.summary for f in frames.values() if f.summary), {})
    return {
        "frames_with_summary": len(rows),
        "frames_with_objects_message": sum(f.boxes is not None for f in frames.values()),
        "alarm_rate": rate(rows),
        "alarm_rate_anomaly_in_view": rate(with_anomaly),
        "alarm_rate_no_anomaly_in_view": rate(without),
        "mean_objects": round(float(np.mean([r["objects"] for r in rows])), 3) if rows else None,
        "thresholds": {
            key: thresholds[key]
            for key in ("anomaly_threshold", "alarm_score", "alarm_share")
            if key in thresholds
        },
        "frames": rows,
    }


def _with_max(values: list[float]) -> dict[str, float]:
    return {**percentiles(values), "max": round(max(values), 3)}


def _outputs_received(frames: Mapping[int, FrameOutputs]) -> dict[str, int]:
    """How many frames each recorded topic arrived for (lost ones are missing)."""
    counts = {"anomaly": sum(f.anomaly is not None for f in frames.values())}
    counts.update({t: sum(t in f.previews for f in frames.values()) for t in PREVIEW_TOPICS})
    counts["timing"] = sum(bool(f.timing_ms) for f in frames.values())
    return counts


def latency_summary(
    frames: Mapping[int, FrameOutputs],
    replayed: Mapping[int, ReplayFrame],
    diagnostics: DiagnosticsSnapshot | None,
) -> dict:
    """Stage times, end-to-end latency, throughput and the node's final frame counters.

    End-to-end = receive time of ``~/anomaly`` minus the header stamp (the publish time of the
    camera frame); FPS = frames_out / wall time from the first camera frame to the last output.
    """
    stage_samples: dict[str, list[float]] = {}
    for outputs in frames.values():
        for stage, ms in outputs.timing_ms.items():
            stage_samples.setdefault(stage, []).append(ms)
    received = {s: f.received_ns for s, f in frames.items() if f.received_ns is not None}
    e2e = [(arrived - stamp) / 1e6 for stamp, arrived in received.items()]
    wall_s = (max(received.values()) - min(replayed)) / 1e9 if received and replayed else None
    values = diagnostics.values if diagnostics else {}
    counters = {name: int(values[name]) if name in values else None for name in COUNTERS}
    frames_out = counters["frames_out"]
    fps = frames_out / wall_s if frames_out is not None and wall_s else None
    return {
        "frames_published": len(replayed),
        **counters,
        "outputs_received": _outputs_received(frames),
        "wall_s": None if wall_s is None else round(wall_s, 3),
        "fps": None if fps is None else round(fps, 3),
        "e2e_ms": _with_max(e2e) if e2e else None,
        "stages_ms": {stage: percentiles(ms) for stage, ms in stage_samples.items()},
    }


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, 1, cv2.LINE_AA)


def _font_scale(tile_width: int) -> float:
    return 0.4 if tile_width >= 200 else 0.3


def grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str]) -> np.ndarray:
    """Equally sized RGB tiles in a grid under a bar with one title per column."""
    if not rows or any(len(row) != len(titles) for row in rows):
        raise ValueError(f"a grid needs rows of {len(titles)} tiles each, got {len(rows)} rows")
    tile_width = rows[0][0].shape[1]
    bar = np.full((TITLE_HEIGHT, tile_width * len(titles), 3), 32, dtype=np.uint8)
    for column, title in enumerate(titles):
        _text(bar, title, (column * tile_width + 4, TITLE_HEIGHT - 6), _font_scale(tile_width))
    return np.vstack([bar, *(np.hstack(row) for row in rows)])


def _fit(image: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    height, width = size
    if image.shape[:2] == size:
        return image
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _outlined(tile: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Draw the outline of the anomaly pixels of ``label`` (resized to the tile) on ``tile``."""
    mask = _fit((label == ANOMALY_LABEL).astype(np.uint8), tile.shape[:2], nearest=True)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return cv2.drawContours(tile.copy(), contours, -1, OUTLINE_COLOR, 1)


def summary_caption(summary: Mapping[str, str]) -> str:
    """A frame's ``~/anomaly_summary`` in short: highest score on the drivable area, its
    anomalous share and the object count."""
    max_score = float(summary.get("max_score_drivable", "nan"))
    share = float(summary.get("anomalous_share_drivable", "nan"))
    return f"max {max_score:.2f}  {share:.1%}  {summary.get('objects', '?')} obj"


def _boxed(tile: np.ndarray, outputs: FrameOutputs, scale: float) -> np.ndarray:
    """Draw the recorded object boxes (map pixels, scaled to the tile) on ``tile``, and the
    summary: ALARM at the top when raised, ``summary_caption`` at the bottom."""
    for box in outputs.boxes or []:
        color = ON_DRIVABLE_COLOR if box.on_drivable else OFF_DRIVABLE_COLOR
        top_left = (int(box.x * scale), int(box.y * scale))
        bottom_right = (int((box.x + box.width) * scale) - 1, int((box.y + box.height) * scale) - 1)
        cv2.rectangle(tile, top_left, bottom_right, color, 1)
    if outputs.summary:
        font_scale = _font_scale(tile.shape[1])
        if outputs.summary.get("alarm") == "true":
            _text(tile, "ALARM", (4, 14), font_scale)
        _text(tile, summary_caption(outputs.summary), (4, tile.shape[0] - 5), font_scale)
    return tile


def _missing(size: tuple[int, int]) -> np.ndarray:
    """Grey tile for an output that never arrived."""
    tile = np.full((*size, 3), 64, dtype=np.uint8)
    _text(tile, "not received", (4, size[0] // 2), _font_scale(size[1]))
    return tile


def pick_rows(stamps: Sequence[int], count: int = CONTACT_ROWS) -> list[int]:
    """Up to ``count`` stamps spread evenly over ``stamps`` (first and last included)."""
    if not stamps:
        return []
    positions = np.linspace(0, len(stamps) - 1, min(count, len(stamps)))
    return [stamps[i] for i in sorted({round(float(p)) for p in positions})]


def _column_scale(frames: Mapping[int, FrameOutputs], stamps: Sequence[int], topic: str) -> float:
    """Largest value of ``topic`` over the rows that have it (1 when none has)."""
    peaks = [float(frames[s].previews[topic].max()) for s in stamps if topic in frames[s].previews]
    return max(max(peaks), 1e-6) if peaks else 1.0


def contact_sheet(
    frames: Mapping[int, FrameOutputs],
    replayed: Mapping[int, ReplayFrame],
    count: int = CONTACT_ROWS,
    tile_width: int = DEFAULT_PREVIEW_WIDTH,
) -> np.ndarray:
    """Rows of frames: input | semantic | entropy | perceptual difference | anomaly + GT.

    Rows are spread over the frames with every output when there are enough of them, else
    over all scored frames; a preview that never arrived is drawn as a grey tile. Entropy and
    perceptual difference are scaled by their largest value on the sheet (in the title).
    """
    scored = [s for s, f in frames.items() if f.anomaly is not None and s in replayed]
    complete = [s for s in scored if all(t in frames[s].previews for t in PREVIEW_TOPICS)]
    stamps = pick_rows(complete if len(complete) >= min(count, len(scored)) else scored, count)
    if not stamps:
        raise ValueError("no anomaly map of a replayed frame was recorded: nothing to draw")
    size = preview_size(frames[stamps[0]].anomaly.shape, tile_width)
    scales = {topic: _column_scale(frames, stamps, topic) for topic in ("entropy", "perceptual")}
    renderers = {
        "semantic": lambda ids: semantic_color(_fit(ids, size, nearest=True)),
        "entropy": lambda score: heatmap(_fit(score, size) / scales["entropy"]),
        "perceptual": lambda score: heatmap(_fit(score, size) / scales["perceptual"]),
    }
    start = min(replayed)
    rows = []
    for stamp in stamps:
        outputs, frame = frames[stamp], replayed[stamp]
        image = _fit(frame.decode_image(), size)
        _text(image, f"t={(stamp - start) / 1e9:.1f}s", (4, 14), _font_scale(size[1]))
        middle = [
            render(outputs.previews[topic]) if topic in outputs.previews else _missing(size)
            for topic, render in renderers.items()
        ]
        anomaly = _outlined(heatmap(_fit(outputs.anomaly, size)), frame.label)
        anomaly = _boxed(anomaly, outputs, size[1] / outputs.anomaly.shape[1])
        rows.append([image, *middle, anomaly])
    titles = (
        "input",
        "semantic",
        f"entropy (0-{scales['entropy']:.2f})",
        f"perceptual diff. (0-{scales['perceptual']:.2f})",
        "anomaly, GT outlined, objects",
    )
    return grid(rows, titles)


def frame_durations_ms(stamps: Sequence[int]) -> list[int]:
    """Display time of each frame: the gap to the next stamp (the last repeats the median)."""
    gaps = [max(MIN_FRAME_MS, round((b - a) / 1e6)) for a, b in itertools.pairwise(stamps)]
    return [*gaps, int(np.median(gaps)) if gaps else 100]


def write_animation(path: Path, images: Sequence[np.ndarray], durations_ms: Sequence[int]) -> None:
    """Write RGB images as a looping animated GIF."""
    if not hasattr(cv2, "imwriteanimation"):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} cannot write animations; upgrade opencv-python-headless"
        )
    animation = cv2.Animation()
    animation.frames = [cv2.cvtColor(image, cv2.COLOR_RGB2BGR) for image in images]
    animation.durations = [int(d) for d in durations_ms]
    animation.loop_count = 0
    if not cv2.imwriteanimation(str(path), animation):
        raise OSError(f"could not write animation {path}")


def overlay_animation(
    frames: Mapping[int, FrameOutputs], replayed: Mapping[int, ReplayFrame]
) -> tuple[list[np.ndarray], list[int]]:
    """The recorded ``~/overlay`` previews with their time stamps, and their display times."""
    stamps = [s for s, f in frames.items() if "overlay" in f.previews]
    if not stamps:
        raise ValueError("no ~/overlay frame was recorded: nothing to animate")
    start = min(replayed) if replayed else stamps[0]
    images = []
    for stamp in stamps:
        image = frames[stamp].previews["overlay"].copy()
        _text(image, f"t={(stamp - start) / 1e9:.1f}s", (4, 14), _font_scale(image.shape[1]))
        images.append(image)
    return images, frame_durations_ms(stamps)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_report(
    out_dir: str | Path, run: RecordedRun, replayed: Mapping[int, ReplayFrame]
) -> ReportFiles:
    """Write the five report files into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = run.frames()
    files = ReportFiles(
        animation=out / "overlay.gif",
        contact_sheet=out / "contact_sheet.png",
        latency=out / "latency.json",
        metrics=out / "metrics.json",
        summary=out / "summary.json",
    )
    write_animation(files.animation, *overlay_animation(frames, replayed))
    write_rgb(str(files.contact_sheet), contact_sheet(frames, replayed))
    _write_json(files.latency, latency_summary(frames, replayed, run.diagnostics))
    _write_json(files.metrics, anomaly_metrics(frames, replayed))
    _write_json(files.summary, summary_report(frames, replayed))
    return files
