"""The recorded-drive demo: bag making, recording, report, and one real run through the node."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from ros_test_env import isolate_ros_domain
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from synboost_ros.cli.main import main
from synboost_ros.data.world import render_scene, sample_scene
from synboost_ros.demo import drive_bag
from synboost_ros.demo.drive_bag import LABEL_TOPIC, read_drive_bag
from synboost_ros.demo.make_drive import DriveSpec, make_drive_bag, render_drive
from synboost_ros.demo.recorder import OutputRecorder
from synboost_ros.demo.recording import RecordedRun, stage_times
from synboost_ros.demo.replay_source import ReplayFrame, load_replay_frames, replay_offsets_s
from synboost_ros.demo.report import (
    TITLE_HEIGHT,
    anomaly_metrics,
    contact_sheet,
    latency_summary,
    summary_caption,
    summary_report,
    write_report,
)
from synboost_ros.demo.runner import frames_accounted, resolve_weights
from synboost_ros.metrics.anomaly import AnomalyMetricAccumulator
from synboost_ros.metrics.components import ComponentMetrics
from synboost_ros.postprocess.objects import AnomalyObject, extract_objects
from synboost_ros.postprocess.summary import summarize
from synboost_ros.ros.anomaly_messages import (
    objects_message,
    objects_message_type,
    summary_message,
)
from synboost_ros.ros.image_conversion import ImageDecodeError, fill_image_msg
from synboost_ros.ros.stamps import stamp_ns
from synboost_ros.visualize import ON_DRIVABLE_COLOR

ROOT = Path(__file__).resolve().parent.parent
SIZE = (48, 96)
START_NS = 1_000_000_000_000
PERIOD_NS = 100_000_000
RNG = np.random.default_rng(3)


def _replay_frame(stamp: int) -> ReplayFrame:
    image = RNG.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    label = np.zeros(SIZE, dtype=np.uint8)
    label[10:20, 30:50] = 1
    label[0:4] = 255
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    return ReplayFrame(stamp, "camera", "jpeg", jpeg, label)


def _recorded(stamps: list[int], *, missing: str | None = None) -> RecordedRun:
    """A run where each frame's outputs arrive 50 ms after its stamp; ``missing`` never does."""
    run = RecordedRun(preview_width=64)
    for stamp in stamps:
        received = stamp + 50_000_000
        run.add_map("anomaly", stamp, RNG.random(SIZE, dtype=np.float32), received)
        run.add_map("semantic", stamp, RNG.integers(0, 19, SIZE, dtype=np.uint8), received)
        for topic in ("entropy", "perceptual"):
            if topic != missing:
                run.add_map(topic, stamp, RNG.random(SIZE, dtype=np.float32) * 0.5, received)
        run.add_map("overlay", stamp, RNG.integers(0, 256, (*SIZE, 3), dtype=np.uint8), received)
        run.add_timing(stamp, {"segmentation": 10.0, "total": 30.0})
    run.set_diagnostics({"frames_in": "5", "frames_out": "4", "frames_dropped": "1"}, 0)
    return run


def _with_summaries(run: RecordedRun, stamps: list[int], alarms: list[bool]) -> RecordedRun:
    """Add a summary per frame (alarm as given) and one box on the drivable area."""
    for stamp, alarm in zip(stamps, alarms, strict=True):
        values = {"alarm": "true" if alarm else "false", "max_score_drivable": "0.8"}
        values.update({"anomalous_share_drivable": "0.01", "objects": "1"})
        values.update({"objects_on_drivable": "1", "alarm_score": "0.7"})
        run.add_summary(stamp, values)
        run.add_objects(stamp, [AnomalyObject(24, 12, 48, 24, 1000, 0.6, 0.8, 0, True)])
    return run


@pytest.fixture()
def replayed() -> dict[int, ReplayFrame]:
    return {START_NS + i * PERIOD_NS: _replay_frame(START_NS + i * PERIOD_NS) for i in range(5)}


def test_metrics_equal_the_accumulator_over_the_frames_that_came_out(replayed) -> None:
    stamps = sorted(replayed)
    run = _recorded(stamps[:4])
    run.add_map("anomaly", 7, np.zeros(SIZE, np.float32), 8)  # a stamp never replayed
    frames = run.frames()
    expected = AnomalyMetricAccumulator()
    for stamp in stamps[:4]:
        expected.update(frames[stamp].anomaly, replayed[stamp].label)
    truth = expected.compute()

    metrics = anomaly_metrics(frames, replayed)

    assert metrics["frames_scored"] == 4
    assert metrics["frames_published"] == 5
    assert (metrics["ap"], metrics["fpr95"], metrics["auroc"]) == (
        truth.ap,
        truth.fpr95,
        truth.auroc,
    )
    components = ComponentMetrics()
    for stamp in stamps[:4]:
        components.update(frames[stamp].anomaly, replayed[stamp].label)
    expected_components = components.compute(expected.threshold_best_f1()).to_json()
    assert metrics["components"] == expected_components
    assert expected_components["gt_components"] == 4  # one labelled object per frame


