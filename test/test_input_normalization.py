"""Each network's input normalisation: the arithmetic, its use in the stages and losses, and
its export into the ONNX graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_helpers import TINY_CONFIG, single_torch_thread

from synboost_ros.config import IMAGENET_NORMALIZATION, InputNormalization, PipelineConfig
from synboost_ros.model_loading import random_model
from synboost_ros.nn.input_normalization import normalize_input
from synboost_ros.nn.label_maps import one_hot
from synboost_ros.nn.losses import VGGPerceptualLoss
from synboost_ros.nn.perceptual import PERCEPTUAL_TAPS
from synboost_ros.nn.vgg import VGGFeatures
from synboost_ros.stages import DissimilarityStage, SegmentationStage
from synboost_ros.training.inference_maps import (
    MapExtractor,
    dissimilarity_probability,
    image_tensor,
)
from synboost_ros.uncertainty import class_probabilities, softmax_entropy

single_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)

# Caffe-style checkpoints: BGR 0-255, mean-subtracted.
BGR_255 = InputNormalization("bgr", 255.0, (104.0, 116.7, 122.7), (1.0, 1.0, 1.0))
# EfficientNet-Lite: (x / 255 - 0.5) / 0.5 on RGB.
LITE = InputNormalization("rgb", 1.0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _by_hand(image: np.ndarray, normalization: InputNormalization) -> np.ndarray:
    """The normalisation written out per channel in float32 NumPy."""
    order = (2, 1, 0) if normalization.channel_order == "bgr" else (0, 1, 2)
    out = np.empty_like(image)
    for channel, source in enumerate(order):
        value = image[:, source] * np.float32(normalization.scale)
        out[:, channel] = (value - np.float32(normalization.mean[channel])) / np.float32(
            normalization.std[channel]
        )
    return out


@pytest.mark.parametrize(
    "normalization",
    [
        BGR_255,
        InputNormalization("bgr", 255.0, (104.0, 116.7, 122.7), (57.4, 57.1, 58.4)),
        LITE,
        IMAGENET_NORMALIZATION,
    ],
)
def test_normalisation_equals_the_hand_computation(normalization) -> None:
    image = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    result = normalize_input(image, normalization)
    assert result.dtype == torch.float32
    assert np.array_equal(result.numpy(), _by_hand(image.numpy(), normalization))


def test_bgr_255_puts_blue_first_in_camera_units() -> None:
    image = torch.zeros(1, 3, 1, 1)
    image[0, :, 0, 0] = torch.tensor([1.0, 0.5, 0.0])  # RGB
    result = normalize_input(image, BGR_255)[0, :, 0, 0]
    assert result.tolist() == pytest.approx([0.0 - 104.0, 127.5 - 116.7, 255.0 - 122.7])
    lite = normalize_input(image, LITE)[0, :, 0, 0]
    assert lite.tolist() == pytest.approx([1.0, 0.0, -1.0])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"channel_order": "rgba"}, "channel order"),
        ({"scale": 0.0}, "scale"),
        ({"mean": (1.0, 2.0)}, "mean"),
        ({"std": (1.0, 0.0, 1.0)}, "std"),
    ],
)
def test_bad_normalisations_are_refused(changes, message) -> None:
    fields = {"channel_order": "rgb", "scale": 1.0, "mean": (0, 0, 0), "std": (1, 1, 1)}
    with pytest.raises(ValueError, match=message):
        InputNormalization(**{**fields, **changes})


def test_config_round_trips_the_normalisations_and_defaults_to_imagenet() -> None:
    config = TINY_CONFIG.replace(
        segmentation_normalization=BGR_255,
        dissimilarity_image_normalization=LITE,
        perceptual_normalization=BGR_255,
    )
    assert PipelineConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["segmentation_normalization"] == {
        "channel_order": "bgr",
        "scale": 255.0,
        "mean": (104.0, 116.7, 122.7),
        "std": (1.0, 1.0, 1.0),
    }
    plain = PipelineConfig(preset="x")
    assert (
        plain.segmentation_normalization
        == plain.dissimilarity_image_normalization
        == plain.perceptual_normalization
        == IMAGENET_NORMALIZATION
    )


@pytest.fixture(scope="module")
def bgr_model():
    config = TINY_CONFIG.replace(
        segmentation_normalization=BGR_255,
        dissimilarity_image_normalization=LITE,
        perceptual_normalization=BGR_255,
    )
    return random_model(config, seed=2)


def test_stages_normalise_with_the_configured_statistics(bgr_model) -> None:
    generator = torch.Generator().manual_seed(1)
    config = bgr_model.config
    image = torch.rand(1, 3, *config.segmentation_size, generator=generator)
    with torch.no_grad():
        _, entropy, _ = SegmentationStage(bgr_model).eval()(image)
        logits = bgr_model.segmentation.eval()(normalize_input(image, BGR_255))
    assert torch.allclose(entropy, softmax_entropy(class_probabilities(logits.float())), atol=1e-5)

    height, width = config.synthesis_size
    real = torch.rand(1, 3, height, width, generator=generator)
    fake = torch.rand(1, 3, height, width, generator=generator)
    semantic = torch.randint(0, config.num_classes, (1, height, width), dtype=torch.int32)
    maps = torch.rand(1, 1, height, width, generator=generator)
    weights = torch.tensor([1.0, 0.0, 0.0, 0.0])
    stage = DissimilarityStage(bgr_model).eval()
    assert stage.perceptual.normalization == BGR_255
    with torch.no_grad():
        perceptual, dissimilarity, _ = stage(real, fake, semantic, maps, maps, weights)
        expected = bgr_model.dissimilarity.eval()(
            normalize_input(real, LITE),
            normalize_input(fake, LITE),
            one_hot(semantic, config.num_classes),
            torch.cat([maps, perceptual, maps], dim=1),
        )
    assert torch.equal(dissimilarity, torch.softmax(expected.float(), dim=1)[:, 1:2])


def test_training_and_the_stage_compute_the_same_dissimilarity(bgr_model) -> None:
    config = bgr_model.config
    cpu = torch.device("cpu")
    image = np.random.default_rng(4).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    maps = MapExtractor(bgr_model, cpu)(image)
    net = bgr_model.dissimilarity.eval()
    probability = dissimilarity_probability(net, maps, cpu, LITE)
    with torch.no_grad():
        _, dissimilarity, _ = DissimilarityStage(bgr_model).eval()(
            image_tensor(maps.image),
            torch.from_numpy(maps.synthesized)[None],
            torch.from_numpy(maps.semantic.astype(np.int32))[None],
            torch.from_numpy(maps.entropy)[None, None],
            torch.from_numpy(maps.distance)[None, None],
            torch.tensor([1.0, 0.0, 0.0, 0.0]),
        )
    assert probability.shape == config.synthesis_size
    np.testing.assert_allclose(probability, dissimilarity[0, 0].numpy(), atol=1e-6)


def test_vgg_loss_uses_its_normalisation() -> None:
    torch.manual_seed(0)
    vgg = VGGFeatures(19, PERCEPTUAL_TAPS, 1 / 16)
    generated = torch.rand(1, 3, 16, 16) * 2 - 1
    target = torch.rand(1, 3, 16, 16) * 2 - 1
    imagenet = VGGPerceptualLoss(vgg)(generated, target)
    bgr = VGGPerceptualLoss(vgg, BGR_255)
    assert bgr.normalization == BGR_255
    assert not torch.isclose(bgr(generated, target), imagenet)


def test_bgr_graphs_export_and_match_torch(bgr_model, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from synboost_ros.export import export_onnx

    paths = export_onnx(bgr_model, tmp_path)
    config = bgr_model.config
    rng = np.random.default_rng(3)
    image = rng.random((1, 3, *config.segmentation_size), dtype=np.float32)
    session = ort.InferenceSession(str(paths["segmentation"]), providers=["CPUExecutionProvider"])
    _, onnx_entropy, _ = session.run(None, {"image": image})
    with torch.no_grad():
        _, entropy, _ = SegmentationStage(bgr_model).eval()(torch.from_numpy(image))
    assert np.allclose(onnx_entropy, entropy.numpy(), atol=1e-4)

    height, width = config.synthesis_size
    inputs = {
        "image": rng.random((1, 3, height, width), dtype=np.float32),
        "synthesized": rng.random((1, 3, height, width), dtype=np.float32),
        "semantic": rng.integers(0, config.num_classes, (1, height, width), dtype=np.int32),
        "entropy": rng.random((1, 1, height, width), dtype=np.float32),
        "distance": rng.random((1, 1, height, width), dtype=np.float32),
        "ensemble_weights": np.array([0.5, 0.0, 0.5, 0.0], dtype=np.float32),
    }
    session = ort.InferenceSession(str(paths["dissimilarity"]), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(None, inputs)
    with torch.no_grad():
        torch_outputs = DissimilarityStage(bgr_model).eval()(
            *(torch.from_numpy(value) for value in inputs.values())
        )
    for onnx_output, torch_output in zip(onnx_outputs, torch_outputs, strict=True):
        assert np.allclose(onnx_output, torch_output.numpy(), atol=1e-4)
