"""The runtime without torch: onnxruntime and TensorRT run the graphs shipped with the default
weights.

Each run that must not need torch happens in a subprocess where importing torch fails as it
does where torch is not installed (a ``torch`` package on PYTHONPATH that raises
``ModuleNotFoundError``), and ends by checking that no torch module was loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from synboost_ros.cli.main import main
from synboost_ros.graphs import (
    CHECKSUMS_NAME,
    SOURCE_NAME,
    WEIGHTS_GRAPHS_DIR,
    graph_source,
    source_problem,
)
from synboost_ros.manifest import read_manifest
from synboost_ros.model_source import ModelSource
from synboost_ros.pipeline import AnomalyPipeline
from synboost_ros.self_test import self_test_image
from synboost_ros.shipped import default_weights_path
from synboost_ros.torch_missing import TorchMissingError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "edge"
HEATMAPS = ("entropy", "distance", "perceptual", "dissimilarity", "anomaly")
# Shipped graphs on onnxruntime against the torch networks, PNGs of 8-bit heatmaps: measured
# at most 4 levels apart on a few pixels.
MAX_LEVELS = 8
MAX_DIFFERENT_SHARE = 0.005
# The float maps themselves: measured at most 4e-6 apart; semantic ids identical, the
# synthesized image within one level.
MAP_TOLERANCE = 1e-4
MAPS = ("semantic", *HEATMAPS, "synthesized")
NO_TORCH_CHECK = (
    "import sys; loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'torch'); "
    "assert not loaded, f'torch was imported: {loaded}'"
)


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory) -> dict[str, str]:
    """The environment of a subprocess in which ``import torch`` fails."""
    blocker = tmp_path_factory.mktemp("no_torch")
    (blocker / "torch").mkdir()
    (blocker / "torch" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
    )
    path = os.pathsep.join([str(blocker), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "SYNBOOST_CACHE_DIR": str(blocker / "cache")}


def run_without_torch(env: dict[str, str], script: str, timeout: float = 300) -> tuple[int, str]:
    """Run ``script`` (then the no-torch check) in a subprocess; return its exit code and
    stderr. The script's own exit code wins when it exits early."""
    code = f"{textwrap.dedent(script)}\n{NO_TORCH_CHECK}\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return done.returncode, done.stdout + done.stderr


def cli_script(argv: list[str]) -> str:
    """A script running ``synboost argv`` that keeps its exit code for the end."""
    return f"from synboost_ros.cli.main import main\ncode = main({argv!r})\nprint('exit', code)"


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"{path} was not written"
    return image.astype(np.int16)


def test_infer_without_torch_writes_the_maps_of_the_torch_networks(no_torch, tmp_path) -> None:
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), cv2.cvtColor(self_test_image(), cv2.COLOR_RGB2BGR))
    lean, full = tmp_path / "lean", tmp_path / "full"
    argv = ["infer", str(frame), "--out", str(lean), "--backend", "onnxruntime"]

    code, output = run_without_torch(no_torch, cli_script(argv))

    assert code == 0 and "exit 0" in output, output
    assert "onnxruntime on cpu" in output
    assert main(["infer", str(frame), "--out", str(full), "--backend", "torch"]) == 0
    for name in ("semantic", *HEATMAPS, "synthesized", "overlay"):
        lean_map = read_png(lean / f"frame_{name}.png")
        full_map = read_png(full / f"frame_{name}.png")
        assert lean_map.shape == full_map.shape, name
        difference = np.abs(lean_map - full_map).max(axis=-1)
        assert difference.max() <= MAX_LEVELS, (name, difference.max())
        assert (difference > 0).mean() <= MAX_DIFFERENT_SHARE, (name, (difference > 0).mean())


def test_the_pipeline_without_torch_gives_the_maps_of_the_torch_networks(no_torch, tmp_path):
    script = f"""
        import numpy as np
        from synboost_ros.pipeline import AnomalyPipeline
        from synboost_ros.self_test import self_test_image

        result = AnomalyPipeline.create(backend="onnxruntime", device="cpu")(self_test_image())
        maps = {{name: getattr(result, name) for name in {MAPS!r}}}
        np.savez({str(tmp_path / "lean.npz")!r}, **maps)
    """

    code, output = run_without_torch(no_torch, script)

    assert code == 0, output
    lean = np.load(tmp_path / "lean.npz")
    full = AnomalyPipeline.create(backend="torch", device="cpu")(self_test_image())
    assert np.array_equal(lean["semantic"], full.semantic)
    synthesized = np.abs(lean["synthesized"].astype(np.int16) - full.synthesized.astype(np.int16))
    assert synthesized.max() <= 1
    for name in HEATMAPS:
        np.testing.assert_allclose(
            lean[name], getattr(full, name), atol=MAP_TOLERANCE, err_msg=name
        )


