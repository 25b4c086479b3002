"""Dissimilarity network: shapes, use of every input, validation and ONNX export."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.config import DissimilarityConfig, get_preset
from synboost_ros.nn.dissimilarity import DissimilarityNet

TINY = DissimilarityConfig(
    vgg_width=0.0625,
    semantic_widths=(4, 4, 8, 8),
    prior_widths=(4, 8, 8, 16),
    fusion_widths=(4, 8, 8, 16),
    spade_hidden=4,
)
NUM_CLASSES = 5


def make_inputs(
    num_classes: int, height: int, width: int, batch: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, num_classes, (batch, height, width))
    semantic = F.one_hot(ids, num_classes).permute(0, 3, 1, 2).float()
    image = torch.randn(batch, 3, height, width)
    synthesized = torch.randn(batch, 3, height, width)
    uncertainty = torch.rand(batch, 3, height, width)
    return image, synthesized, semantic, uncertainty


def well_scaled(net: DissimilarityNet) -> DissimilarityNet:
    """He-initialise all convs, in eval mode.

    PyTorch's default init shrinks activations layer by layer, so after the randomly
    initialised VGG the coarse decoder channels are nearly constant and instance norm
    amplifies float32 rounding (~1e-4 torch/onnxruntime gaps). Pretrained or He-scaled
    weights keep the signal, as a trained net does.
    """
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return net.eval()


@pytest.fixture(scope="module")
def tiny_net() -> DissimilarityNet:
    torch.manual_seed(0)
    return well_scaled(DissimilarityNet(NUM_CLASSES, TINY))


def test_tiny_output_shape(tiny_net: DissimilarityNet) -> None:
    with torch.no_grad():
        logits = tiny_net(*make_inputs(NUM_CLASSES, 16, 24, batch=2))
    assert logits.shape == (2, 2, 16, 24)
    assert torch.isfinite(logits).all()


def test_edge_preset_output_shape() -> None:
    preset = get_preset("edge")
    net = DissimilarityNet(preset.num_classes, preset.dissimilarity).eval()
    with torch.no_grad():
        logits = net(*make_inputs(preset.num_classes, *preset.synthesis_size))
    assert logits.shape == (1, 2, 128, 256)
    probability = logits.softmax(dim=1)[:, 1]
    assert probability.min() >= 0.0 and probability.max() <= 1.0


@pytest.mark.parametrize("changed", [1, 2, 3])  # synthesized, semantic, uncertainty
def test_output_depends_on_input(tiny_net: DissimilarityNet, changed: int) -> None:
    inputs = list(make_inputs(NUM_CLASSES, 16, 16))
    with torch.no_grad():
        reference = tiny_net(*inputs)
        inputs[changed] = inputs[changed].flip(-1)
        assert not torch.allclose(tiny_net(*inputs), reference)


def test_identical_images_correlate_positively(tiny_net: DissimilarityNet) -> None:
    image, _, semantic, uncertainty = make_inputs(NUM_CLASSES, 16, 16)
    captured: list[torch.Tensor] = []
    hook = tiny_net.decoder[0].register_forward_hook(lambda m, i, o: captured.append(i[0]))
    with torch.no_grad():
        tiny_net(image, image, semantic, uncertainty)
    hook.remove()
    correlation = captured[0][:, -1]  # last channel of the coarsest fused level
    assert captured[0].shape[1] == TINY.fusion_widths[3] + 1
    assert (correlation >= 0).all() and correlation.sum() > 0


def test_without_uncertainty() -> None:
    net = DissimilarityNet(NUM_CLASSES, TINY, use_uncertainty=False).eval()
    assert net.prior_encoder is None
    image, synthesized, semantic, uncertainty = make_inputs(NUM_CLASSES, 16, 16)
    with torch.no_grad():
        assert net(image, synthesized, semantic, None).shape == (1, 2, 16, 16)
    with pytest.raises(ValueError, match="use_uncertainty=False"):
        net(image, synthesized, semantic, uncertainty)


def test_refuses_bad_inputs(tiny_net: DissimilarityNet) -> None:
    image, synthesized, semantic, uncertainty = make_inputs(NUM_CLASSES, 16, 16)
    with pytest.raises(ValueError, match="multiples of 8"):
        tiny_net(*make_inputs(NUM_CLASSES, 16, 20))
    with pytest.raises(ValueError, match="uses uncertainty maps"):
        tiny_net(image, synthesized, semantic, None)
    with pytest.raises(ValueError, match="semantic_onehot"):
        tiny_net(image, synthesized, semantic[:, :-1], uncertainty)
    with pytest.raises(ValueError, match="synthesized"):
        tiny_net(image, synthesized[..., :8], semantic, uncertainty)
    with pytest.raises(ValueError, match="prior_widths"):
        DissimilarityNet(NUM_CLASSES, DissimilarityConfig(prior_widths=(1, 2, 3, 4)))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::UserWarning")
@pytest.mark.parametrize("use_uncertainty", [True, False])
def test_onnx_matches_torch(tmp_path, use_uncertainty: bool) -> None:
    torch.manual_seed(0)
    net = well_scaled(DissimilarityNet(NUM_CLASSES, TINY, use_uncertainty))
    inputs = make_inputs(NUM_CLASSES, 16, 24)
    if not use_uncertainty:
        inputs = inputs[:3]
    path = tmp_path / "dissimilarity.onnx"
    torch.onnx.export(net, inputs, str(path), dynamo=False, opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {arg.name: t.numpy() for arg, t in zip(session.get_inputs(), inputs, strict=True)}
    (onnx_out,) = session.run(None, feeds)
    with torch.no_grad():
        torch_out = net(*inputs).numpy()
    np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4, rtol=0)
