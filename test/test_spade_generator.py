"""SPADE normalisation, spectral-norm helpers, SPADE generator and discriminator."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from synboost_ros.config import SpadeConfig, get_preset
from synboost_ros.nn.discriminator import MultiscalePatchDiscriminator
from synboost_ros.nn.normalization import SPADE, add_spectral_norm, remove_spectral_norm
from synboost_ros.nn.spade_generator import SPADEGenerator, SPADEResBlock

TINY = SpadeConfig(ngf=4, num_upsampling_layers="normal", spade_hidden=8)
NUM_CLASSES = 5


def one_hot(num_classes: int, height: int, width: int, batch: int = 1) -> torch.Tensor:
    ids = torch.randint(0, num_classes, (batch, height, width))
    return F.one_hot(ids, num_classes).permute(0, 3, 1, 2).float()


def parametrized_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if parametrize.is_parametrized(m)]


def test_spade_with_zero_modulation_is_instance_norm() -> None:
    spade = SPADE(6, NUM_CLASSES, hidden=4)
    for conv in (spade.gamma, spade.beta):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    x = torch.randn(2, 6, 4, 8)
    out = spade(x, one_hot(NUM_CLASSES, 16, 32, batch=2))
    torch.testing.assert_close(out, F.instance_norm(x))


def test_spade_modulation_follows_label() -> None:
    spade = SPADE(6, NUM_CLASSES, hidden=4)
    x = torch.randn(1, 6, 8, 8)
    label = one_hot(NUM_CLASSES, 16, 16)
    assert not torch.allclose(spade(x, label), spade(x, label.roll(1, dims=1)))


def test_spade_rejects_wrong_shapes() -> None:
    spade = SPADE(6, NUM_CLASSES)
    with pytest.raises(ValueError, match="label map"):
        spade(torch.randn(1, 6, 4, 4), torch.zeros(1, NUM_CLASSES + 1, 4, 4))
    with pytest.raises(ValueError, match="features"):
        spade(torch.randn(1, 5, 4, 4), torch.zeros(1, NUM_CLASSES, 4, 4))


def test_resblock_learned_shortcut_only_when_widths_differ() -> None:
    label = one_hot(NUM_CLASSES, 8, 8)
    same = SPADEResBlock(8, 8, NUM_CLASSES, 4)
    changing = SPADEResBlock(8, 4, NUM_CLASSES, 4)
    assert not same.learned_shortcut and not hasattr(same, "conv_s")
    assert changing.conv_s.bias is None
    assert changing(torch.randn(1, 8, 8, 8), label).shape == (1, 4, 8, 8)


def test_generator_shape_and_range() -> None:
    generator = SPADEGenerator(NUM_CLASSES, (32, 64), TINY)
    image = generator(one_hot(NUM_CLASSES, 32, 64, batch=2))
    assert image.shape == (2, 3, 32, 64)
    assert image.abs().max() <= 1.0
    assert image.std() > 0


@pytest.mark.parametrize(
    ("mode", "size", "bottom"),
    [("normal", (64, 128), (2, 4)), ("more", (64, 128), (1, 2)), ("most", (128, 256), (1, 2))],
)
def test_generator_bottom_grid(mode: str, size: tuple[int, int], bottom: tuple[int, int]) -> None:
    config = SpadeConfig(ngf=2, num_upsampling_layers=mode, spade_hidden=4)
    generator = SPADEGenerator(NUM_CLASSES, size, config, spectral_norm=False)
    assert generator.bottom_size == bottom
    seen: list[tuple[int, ...]] = []
    generator.label_conv.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    assert generator(one_hot(NUM_CLASSES, *size)).shape == (1, 3, *size)
    assert seen == [(1, 32, *bottom)]


def test_generator_edge_preset() -> None:
    preset = get_preset("edge")
    generator = SPADEGenerator(preset.num_classes, preset.synthesis_size, preset.spade)
    generator.prepare_for_inference()
    with torch.no_grad():
        image = generator(one_hot(preset.num_classes, *preset.synthesis_size))
    assert image.shape == (1, 3, 128, 256)
    assert image.abs().max() <= 1.0


def test_generator_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 64"):
        SPADEGenerator(NUM_CLASSES, (96, 128), SpadeConfig(ngf=2, num_upsampling_layers="more"))
    with pytest.raises(ValueError, match="1x1 bottom grid"):
        SPADEGenerator(NUM_CLASSES, (32, 32), TINY)
    with pytest.raises(ValueError, match="num_upsampling_layers"):
        SPADEGenerator(NUM_CLASSES, (64, 64), SpadeConfig(num_upsampling_layers="many"))
    generator = SPADEGenerator(NUM_CLASSES, (32, 64), TINY)
    with pytest.raises(ValueError, match="one-hot label map"):
        generator(one_hot(NUM_CLASSES, 64, 64))
    with pytest.raises(ValueError, match="one-hot label map"):
        generator(one_hot(NUM_CLASSES + 1, 32, 64))


def test_spectral_norm_skips_spade_branch() -> None:
    generator = SPADEGenerator(NUM_CLASSES, (32, 64), TINY)
    normed = parametrized_layers(generator)
    assert len(normed) == 2 * 7 + 4  # two convs per ResBlock, plus the 4 learned shortcuts
    spade_layers = {id(m) for s in generator.modules() if isinstance(s, SPADE) for m in s.modules()}
    assert not any(id(m) in spade_layers for m in normed)
    assert not parametrized_layers(SPADEGenerator(NUM_CLASSES, (32, 64), TINY, False))


def test_spectral_norm_removal_keeps_outputs() -> None:
    generator = SPADEGenerator(NUM_CLASSES, (32, 64), TINY)
    label = one_hot(NUM_CLASSES, 32, 64)
    generator.train()
    for _ in range(2):  # power iterations move the stored vectors away from their init
        generator(label)
    with torch.no_grad():
        before = generator.eval()(label)
        generator.prepare_for_inference()
        after = generator(label)
    assert not generator.training
    assert not parametrized_layers(generator)
    assert isinstance(generator.head.conv_0.weight, nn.Parameter)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)


def test_remove_spectral_norm_bakes_eval_weight_even_in_train_mode() -> None:
    torch.manual_seed(0)  # the power iteration starts from a random vector
    plain = nn.Linear(64, 64)
    with torch.no_grad():
        plain.weight.mul_(10.0)  # spectral norm about 11, far from the normalised 1
    layer = add_spectral_norm(plain)  # power iteration not converged
    raw = layer.parametrizations.weight.original.detach().clone()
    with torch.no_grad():
        eval_weight = layer.eval().weight.clone()
    remove_spectral_norm(layer.train())
    assert not parametrize.is_parametrized(layer)
    assert not torch.allclose(layer.weight, raw)
    torch.testing.assert_close(layer.weight.detach(), eval_weight)
    sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    assert sigma == pytest.approx(1.0, rel=0.1)  # power-iteration estimate


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::UserWarning")
def test_generator_onnx_matches_torch(tmp_path) -> None:
    # A 2x4 bottom grid: instance norm over a 1x2 grid amplifies float32 rounding.
    torch.manual_seed(0)
    generator = SPADEGenerator(NUM_CLASSES, (64, 128), TINY).prepare_for_inference()
    label = one_hot(NUM_CLASSES, 64, 128)
    path = tmp_path / "generator.onnx"
    torch.onnx.export(generator, (label,), str(path), dynamo=False, opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: label.numpy()})
    with torch.no_grad():
        torch_out = generator(label).numpy()
    np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4, rtol=0)


def test_discriminator_scales_features_and_gradients() -> None:
    discriminator = MultiscalePatchDiscriminator(NUM_CLASSES + 3, num_scales=3, ndf=4, num_layers=3)
    fake = torch.randn(2, 3, 32, 32, requires_grad=True)
    outputs = discriminator(torch.cat([one_hot(NUM_CLASSES, 32, 32, batch=2), fake], dim=1))
    assert len(outputs) == 3
    assert all(len(features) == 4 for features in outputs)
    assert [f[-1].shape[1] for f in outputs] == [1, 1, 1]
    assert outputs[0][-1].shape[-1] > outputs[1][-1].shape[-1] > outputs[2][-1].shape[-1]
    sum(f[-1].mean() for f in outputs).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is not None for p in discriminator.parameters())
    assert len(parametrized_layers(discriminator)) == 3 * 2  # inner convs only
    with pytest.raises(ValueError, match="discriminator expects"):
        discriminator(torch.randn(1, 3, 32, 32))