def test_summary_report_counts_alarms_with_and_without_an_anomaly_in_view(replayed) -> None:
    stamps = sorted(replayed)
    replayed[stamps[0]].label[:] = 0  # frame 0 shows no anomaly
    run = _with_summaries(_recorded(stamps), stamps, [True, True, False, False, False])

    report = summary_report(run.frames(), replayed)

    assert report["frames_with_summary"] == 5 and report["frames_with_objects_message"] == 5
    assert report["alarm_rate"] == 0.4
    assert report["alarm_rate_anomaly_in_view"] == 0.25  # 1 of frames 1-4
    assert report["alarm_rate_no_anomaly_in_view"] == 1.0  # frame 0
    assert report["thresholds"] == {"alarm_score": "0.7"}
    assert report["frames"][1] == {
        "t_s": 0.1, "anomaly_in_view": True, "alarm": True, "max_score_drivable": 0.8,
        "anomalous_share_drivable": 0.01, "objects": 1, "objects_on_drivable": 1, "boxes": 1,
    }  # fmt: skip


def test_contact_sheet_draws_the_recorded_boxes(replayed) -> None:
    stamps = sorted(replayed)
    run = _with_summaries(_recorded(stamps), stamps, [False] * 5)
    sheet = contact_sheet(run.frames(), replayed, count=1, tile_width=96)
    anomaly_tile = sheet[TITLE_HEIGHT:, 4 * 96 : 5 * 96]
    # The box (24, 12, 48, 24) at full size: its top edge on row 12 from column 24 to 71.
    np.testing.assert_array_equal(anomaly_tile[12, 24:72], np.tile(ON_DRIVABLE_COLOR, (48, 1)))
    plain = contact_sheet(_recorded(stamps).frames(), replayed, count=1, tile_width=96)
    assert not (plain[TITLE_HEIGHT + 12, 4 * 96 + 24 : 4 * 96 + 72] == ON_DRIVABLE_COLOR).all()


def test_contact_sheet_prints_the_summary_figures_on_the_anomaly_tile(replayed) -> None:
    stamps = sorted(replayed)
    frames = _with_summaries(_recorded(stamps), stamps, [True] * 5).frames()
    assert summary_caption(frames[stamps[0]].summary) == "max 0.80  1.0%  1 obj"
    bare = {stamp: replace(outputs, summary=None) for stamp, outputs in frames.items()}
    with_summary, without = (
        contact_sheet(f, replayed, count=1, tile_width=96)[TITLE_HEIGHT:, 4 * 96 :]
        for f in (frames, bare)
    )
    changed = (with_summary != without).any(axis=-1)
    assert changed[:16].any() and changed[-12:].any()  # ALARM above, the figures below
    assert not changed[16:-12].any()  # and nothing between
    assert (with_summary[-12:].min(axis=-1) > 200).any()  # in light (anti-aliased) text


def test_metrics_say_why_they_are_missing(replayed) -> None:
    metrics = anomaly_metrics({}, replayed)

    assert metrics["frames_scored"] == 0
    assert metrics["ap"] is None
    assert "anomaly" in metrics["note"]


def test_latency_summary_from_timing_receive_times_and_diagnostics(replayed) -> None:
    stamps = sorted(replayed)
    summary = latency_summary(_recorded(stamps[:4]).frames(), replayed, _recorded([]).diagnostics)

    assert summary["e2e_ms"] == {"p50": 50.0, "p95": 50.0, "max": 50.0}
    assert summary["stages_ms"]["segmentation"] == {"p50": 10.0, "p95": 10.0}
    assert (summary["frames_in"], summary["frames_out"], summary["frames_dropped"]) == (5, 4, 1)
    assert summary["frames_bad"] is None  # not in these diagnostics
    assert summary["wall_s"] == pytest.approx(0.35)  # first stamp -> last output received
    assert summary["fps"] == pytest.approx(4 / 0.35, abs=1e-3)
    assert summary["outputs_received"]["perceptual"] == 4