def test_tensorrt_without_torch_builds_and_runs_engines_of_the_shipped_graphs(no_torch, tmp_path):
    """With stand-ins for TensorRT and cuda-python (``fake_tensorrt``: engines that run their
    graph with onnxruntime on fake device memory): fp16 and int8 engines (calibrated on a
    folder of images) are built from the shipped graphs and run, and ``synboost export
    tensorrt`` then loads them from the engine cache, all without torch."""
    images = tmp_path / "calibration"
    images.mkdir()
    frame = cv2.cvtColor(self_test_image(), cv2.COLOR_RGB2BGR)
    for index, image in enumerate((frame, frame[:, ::-1])):
        cv2.imwrite(str(images / f"{index}.png"), image)
    script = f"""
        import json, sys
        sys.path.insert(0, {str(ROOT / "test")!r})
        import numpy as np
        from fake_tensorrt import fake_modules
        sys.modules.update(fake_modules())
        from synboost_ros.cli.main import main
        from synboost_ros.pipeline import AnomalyPipeline
        from synboost_ros.self_test import self_test_image

        trt, maps = sys.modules["tensorrt"], {{}}
        for precision, calibration in (("fp16", None), ("int8", {str(images)!r})):
            pipeline = AnomalyPipeline.create(
                backend="tensorrt", device="cuda", precision=precision, calibration=calibration
            )
            assert (pipeline.backend_name, pipeline.precision) == ("tensorrt", precision)
            result = pipeline(self_test_image())
            maps.update({{f"{{precision}}_{{name}}": getattr(result, name) for name in {MAPS!r}}})
        np.savez({str(tmp_path / "engines.npz")!r}, **maps)
        built = [str(path) for path in trt.builds]
        code = main(["export", "tensorrt", "--precision", "fp16"])
        summary = {{"built": built, "after_export": len(trt.builds), "calibrated": trt.calibrated}}
        with open({str(tmp_path / "summary.json")!r}, "w") as out:
            json.dump({{**summary, "export": code}}, out)
    """

    code, output = run_without_torch(no_torch, script)

    assert code == 0, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    shipped = SHIPPED / WEIGHTS_GRAPHS_DIR
    expected = [str(shipped / f"{stage}.onnx") for stage in ("segmentation", "synthesis")]
    assert summary["built"] == 2 * [*expected, str(shipped / "dissimilarity.onnx")]
    assert summary["after_export"] == 6 and summary["export"] == 0  # loaded, not rebuilt
    assert summary["calibrated"] == 2 * 3  # each image, once for each stage engine
    recorded = json.loads((shipped / CHECKSUMS_NAME).read_text())
    engines = Path(no_torch["SYNBOOST_CACHE_DIR"]) / "tensorrt"
    keys = [json.loads(p.read_text())["key"] for p in engines.glob("*.json")]
    assert len(keys) == 6 and len(list(engines.glob("*.calibration"))) == 3
    for key in keys:  # each engine keyed by its graph's sha256 and this TensorRT's version
        assert key["graph_fingerprint"] == recorded[f"{key['stage']}.onnx"]
        assert (key["trt_version"], key["gpu_name"]) == ("8.6.1", "Fake Orin")
    lean = np.load(tmp_path / "engines.npz")
    reference = AnomalyPipeline.create(backend="onnxruntime", device="cpu")(self_test_image())
    for precision in ("fp16", "int8"):  # the stand-in engines compute in fp32
        for name in MAPS:
            want = getattr(reference, name)
            np.testing.assert_allclose(lean[f"{precision}_{name}"], want, atol=1e-6, err_msg=name)


