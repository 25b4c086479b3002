"""ICNet, its dilated ResNet backbone and fixed-window pyramid pooling."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from synboost_ros.config import ICNetConfig, get_preset
from synboost_ros.nn.icnet import CASCADE_LOSS_WEIGHTS, ICNet, ICNetTrainingOutput
from synboost_ros.nn.pyramid_pooling import PyramidPooling, pooling_window
from synboost_ros.nn.resnet import DilatedResNet

TINY = ICNetConfig(base_width=4, blocks=(1, 1, 1, 1), light_width=4, fusion_width=8)
TINY_SIZE = (192, 224)
NUM_CLASSES = 5


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_dilated_resnet_halves_keep_output_stride_8() -> None:
    net = DilatedResNet(base_width=4, blocks=(1, 1, 1, 1)).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        low = net.forward_to_layer2(x)
        high = net.forward_from_layer3(low)
    assert low.shape == (1, net.out_channels_layer2, 8, 12)
    assert high.shape == (1, net.out_channels_layer4, 8, 12)
    assert net.out_channels_layer2 == 4 * 2 * 4 and net.out_channels_layer4 == 4 * 8 * 4


def test_dilated_resnet_default_matches_resnet50_size() -> None:
    net = DilatedResNet()
    # torchvision resnet50 has 25,557,032 parameters, 2,049,000 of them in fc.
    assert sum(p.numel() for p in net.parameters()) == 25_557_032 - 2_049_000
    assert "layer1.0.downsample.0.weight" in net.state_dict()


@pytest.mark.parametrize("config,size", [(TINY, TINY_SIZE), (get_preset("edge").icnet, (256, 512))])
def test_output_shapes_eval_and_train(config: ICNetConfig, size: tuple[int, int]) -> None:
    net = ICNet(NUM_CLASSES, size, config)
    x = torch.randn(2, 3, *size)
    net.train()
    out = net(x)
    assert isinstance(out, ICNetTrainingOutput)
    h, w = size
    assert out.logits_quarter.shape == (2, NUM_CLASSES, h // 4, w // 4)
    assert [a.shape for a in out.aux_logits] == [
        (2, NUM_CLASSES, h // 8, w // 8),
        (2, NUM_CLASSES, h // 16, w // 16),
    ]
    net.eval()
    with torch.no_grad():
        logits = net(x)
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, NUM_CLASSES, h, w)


def test_eval_logits_are_bilinear_upsampling_of_quarter_logits() -> None:
    net = ICNet(NUM_CLASSES, TINY_SIZE, TINY).eval()
    x = torch.randn(1, 3, *TINY_SIZE)
    with torch.no_grad():
        logits = net(x)
        net.train()
        for module in net.modules():  # keep BN in eval statistics while in training mode
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()
        quarter = net(x).logits_quarter
    expected = F.interpolate(quarter, size=TINY_SIZE, mode="bilinear", align_corners=False)
    torch.testing.assert_close(logits, expected)


def test_wrong_input_size_is_refused() -> None:
    net = ICNet(NUM_CLASSES, TINY_SIZE, TINY).eval()
    with pytest.raises(ValueError, match=r"built for input size \(192, 224\), got \(224, 192\)"):
        net(torch.randn(1, 3, 224, 192))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.randn(1, 1, *TINY_SIZE))


@pytest.mark.parametrize("size,message", [((200, 224), "divisible by 32"), ((160, 256), ">= 192")])
def test_bad_construction_size_is_refused(size: tuple[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ICNet(NUM_CLASSES, size, TINY)


def test_gradients_flow_from_all_three_losses() -> None:
    net = ICNet(NUM_CLASSES, TINY_SIZE, TINY).train()
    x = torch.randn(2, 3, *TINY_SIZE)
    out = net(x)
    outputs = (out.logits_quarter, *out.aux_logits)
    assert len(outputs) == len(CASCADE_LOSS_WEIGHTS)
    losses = [
        weight * F.cross_entropy(logits, torch.randint(0, NUM_CLASSES, (2, *logits.shape[-2:])))
        for weight, logits in zip(CASCADE_LOSS_WEIGHTS, outputs, strict=True)
    ]
    classifiers = (
        net.classifier,
        net.fuse_to_eighth.aux_classifier,
        net.fuse_to_sixteenth.aux_classifier,
    )
    for loss, classifier in zip(losses, classifiers, strict=True):
        grads = torch.autograd.grad(
            loss, [classifier.weight, net.backbone.conv1.weight], retain_graph=True
        )
        assert all(g.abs().sum() > 0 for g in grads)
    # The auxiliary outputs come before the full-resolution branch joins the cascade.
    aux_grad = torch.autograd.grad(
        losses[1] + losses[2],
        net.full_res_branch[0][0].weight,
        retain_graph=True,
        allow_unused=True,
    )[0]
    assert aux_grad is None
    sum(losses).backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def _export(net: ICNet, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the input-size checks
        torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=17, input_names=["image"])
    return buffer.getvalue()


@pytest.mark.parametrize("config,size", [(TINY, TINY_SIZE), (get_preset("edge").icnet, (256, 512))])
def test_onnx_export_matches_torch(config: ICNetConfig, size: tuple[int, int]) -> None:
    net = ICNet(NUM_CLASSES, size, config)
    # Non-trivial BN statistics so the parity check covers the folded batch norms.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        expected = net(x).numpy()
    model_bytes = _export(net, x)
    graph = onnx.load_from_string(model_bytes).graph
    op_types = {node.op_type for node in graph.node}
    assert not any("Adaptive" in op or op.startswith("Global") for op in op_types), op_types
    assert sum(node.op_type == "AveragePool" for node in graph.node) == 4
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"image": x.numpy()})
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-4


def test_edge_preset_builds_at_its_segmentation_size() -> None:
    preset = get_preset("edge")
    net = ICNet(preset.num_classes, preset.segmentation_size, preset.icnet)
    assert net.input_size == (256, 512)
    assert net.pyramid_pooling.feature_size == (8, 16)


@pytest.mark.parametrize("size", [7, 10, 13, 6])
@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_pooling_window_tiles_every_cell_into_exact_bins(size: int, bins: int) -> None:
    kernel, stride = pooling_window(size, bins)
    starts = [i * stride for i in range((size - kernel) // stride + 1)]
    assert len(starts) == bins
    covered = set()
    for start in starts:
        covered.update(range(start, start + kernel))
    assert covered == set(range(size))


def test_pyramid_pooling_with_non_dividing_size_covers_all_pixels() -> None:
    module = PyramidPooling(3, 4, feature_size=(7, 10))
    x = torch.randn(1, 3, 7, 10, requires_grad=True)
    for bins, pool in zip(module.bins, module.pools, strict=True):
        pooled = pool(x)
        assert pooled.shape[-2:] == (bins, bins)
        (grad,) = torch.autograd.grad(pooled.sum(), x)
        assert (grad > 0).all(), f"bin {bins} leaves pixels out"
    assert module(x).shape == (1, 4, 7, 10)


def test_pyramid_pooling_equals_adaptive_pooling_when_bins_divide() -> None:
    module = PyramidPooling(3, 4, feature_size=(6, 12))
    x = torch.randn(2, 3, 6, 12)
    for bins, pool in zip(module.bins, module.pools, strict=True):
        torch.testing.assert_close(pool(x), F.adaptive_avg_pool2d(x, bins))
    assert not any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in module.modules())


def test_pyramid_pooling_refuses_small_or_wrong_size() -> None:
    with pytest.raises(ValueError, match="too small"):
        PyramidPooling(3, 4, feature_size=(5, 10))
    module = PyramidPooling(3, 4, feature_size=(6, 12))
    with pytest.raises(ValueError, match=r"feature size \(6, 12\), got \(6, 13\)"):
        module(torch.randn(1, 3, 6, 13))