def test_contact_sheet_has_a_titled_row_per_picked_frame(replayed) -> None:
    run = _recorded(sorted(replayed), missing="perceptual")

    sheet = contact_sheet(run.frames(), replayed, count=3, tile_width=64)

    tile_height = 32  # 48x96 previews at 64 wide
    assert sheet.shape == (TITLE_HEIGHT + 3 * tile_height, 5 * 64, 3)
    perceptual = sheet[TITLE_HEIGHT:, 3 * 64 : 4 * 64]
    assert (perceptual.reshape(-1, 3) == 64).all(axis=1).mean() > 0.8  # grey "not received"


def test_write_report_writes_gif_sheet_and_json(tmp_path: Path, replayed) -> None:
    files = write_report(tmp_path / "report", _recorded(sorted(replayed)), replayed)

    ok, animation = cv2.imreadanimation(str(files.animation))
    assert ok and len(animation.frames) == 5
    assert list(animation.durations) == [100, 100, 100, 100, 100]
    assert cv2.imread(str(files.contact_sheet)) is not None
    assert json.loads(files.metrics.read_text())["frames_scored"] == 5
    assert set(json.loads(files.latency.read_text())) >= {"fps", "e2e_ms", "stages_ms"}
    assert json.loads(files.summary.read_text())["frames_with_summary"] == 0  # none recorded


def test_recorded_run_keeps_previews_small_and_frames_bounded() -> None:
    run = RecordedRun(max_frames=2, preview_width=32)
    for stamp in (1, 2, 3):
        run.add_map("anomaly", stamp, np.zeros(SIZE, np.float32), stamp)
        run.add_map("semantic", stamp, np.zeros(SIZE, np.uint8), stamp)

    frames = run.frames()
    assert list(frames) == [1, 2]
    assert run.refused == 2
    assert frames[1].anomaly.shape == SIZE
    assert frames[1].previews["semantic"].shape == (16, 32)


def test_timing_values_parse_to_stage_milliseconds() -> None:
    times = stage_times([("e2e_ms", "4.5"), ("segmentation_ms", "10.000"), ("note", "x")])

    assert times == {"e2e": 4.5, "segmentation": 10.0}
    with pytest.raises(ValueError, match="'fast'"):
        stage_times([("e2e_ms", "fast")])