def test_train_without_torch_says_so_in_one_line(no_torch, tmp_path) -> None:
    argv = ["train", "seg", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--steps", "1"]

    code, output = run_without_torch(no_torch, cli_script(argv))

    assert code == 0 and "exit 2" in output, output
    lines = [line for line in output.splitlines() if "error" in line]
    assert lines == [
        "synboost train: error: synboost train needs PyTorch, which is not installed: pip install "
        "'synboost_ros[torch]' (backends onnxruntime and tensorrt run the shipped model without "
        "it)"
    ]
    assert "Traceback" not in output


@pytest.mark.parametrize("backend", ["onnxruntime", "tensorrt"])
def test_without_torch_graphs_that_do_not_fit_are_named(no_torch, tmp_path, backend) -> None:
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), np.zeros((8, 8, 3), np.uint8))
    argv = ["infer", str(frame), "--out", str(tmp_path), "--backend", backend, "--device", "cuda"]
    fakes = (  # TensorRT and cuda-python stand-ins (fake_tensorrt), as if installed
        f"import sys; sys.path.insert(0, {str(ROOT / 'test')!r})\n"
        "from fake_tensorrt import fake_modules; sys.modules.update(fake_modules())\n"
    )
    if backend == "onnxruntime":
        argv, fakes = argv[:-2], ""

    script = fakes + cli_script([*argv, "--segmentation-size", "64x128"])
    code, output = run_without_torch(no_torch, script)

    assert code == 0 and "exit 2" in output, output
    (line,) = [line for line in output.splitlines() if "error" in line]
    assert f"without PyTorch, backend {backend} runs only the ONNX graphs" in line
    assert "exported for another configuration (segmentation_size differ)" in line
    assert "synboost export onnx --weights W --out W/onnx" in line


def test_the_node_starts_on_onnxruntime_without_torch_and_processes_a_frame(no_torch) -> None:
    pytest.importorskip("rclpy")
    from ros_test_env import ros_environment

    script = """
        import time
        import numpy as np
        import rclpy
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image
        from synboost_ros.ros.node import AnomalyNode

        context = rclpy.Context()
        rclpy.init(context=context)
        params = [Parameter("backend", value="onnxruntime"), Parameter("device", value="cpu")]
        node = AnomalyNode("lean", namespace="/torch_free", context=context,
                           parameter_overrides=params)
        assert node._self_test is not None and node._self_test.passed, node._self_test
        assert node._pipeline.backend_name == "onnxruntime"
        tester = rclpy.create_node("tester", namespace="/torch_free", context=context)
        received = []
        tester.create_subscription(Image, "/torch_free/lean/anomaly", received.append, 10)
        publisher = tester.create_publisher(Image, "/torch_free/image", 10)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(tester)
        rgb = np.full((48, 64, 3), 120, np.uint8)
        frame = Image(height=48, width=64, encoding="rgb8", step=64 * 3, data=rgb.tobytes())
        frame.header.frame_id = "camera"
        deadline = time.monotonic() + 120
        while not received and time.monotonic() < deadline:
            publisher.publish(frame)
            executor.spin_once(timeout_sec=0.5)
        assert received, "no anomaly map was published"
        assert (received[0].height, received[0].width) == (48, 64)
        print("node processed a frame:", node._self_test.describe())
        node.destroy_node()
        tester.destroy_node()
        rclpy.shutdown(context=context)
    """
    env = {**no_torch, **ros_environment()}

    code, output = run_without_torch(env, script)

    assert code == 0, output
    assert "node processed a frame: passed" in output


def test_the_shipped_graphs_are_those_of_the_shipped_weights() -> None:
    manifest = read_manifest(SHIPPED)
    source = graph_source(manifest.config, manifest.weights_identity())

    problem = source_problem(SHIPPED / WEIGHTS_GRAPHS_DIR, source)
    assert problem is None, (
        f"models/edge/onnx {problem}: after changing the shipped weights, export their graphs "
        "again with `synboost export onnx --out models/edge/onnx`"
    )
    assert default_weights_path("edge") == SHIPPED / "manifest.json"


def copy_shipped(tmp_path: Path) -> Path:
    """A copy of the shipped weights folder with its graphs."""
    folder = tmp_path / "edge"
    shutil.copytree(SHIPPED, folder)
    return folder


def test_a_tampered_graph_is_not_run(tmp_path) -> None:
    folder = copy_shipped(tmp_path)
    graph = folder / WEIGHTS_GRAPHS_DIR / "synthesis.onnx"
    graph.write_bytes(graph.read_bytes()[:-10])
    source = ModelSource.open("edge", folder)

    problem = source_problem(folder / WEIGHTS_GRAPHS_DIR, source.graphs_source)

    assert problem is not None and problem.startswith("synthesis.onnx has sha256 ")


