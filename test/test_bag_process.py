"""``synboost bag process``: small bags written here (rosbags' own serialiser), read back with
rosbags, through a small random-weights pipeline."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from synboost_ros.analysis import analyze
from synboost_ros.cli.main import main
from synboost_ros.demo.drive_bag import IMAGE_TOPIC, LABEL_TOPIC, read_drive_bag
from synboost_ros.demo.make_drive import DriveSpec, make_drive_bag
from synboost_ros.demo.recording import FrameOutputs
from synboost_ros.demo.replay_source import load_replay_frames
from synboost_ros.demo.report import anomaly_metrics
from synboost_ros.metrics.anomaly import AnomalyMetricAccumulator
from synboost_ros.pipeline import AnomalyPipeline
from synboost_ros.postprocess.options import PostprocessOptions
from synboost_ros.ros.bag_files import BagError, BagTopic, OutputBag
from synboost_ros.ros.bag_processing import BagProcessOptions, BagProcessor
from synboost_ros.ros.frame_outputs import RenderSettings, image_topics, render_topic
from synboost_ros.ros.image_conversion import decode_array, decode_compressed, decode_image
from synboost_ros.ros.parameters import NodeParameters

TS = get_typestore(Stores.ROS2_HUMBLE)
TYPES = TS.types
SIZE = (64, 128)
START_NS = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000
RECEIVE_DELAY_NS = 7_000_000  # bag time = header stamp + this
CAMERA = "/cam/image_raw"
TRUTH = "/cam/anomaly_gt"
FILLER = "/lidar/blob"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
NODE = "/anomaly_node"
SMALL = ["--segmentation-size", "192x192", "--synthesis-size", "32x64"]
CLI_MODEL = ["--random-weights", "--backend", "torch", "--device", "cpu", *SMALL]


@dataclass
class Written:
    """One camera frame as written: stamp, bag time, frame id, raw bytes, labels."""

    stamp: int
    bag_time: int
    frame_id: str
    raw: bytes
    label: np.ndarray


@pytest.fixture(scope="module")
def pipeline():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AnomalyPipeline.create(
            "edge",
            random_weights=True,
            backend="torch",
            device="cpu",
            segmentation_size=(192, 192),
            synthesis_size=(32, 64),
        )


def _header(stamp: int, frame_id: str):
    time = TYPES["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
    return TYPES["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def _image_message(kind: str, array: np.ndarray, header, encoding: str):
    if kind == "compressed":
        if array.ndim == 3:
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(array, cv2.COLOR_RGB2BGR))
            fmt = "rgb8; jpeg compressed bgr8"
        else:
            ok, data = cv2.imencode(".png", array)
            fmt = "mono8; png compressed mono8"
        assert ok
        return TYPES[COMPRESSED](header=header, format=fmt, data=data.ravel()), COMPRESSED
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    message = TYPES[IMAGE](
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels,
        data=np.ascontiguousarray(array).ravel(),
    )
    return message, IMAGE


def _label(index: int) -> np.ndarray:
    label = np.zeros(SIZE, np.uint8)
    label[20:40, 10 + 8 * index : 40 + 8 * index] = 1
    label[:4] = 255
    return label


def write_bag(
    path: Path,
    storage: str = "mcap",
    kind: str = "raw",
    frames: int = 3,
    filler_bytes: int = 0,
    truth: bool = True,
) -> list[Written]:
    """A camera topic (and labels, and a filler topic) with bag time = stamp + 7 ms."""
    rng = np.random.default_rng(5)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    msgtype = IMAGE if kind == "raw" else COMPRESSED
    written = []
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        camera = writer.add_connection(CAMERA, msgtype, typestore=TS)
        labels = writer.add_connection(TRUTH, msgtype, typestore=TS) if truth else None
        filler = (
            writer.add_connection(FILLER, "std_msgs/msg/UInt8MultiArray", typestore=TS)
            if filler_bytes
            else None
        )
        for index in range(frames):
            stamp = START_NS + index * PERIOD_NS
            bag_time = stamp + RECEIVE_DELAY_NS
            frame_id = f"camera_{index}"
            image = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
            message, _ = _image_message(kind, image, _header(stamp, frame_id), "rgb8")
            raw = bytes(TS.serialize_cdr(message, msgtype))
            writer.write(camera, bag_time, raw)
            label = _label(index)
            if labels is not None:
                gt, _ = _image_message(kind, label, _header(stamp, frame_id), "mono8")
                writer.write(labels, bag_time, TS.serialize_cdr(gt, msgtype))
            if filler is not None:
                layout = TYPES["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
                blob = TYPES["std_msgs/msg/UInt8MultiArray"](
                    layout=layout, data=np.zeros(filler_bytes, np.uint8)
                )
                writer.write(filler, bag_time, TS.serialize_cdr(blob, filler.msgtype))
            written.append(Written(stamp, bag_time, frame_id, raw, label))
    return written


def read_back(path: Path, only: str | None = None) -> dict[str, list[tuple[int, object]]]:
    """Every topic of a bag (or ``only`` one): (bag time, message deserialised by rosbags)."""
    topics: dict[str, list[tuple[int, object]]] = {}
    with Reader(path) as reader:
        connections = [c for c in reader.connections if only in (None, c.topic)]
        for connection, timestamp, raw in reader.messages(connections):
            message = TS.deserialize_cdr(raw, connection.msgtype)
            topics.setdefault(connection.topic, []).append((timestamp, message))
    return topics


def _stamp(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def process(pipeline, source: Path, out: Path, **options) -> dict:
    processor = BagProcessor(
        lambda: pipeline, BagProcessOptions(source, CAMERA, out, **options), progress=False
    )
    return processor.run()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("kind", ["raw", "compressed"])
def test_every_output_topic_is_written_with_the_input_header_and_bag_time(
    tmp_path, pipeline, storage, kind
):
    source, out = tmp_path / "in", tmp_path / "out"
    written = write_bag(source, storage, kind)

    report = process(pipeline, source, out, gt_topic=TRUTH)

    assert (report["frames_in"], report["frames_out"], report["frames_bad"]) == (3, 3, 0)
    assert report["storage"] == storage
    assert list(out.glob("*.mcap" if storage == "mcap" else "*.db3"))
    topics = read_back(out)
    outputs = [f"{NODE}/{t}" for t in image_topics(False)]
    outputs += [f"{NODE}/timing", f"{NODE}/anomaly_summary", f"{NODE}/anomaly_objects"]
    assert set(topics) == {*outputs, CAMERA, TRUTH}
    for topic in outputs:
        messages = topics[topic]
        assert [t for t, _ in messages] == [w.bag_time for w in written], topic
        assert [_stamp(m.header) for _, m in messages] == [w.stamp for w in written], topic
        assert [m.header.frame_id for _, m in messages] == [w.frame_id for w in written], topic
    encodings = {"anomaly": "32FC1", "entropy": "32FC1", "semantic": "mono8"}
    encodings.update({"anomaly_mask": "mono8", "overlay": "rgb8", "semantic_color": "rgb8"})
    for topic, encoding in encodings.items():
        for _, message in topics[f"{NODE}/{topic}"]:
            assert message.encoding == encoding
            assert decode_array(message).shape[:2] == SIZE
    # the input is copied through untouched
    assert [bytes(TS.serialize_cdr(m, m.__msgtype__)) for _, m in topics[CAMERA]] == [
        w.raw for w in written
    ]
    assert report["topics_written"][f"{NODE}/anomaly"] == 3


def test_timing_and_summary_are_the_nodes_messages(tmp_path, pipeline):
    source, out = tmp_path / "in", tmp_path / "out"
    write_bag(source, frames=2)

    report = process(pipeline, source, out)

    topics = read_back(out)
    for _, array in topics[f"{NODE}/timing"]:
        (status,) = array.status
        assert status.name == f"{NODE}: frame timing"
        assert status.hardware_id == pipeline.device
        keys = [value.key for value in status.values]
        assert all(key.endswith("_ms") for key in keys)
        for stage in ("decode", "segmentation", "synthesis", "pipeline", "objects", "publish"):
            assert f"{stage}_ms" in keys
        values = {value.key: float(value.value) for value in status.values}
        assert values["total_ms"] >= values["pipeline_ms"] > 0
    for _, array in topics[f"{NODE}/anomaly_summary"]:
        (status,) = array.status
        assert status.name == f"{NODE}: anomaly summary"
        keys = {value.key for value in status.values}
        assert {"max_score_drivable", "objects", "alarm", "alarm_score"} <= keys
    assert set(report["stages_ms"]) >= {"decode", "segmentation", "objects", "publish", "total"}
    for stage in report["stages_ms"].values():
        assert 0 <= stage["p50"] <= stage["p95"]
    assert report["fps"] > 0


@pytest.mark.parametrize("kind", ["raw", "compressed"])
def test_the_bag_holds_what_the_pipeline_gives_and_metrics_equal_direct_ones(
    tmp_path, pipeline, kind
):
    source, out = tmp_path / "in", tmp_path / "out"
    written = write_bag(source, "mcap", kind, frames=3)
    decode = decode_image if kind == "raw" else decode_compressed

    report = process(pipeline, source, out, gt_topic=TRUTH)

    topics = read_back(out)
    params = NodeParameters()
    pipeline.set_postprocess(params.postprocess_options())  # fresh state, as the processor
    expected = AnomalyMetricAccumulator()
    try:
        for index, (_, camera) in enumerate(topics[CAMERA]):
            rgb = decode(camera)  # the node's decoder of this input
            direct = pipeline(rgb)
            anomaly = decode_array(topics[f"{NODE}/anomaly"][index][1])
            np.testing.assert_array_equal(anomaly, direct.anomaly)
            objects = analyze(direct, params.analysis_settings()).objects.objects
            overlay, _ = render_topic("overlay", direct, rgb, RenderSettings(), objects)
            np.testing.assert_array_equal(
                decode_array(topics[f"{NODE}/overlay"][index][1]), overlay
            )
            expected.update(anomaly, written[index].label)
    finally:
        pipeline.set_postprocess(PostprocessOptions())
    truth = expected.compute()
    metrics = report["ground_truth"]
    assert metrics["frames_scored"] == 3 and metrics["labels_bad"] == 0
    assert (metrics["ap"], metrics["fpr95"], metrics["auroc"]) == (
        truth.ap,
        truth.fpr95,
        truth.auroc,
    )
    assert metrics["frames_without_label"] == metrics["labels_without_frame"] == 0


def test_no_copy_input_other_storage_and_node_name(tmp_path, pipeline):
    source, out = tmp_path / "in", tmp_path / "out"
    write_bag(source, "sqlite3", frames=1)

    process(pipeline, source, out, storage="mcap", node_name="front/detector", copy_input=False)

    topics = read_back(out)
    assert list(out.glob("*.mcap"))
    assert CAMERA not in topics and TRUTH not in topics
    assert "/front/detector/anomaly" in topics
    with pytest.raises(ValueError, match="not a valid ROS name"):
        BagProcessOptions(source, CAMERA, out, node_name="9 lives")


def test_bad_frames_and_labels_are_counted_with_their_reason(tmp_path, pipeline):
    source, out = tmp_path / "in", tmp_path / "out"
    with Writer(source, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        camera = writer.add_connection(CAMERA, COMPRESSED, typestore=TS)
        labels = writer.add_connection(TRUTH, COMPRESSED, typestore=TS)
        good = np.random.default_rng(1).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
        for index in range(4):
            stamp = START_NS + index * PERIOD_NS
            message, _ = _image_message("compressed", good, _header(stamp, "cam"), "rgb8")
            raw = bytes(TS.serialize_cdr(message, COMPRESSED))
            if index == 1:
                raw = raw[:8] + b"\xff" * 16  # not a CompressedImage any more
            if index == 2:
                message.data = message.data[: len(message.data) // 2]  # a cut-off JPEG
                raw = bytes(TS.serialize_cdr(message, COMPRESSED))
            writer.write(camera, stamp, raw)
            label = _label(index) if index != 3 else np.full(SIZE, 7, np.uint8)
            gt, _ = _image_message("compressed", label, _header(stamp, "cam"), "mono8")
            writer.write(labels, stamp, TS.serialize_cdr(gt, COMPRESSED))

    report = process(pipeline, source, out, gt_topic=TRUTH)

    assert (report["frames_in"], report["frames_out"], report["frames_bad"]) == (4, 2, 2)
    first, second = report["bad_frames"]
    assert "corrupt sensor_msgs/msg/CompressedImage message" in first
    assert f"bag time {START_NS + PERIOD_NS}" in first
    assert "truncated JPEG" in second
    truth = report["ground_truth"]
    assert (
        truth["labels_bad"] == 1
        and "labels must be 0, 1 or 255; found [7]" in truth["bad_labels"][0]
    )
    assert truth["frames_scored"] == 1  # frame 0; frame 3 has bad labels, 1 and 2 are bad frames
    assert truth["labels_without_frame"] == 2 and truth["frames_without_label"] == 1
    assert len(read_back(out, f"{NODE}/anomaly")[f"{NODE}/anomaly"]) == 2


def test_a_missing_topic_lists_the_topics_the_bag_has(tmp_path, pipeline, capsys):
    source = tmp_path / "in"
    write_bag(source, frames=1)

    with pytest.raises(BagError, match=rf"has no topic /nope; it has: .*{CAMERA} \({IMAGE}\)"):
        BagProcessor(lambda: pipeline, BagProcessOptions(source, "/nope", tmp_path / "o")).run()
    code = main(["bag", "process", str(source), "--topic", "/nope", "--out", str(tmp_path / "o")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("synboost bag: error: bag ") and "Traceback" not in error
    assert f"{TRUTH} ({IMAGE})" in error
    assert not (tmp_path / "o").exists()


def _read_partial(out: Path) -> list:
    """The anomaly maps of an output bag, read with rosbags: it must be complete."""
    assert (out / "metadata.yaml").is_file()
    return [decode_array(m) for _, m in read_back(out).get(f"{NODE}/anomaly", [])]


def test_a_truncated_mcap_is_processed_up_to_the_break_and_the_output_stays_readable(
    tmp_path, pipeline
):
    source, out = tmp_path / "in", tmp_path / "out"
    write_bag(source, frames=8, filler_bytes=400_000)  # 1 MiB chunks: about 3 frames each
    (storage,) = source.glob("*.mcap")
    data = storage.read_bytes()
    storage.write_bytes(data[: len(data) // 2])

    with pytest.raises(BagError, match="truncated or corrupt") as error:
        process(pipeline, source, out)

    message = str(error.value)
    assert str(source) in message and "are in" in message and "readable" in message
    maps = _read_partial(out)
    assert 1 <= len(maps) < 8
    assert f"the {len(maps)} frames processed before it" in message
    assert all(m.shape == SIZE for m in maps)
    assert len(read_back(out)[FILLER]) >= len(maps)  # copied through up to the break


def test_corrupt_bytes_half_way_end_the_run_with_a_readable_output(tmp_path, pipeline, capsys):
    source, out = tmp_path / "in", tmp_path / "out"
    written = write_bag(source, frames=8, filler_bytes=400_000)
    (storage,) = source.glob("*.mcap")
    data = bytearray(storage.read_bytes())
    record = data.find(written[5].raw) - 30  # the length of frame 5's message record
    data[record : record + 8] = (2**40).to_bytes(8, "little")
    storage.write_bytes(bytes(data))

    code = main(["bag", "process", str(source), "--topic", CAMERA, "--out", str(out), *CLI_MODEL])

    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"synboost bag: error: bag {source} is corrupt after ")
    maps = _read_partial(out)
    assert 1 <= len(maps) <= 5
    assert f"the {len(maps)} frames processed before it are in {out}" in error


class _Interrupting:
    """The pipeline, until its ``calls``-th frame: then Ctrl-C."""

    def __init__(self, pipeline, calls: int) -> None:
        self._pipeline, self._left = pipeline, calls

    def __call__(self, *args, **kwargs):
        self._left -= 1
        if self._left == 0:
            raise KeyboardInterrupt
        return self._pipeline(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._pipeline, name)


def test_an_interrupt_leaves_a_complete_bag(tmp_path, pipeline):
    source, out = tmp_path / "in", tmp_path / "out"
    write_bag(source, "sqlite3", frames=4)
    processor = BagProcessor(
        lambda: _Interrupting(pipeline, 3), BagProcessOptions(source, CAMERA, out), progress=False
    )

    with pytest.raises(KeyboardInterrupt):
        processor.run()

    assert processor.frames_out == 2
    assert len(_read_partial(out)) == 2
    assert not pipeline.postprocess.temporal_fusion  # reset after the run


def test_the_command_prints_json_or_a_summary(tmp_path, capsys):
    source = tmp_path / "in"
    write_bag(source, "sqlite3", "compressed", frames=2)
    base = ["bag", "process", str(source), "--topic", CAMERA, "--gt-topic", TRUTH, *CLI_MODEL]

    assert (
        main([*base, "--out", str(tmp_path / "a"), "--json", "-p", "temporal_fusion:=false"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["frames_out"] == 2 and report["storage"] == "sqlite3"
    assert "temporal" not in report["stages_ms"]
    assert 0.0 <= report["ground_truth"]["ap"] <= 1.0

    assert main([*base, "--out", str(tmp_path / "b"), "-p", "publish_synthesized:=true"]) == 0
    printed = capsys.readouterr().out
    assert "2 of 2 frames of /cam/image_raw processed (0 bad)" in printed and "FPS" in printed
    assert "temporal" in printed and "p50 / p95" in printed
    assert "ground truth /cam/anomaly_gt: 2 frames scored, AP " in printed
    assert f"{NODE}/synthesized" in read_back(tmp_path / "b")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("preset:=light", "preset is a model option: use --preset"),
        ("input_qos:=reliable", "input_qos has no meaning offline"),
        ("temporal_fusion:=maybe", "expected true or false"),
        ("nonsense", "is not NAME:=VALUE"),
        ("anomaly_threshold:=2", "anomaly_threshold"),
    ],
)
def test_bad_parameters_are_refused_by_name(tmp_path, setting, message, capsys):
    source = tmp_path / "in"
    write_bag(source, frames=1)
    args = ["bag", "process", str(source), "--topic", CAMERA, "--out", str(tmp_path / "o")]

    assert main([*args, *CLI_MODEL, "-p", setting]) == 2
    assert message in capsys.readouterr().err


def test_installed_message_definitions_are_found_for_types_rosbags_lacks(tmp_path, monkeypatch):
    prefix = tmp_path / "prefix"
    (prefix / "share/ament_index/resource_index/packages").mkdir(parents=True)
    (prefix / "share/ament_index/resource_index/packages/fake_msgs").touch()
    (prefix / "share/fake_msgs/msg").mkdir(parents=True)
    (prefix / "share/fake_msgs/msg/Part.msg").write_text("int32 value\n")
    (prefix / "share/fake_msgs/msg/Whole.msg").write_text("std_msgs/Header header\nPart[] parts\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))

    with OutputBag(tmp_path / "out", "mcap") as out:
        out.add_topic(BagTopic("/whole", "fake_msgs/msg/Whole", None))
        with pytest.raises(BagError, match="no message definitions of other_msgs"):
            out.add_topic(BagTopic("/other", "other_msgs/msg/Thing", None))

    with Reader(tmp_path / "out") as reader:
        (connection,) = reader.connections
    assert "Part[] parts" in connection.msgdef.data and "int32 value" in connection.msgdef.data


def test_the_demo_reads_bags_and_scores_through_the_same_code(tmp_path, pipeline):
    drive, out = tmp_path / "drive", tmp_path / "out"
    make_drive_bag(drive, DriveSpec(frames=3, size=SIZE))

    report = BagProcessor(
        lambda: pipeline,
        BagProcessOptions(drive, IMAGE_TOPIC, out, gt_topic=LABEL_TOPIC),
        progress=False,
    ).run()

    # The demo report's metrics of the same anomaly maps against the same labels.
    frames = {
        _stamp(m.header): FrameOutputs(anomaly=decode_array(m))
        for _, m in read_back(out)[f"{NODE}/anomaly"]
    }
    replayed = {frame.stamp_ns: frame for frame in load_replay_frames(drive)}
    demo = anomaly_metrics(frames, replayed)
    truth = report["ground_truth"]
    for key in ("frames_scored", "ap", "fpr95", "auroc", "pixels", "components"):
        assert demo[key] == truth[key], key
    # The demo's bag reading gives the same clear errors.
    (storage,) = drive.glob("*.mcap")
    storage.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 40)
    with pytest.raises(BagError, match=f"cannot read bag {drive}"):
        list(read_drive_bag(drive))