def test_recorder_keys_maps_and_timing_by_their_header_stamp(monkeypatch) -> None:
    isolate_ros_domain(monkeypatch)
    context = rclpy.Context()
    rclpy.init(context=context)
    run = RecordedRun(preview_width=4)
    recorder = OutputRecorder("/sb_rec", run, context=context)
    source = Node("sb_rec", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(recorder)
    head = Header(frame_id="camera")
    head.stamp.sec, head.stamp.nanosec = 1_735_689_600, 123_456_789
    stamp = 1_735_689_600_123_456_789
    anomaly = RNG.random((3, 5), dtype=np.float32)
    timing = DiagnosticStatus(values=[KeyValue(key="segmentation_ms", value="12.500")])

    def spin_until(done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 20.0
        while not done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)

    obj = AnomalyObject(1, 0, 3, 2, 6, 0.5, 0.9, 0, True)
    summary = summarize(
        anomaly,
        np.zeros((3, 5), np.uint8),
        extract_objects(anomaly, np.zeros((3, 5), np.uint8)),
        (0,),
    )

    def arrived() -> bool:
        frame = run.frames().get(stamp)
        return (
            frame is not None
            and frame.anomaly is not None
            and bool(frame.timing_ms)
            and frame.summary is not None
            and frame.boxes is not None
        )

    try:
        anomaly_pub = source.create_publisher(Image, "~/anomaly", 10)
        timing_pub = source.create_publisher(DiagnosticArray, "~/timing", 10)
        summary_pub = source.create_publisher(DiagnosticArray, "~/anomaly_summary", 10)
        objects_pub = source.create_publisher(objects_message_type(), "~/anomaly_objects", 10)
        for publisher in (anomaly_pub, timing_pub, summary_pub, objects_pub):
            spin_until(lambda publisher=publisher: bool(publisher.get_subscription_count()))
        anomaly_pub.publish(fill_image_msg(Image(), anomaly, "32FC1", head))
        timing_pub.publish(DiagnosticArray(header=head, status=[timing]))
        summary_pub.publish(summary_message(summary, head, "/sb_rec"))
        objects_pub.publish(objects_message([obj], head, "/sb_rec"))
        spin_until(arrived)
    finally:
        executor.shutdown()
        recorder.destroy_node()
        source.destroy_node()
        rclpy.shutdown(context=context)

    frames = run.frames()
    assert list(frames) == [stamp]
    np.testing.assert_array_equal(frames[stamp].anomaly, anomaly)
    assert frames[stamp].timing_ms == {"segmentation": 12.5}
    assert frames[stamp].summary == dict(summary.key_values())
    assert frames[stamp].boxes == [obj]


def test_node_counters_add_up_only_when_every_frame_is_accounted() -> None:
    values = {"frames_in": "10", "frames_out": "3", "frames_dropped": "6", "frames_bad": "0"}

    assert not frames_accounted(values)
    assert frames_accounted({**values, "frames_idle": "1"})


def test_missing_shipped_weights_ask_for_random_weights(monkeypatch) -> None:
    monkeypatch.setattr("synboost_ros.demo.runner.default_weights_path", lambda preset: None)

    with pytest.raises(FileNotFoundError, match="--random-weights"):
        resolve_weights("edge", None, False)
    assert resolve_weights("edge", None, True) is None


def test_make_bag_frames_round_trip(tmp_path: Path) -> None:
    spec = DriveSpec(frames=5, size=(64, 128))
    bag = tmp_path / "drive"

    assert make_drive_bag(bag, spec) == 5

    rendered = list(render_drive(spec))
    read = list(read_drive_bag(bag))
    assert [f.stamp_ns for f in read] == [f.stamp_ns for f in rendered]
    for original, stored in zip(rendered, read, strict=True):
        np.testing.assert_array_equal(stored.label, original.label)
        difference = np.abs(stored.image.astype(int) - original.image.astype(int)).mean()
        assert difference < 6  # JPEG
    assert replay_offsets_s(load_replay_frames(bag)) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert spec.command(bag) in (bag / "README.md").read_text()
    with pytest.raises(ValueError, match="already exists"):
        make_drive_bag(bag, spec)


def test_stamp_ns_is_seconds_times_1e9_plus_nanoseconds() -> None:
    header = Header(stamp=Time(sec=1_735_689_600, nanosec=999_999_999))
    assert stamp_ns(header) == 1_735_689_600 * 10**9 + 999_999_999
    assert stamp_ns(Header()) == 0


def test_both_drive_readers_name_the_bag_topic_and_stamp_of_a_bad_label(
    tmp_path: Path, monkeypatch
) -> None:
    spec = DriveSpec(frames=2, size=(64, 128))
    bag = tmp_path / "drive"
    make_drive_bag(bag, spec)

    def bad_label(message) -> np.ndarray:
        raise ImageDecodeError("not a png")

    monkeypatch.setattr(drive_bag, "decode_label", bad_label)
    expected = f"bag {bag}: corrupt {LABEL_TOPIC} frame at stamp {spec.stamp_ns(0)}: not a png"
    for read in (lambda: list(read_drive_bag(bag)), lambda: load_replay_frames(bag)):
        with pytest.raises(ValueError, match=re.escape(expected)):
            read()


def test_default_drive_shows_anomalies_approaching() -> None:
    spec = DriveSpec()
    scene = sample_scene(spec.seed, spec.index, anomalies=True)
    visible = [
        int((render_scene(scene, (64, 128), spec.camera_offset(i)).anomaly_label == 1).sum())
        for i in (0, 30, 60)
    ]

    assert all(count > 0 for count in visible)
    assert visible[1] > visible[0]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_demo_run_replays_a_bag_through_the_real_node(tmp_path: Path, monkeypatch) -> None:
    isolate_ros_domain(monkeypatch)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    bag, out = tmp_path / "bag", tmp_path / "out"
    make = ["demo", "make-bag", "--out", str(bag), "--frames", "6", "--size", "128x256"]
    assert main(make) == 0

    run = ["demo", "run", "--bag", str(bag), "--out", str(out), "--random-weights"]

    code = main([*run, "--timeout", "180"])

    assert code == 0
    files = ("overlay.gif", "contact_sheet.png", "latency.json", "metrics.json", "summary.json")
    for name in (*files, "node.log"):
        assert (out / name).is_file(), name
    latency = json.loads((out / "latency.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert latency["frames_published"] == 6
    assert 1 <= latency["frames_out"] <= latency["frames_in"] <= 6
    assert frames_accounted({k: str(v) for k, v in latency.items() if k.startswith("frames_")})
    assert 1 <= metrics["frames_scored"] <= latency["frames_out"]
    assert 0.0 <= metrics["ap"] <= 1.0
    assert {"segmentation", "e2e"} <= set(latency["stages_ms"])  # ~/timing was recorded
    assert "objects" in latency["stages_ms"]  # the analysis ran: the recorder subscribes
    assert "temporal" in latency["stages_ms"]  # temporal fusion is on by default
    summary = json.loads((out / "summary.json").read_text())
    assert 1 <= summary["frames_with_summary"] <= latency["frames_out"]
    assert summary["frames_with_objects_message"] >= 1
    assert set(metrics["components"]) >= {"siou", "ppv", "mean_f1", "score_threshold"}