def test_graphs_of_other_weights_are_not_run(tmp_path) -> None:
    folder = copy_shipped(tmp_path)
    recorded = json.loads((folder / WEIGHTS_GRAPHS_DIR / SOURCE_NAME).read_text())
    recorded["weights"]["sha256"]["synthesis"] = "0" * 64
    (folder / WEIGHTS_GRAPHS_DIR / SOURCE_NAME).write_text(json.dumps(recorded))

    problem = source_problem(
        folder / WEIGHTS_GRAPHS_DIR, ModelSource.open("edge", folder).graphs_source
    )

    assert problem == "were exported from other weights"


def test_graphs_recorded_before_a_new_config_field_still_match_only_at_its_default(tmp_path):
    folder = copy_shipped(tmp_path)
    source_path = folder / WEIGHTS_GRAPHS_DIR / SOURCE_NAME
    recorded = json.loads(source_path.read_text())
    recorded["config"]["dissimilarity"].pop("encoder", None)  # as written before the field was
    source_path.write_text(json.dumps(recorded))
    source = ModelSource.open("edge", folder).graphs_source

    assert source_problem(folder / WEIGHTS_GRAPHS_DIR, source) is None
    recorded["config"]["dissimilarity"]["correlation"] = "sum"  # a field that does differ
    source_path.write_text(json.dumps(recorded))
    problem = source_problem(folder / WEIGHTS_GRAPHS_DIR, source)
    assert problem == "were exported for another configuration (dissimilarity differ)"


def test_without_graphs_or_torch_the_error_says_what_to_do(tmp_path) -> None:
    folder = copy_shipped(tmp_path)
    (folder / WEIGHTS_GRAPHS_DIR / CHECKSUMS_NAME).unlink()
    manifest = read_manifest(folder)

    def no_torch():
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    graphs = folder / WEIGHTS_GRAPHS_DIR
    source = ModelSource(manifest.config, no_torch, graphs, manifest.weights_identity())
    with pytest.raises(TorchMissingError) as raised:
        source.onnx_graphs("onnxruntime")

    message = str(raised.value)
    assert f"{folder / WEIGHTS_GRAPHS_DIR} has no {CHECKSUMS_NAME}" in message
    assert "pip install 'synboost_ros[torch]'" in message


def test_with_torch_other_sizes_run_graphs_from_the_export_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SYNBOOST_CACHE_DIR", str(tmp_path / "cache"))
    sizes = {"segmentation_size": (192, 256), "synthesis_size": (64, 128)}
    source = ModelSource.open("edge", SHIPPED, **sizes)

    graphs = source.onnx_graphs("onnxruntime")

    assert source.config == read_manifest(SHIPPED).config.replace(**sizes)
    assert all(path.is_relative_to(tmp_path / "cache") for path in graphs.values())


def test_the_runtime_extra_installs_no_torch() -> None:
    from distutils.core import run_setup

    import setuptools  # noqa: F401  (provides distutils on Python 3.12 and later)

    setup = run_setup(str(ROOT / "setup.py"), stop_after="init")
    lean = [*setup.install_requires, *setup.extras_require["runtime"]]

    assert not [r for r in lean if r.startswith(("torch", "safetensors"))], lean
    assert any(r.startswith("torch") for r in setup.extras_require["torch"])


def test_exported_next_to_the_weights_the_graphs_are_run(tmp_path, monkeypatch) -> None:
    from synboost_ros.model_loading import random_model
    from synboost_ros.weights import save_weights

    monkeypatch.setenv("SYNBOOST_CACHE_DIR", str(tmp_path / "cache"))
    config = read_manifest(SHIPPED).config.replace(
        segmentation_size=(192, 256), synthesis_size=(64, 128)
    )
    weights = tmp_path / "mine"
    save_weights(random_model(config), weights)
    graphs = weights / WEIGHTS_GRAPHS_DIR
    argv = ["export", "onnx", "--weights", str(weights), "--out", str(graphs)]
    assert main(argv) == 0

    paths = ModelSource.open("edge", weights).onnx_graphs("onnxruntime")

    assert set(paths.values()) == {graphs / f"{stage}.onnx" for stage in paths}
    assert not (tmp_path / "cache").exists()
