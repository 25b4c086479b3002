"""Training losses: values against hand computations, masking, gradients, and falling losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from training_helpers import TINY_CONFIG, single_torch_thread

from synboost_ros.nn.discriminator import MultiscalePatchDiscriminator
from synboost_ros.nn.dissimilarity import DissimilarityNet
from synboost_ros.nn.efficientnet_lite import EfficientNetLite0
from synboost_ros.nn.icnet import CASCADE_LOSS_WEIGHTS, ICNet, ICNetTrainingOutput
from synboost_ros.nn.label_maps import one_hot
from synboost_ros.nn.losses import (
    Lite0PerceptualLoss,
    VGGPerceptualLoss,
    cascade_label_guidance_loss,
    enet_class_weights,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    safe_cross_entropy,
)
from synboost_ros.nn.perceptual import LITE0_PERCEPTUAL_TAPS, PERCEPTUAL_TAPS
from synboost_ros.nn.spade_generator import SPADEGenerator
from synboost_ros.nn.vgg import VGGFeatures

single_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)


def scales(*logits: torch.Tensor) -> list[list[torch.Tensor]]:
    """Discriminator-shaped output: one feature plus the logits per scale."""
    return [[torch.zeros(1, 2, 2, 2), x] for x in logits]


def test_hinge_losses_match_hand_values() -> None:
    real = scales(torch.tensor([[2.0, 0.5]]), torch.tensor([[0.0, -1.0]]))
    fake = scales(torch.tensor([[-2.0, 0.0]]), torch.tensor([[1.0, -3.0]]))
    # scale 0: relu(1 - [2, .5]) -> [0, .5] mean .25; relu(1 + [-2, 0]) -> [0, 1] mean .5
    # scale 1: relu(1 - [0, -1]) -> [1, 2] mean 1.5;  relu(1 + [1, -3]) -> [2, 0] mean 1
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx((0.75 + 2.5) / 2)
    # generator: -mean(fake) per scale: 1 and 1, averaged
    assert hinge_generator_loss(fake).item() == pytest.approx(1.0)


def test_hinge_discriminator_loss_is_zero_beyond_the_margins() -> None:
    real = scales(torch.full((1, 4), 1.5))
    fake = scales(torch.full((1, 4), -1.5))
    assert hinge_discriminator_loss(real, fake).item() == 0.0


def test_feature_matching_ignores_logits_and_does_not_push_real_features() -> None:
    real_feature = torch.ones(1, 3, 4, 4, requires_grad=True)
    fake_feature = torch.zeros(1, 3, 4, 4, requires_grad=True)
    real = [[real_feature, torch.full((1, 1, 2, 2), 100.0)]]
    fake = [[fake_feature, torch.zeros(1, 1, 2, 2)]]
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx(1.0)  # the logits' difference of 100 does not count
    loss.backward()
    assert real_feature.grad is None
    assert fake_feature.grad is not None and fake_feature.grad.abs().sum() > 0


def test_enet_class_weights_follow_the_formula() -> None:
    weights = enet_class_weights([90, 10])
    assert weights.tolist() == pytest.approx([1 / math.log(1.02 + 0.9), 1 / math.log(1.02 + 0.1)])
    assert weights[1] > weights[0]  # rare classes weigh more
    with pytest.raises(ValueError, match="positive sum"):
        enet_class_weights([0, 0])


def test_cascade_label_guidance_matches_weighted_heads() -> None:
    torch.manual_seed(0)
    output = ICNetTrainingOutput(
        torch.randn(2, 5, 8, 8), (torch.randn(2, 5, 4, 4), torch.randn(2, 5, 2, 2))
    )
    labels = torch.randint(0, 5, (2, 32, 32))
    labels[:, :4] = 255
    expected = 0.0
    for weight, logits in zip(CASCADE_LOSS_WEIGHTS, (output[0], *output[1]), strict=True):
        small = F.interpolate(labels[:, None].float(), size=logits.shape[-2:], mode="nearest")
        expected += weight * F.cross_entropy(logits, small[:, 0].long(), ignore_index=255)
    assert cascade_label_guidance_loss(output, labels).item() == pytest.approx(expected.item())


def test_all_ignored_pixels_give_zero_not_nan() -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = safe_cross_entropy(logits, torch.full((1, 4, 4), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_vgg_loss_is_zero_for_equal_images_and_needs_the_right_taps() -> None:
    vgg = VGGFeatures(19, PERCEPTUAL_TAPS, 1 / 16)
    loss_fn = VGGPerceptualLoss(vgg)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    other = torch.rand(1, 3, 32, 32, requires_grad=True)
    assert loss_fn(image, image).item() == 0.0
    loss = loss_fn(other * 2 - 1, image)
    assert loss.item() > 0
    loss.backward()
    assert other.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in vgg.parameters())
    with pytest.raises(ValueError, match="VGG19"):
        VGGPerceptualLoss(VGGFeatures(16, ("relu1_2",), 1 / 16))


def optimise(parameters, loss_fn, steps: int, lr: float = 1e-3) -> list[float]:
    """Adam steps on a fixed batch; returns the loss before each step."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    values = []
    for _ in range(steps):
        loss = loss_fn()
        assert torch.isfinite(loss)
        values.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return values


def test_segmentation_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    net = ICNet(19, TINY_CONFIG.segmentation_size, TINY_CONFIG.icnet).train()
    images = torch.randn(1, 3, *TINY_CONFIG.segmentation_size)
    labels = torch.randint(0, 19, (1, *TINY_CONFIG.segmentation_size))
    values = optimise(
        net.parameters(), lambda: cascade_label_guidance_loss(net(images), labels), 4, 1e-2
    )
    assert values[-1] < values[0]


def test_gan_losses_fall_for_discriminator_and_generator() -> None:
    torch.manual_seed(0)
    size = (32, 64)
    generator = SPADEGenerator(19, size, TINY_CONFIG.spade, spectral_norm=True).train()
    discriminator = MultiscalePatchDiscriminator(19 + 3, num_scales=2, ndf=4).train()
    onehot = one_hot(torch.randint(0, 19, (2, *size)), 19)
    real = torch.rand(2, 3, *size) * 2 - 1

    def outputs(fake: torch.Tensor):
        pair = torch.cat([torch.cat([onehot, fake], 1), torch.cat([onehot, real], 1)])
        both = discriminator(pair)
        return [[f[:2] for f in s] for s in both], [[f[2:] for f in s] for s in both]

    fixed_fake = generator(onehot).detach()

    def d_loss() -> torch.Tensor:
        fake_out, real_out = outputs(fixed_fake)
        return hinge_discriminator_loss(real_out, fake_out)

    d_values = optimise(discriminator.parameters(), d_loss, 4, 4e-4)
    assert d_values[-1] < d_values[0]

    def g_loss() -> torch.Tensor:
        fake_out, real_out = outputs(generator(onehot))
        return hinge_generator_loss(fake_out) + 10 * feature_matching_loss(fake_out, real_out)

    discriminator.requires_grad_(False)
    g_values = optimise(generator.parameters(), g_loss, 4, 1e-3)
    assert g_values[-1] < g_values[0]


def test_dissimilarity_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    net = DissimilarityNet(19, TINY_CONFIG.dissimilarity).train()
    image, synth = torch.randn(2, 3, 32, 64), torch.randn(2, 3, 32, 64)
    onehot = one_hot(torch.randint(0, 19, (2, 32, 64)), 19)
    uncertainty = torch.rand(2, 3, 32, 64)
    labels = (torch.rand(2, 32, 64) < 0.2).long()
    weights = enet_class_weights(torch.bincount(labels.flatten(), minlength=2).tolist())
    values = optimise(
        net.parameters(),
        lambda: safe_cross_entropy(net(image, synth, onehot, uncertainty), labels, weights),
        4,
    )
    assert values[-1] < values[0]


def test_lite0_loss_trains_the_generator_only_and_keeps_the_trunk_frozen() -> None:
    torch.manual_seed(0)
    trunk = EfficientNetLite0(LITE0_PERCEPTUAL_TAPS)
    frozen = {k: v.clone() for k, v in trunk.state_dict().items()}
    loss_fn = Lite0PerceptualLoss(trunk)
    generator = torch.nn.Conv2d(3, 3, 3, padding=1)
    parent = torch.nn.ModuleDict({"generator": generator, "loss": loss_fn}).train()
    assert not trunk.training and not any(p.requires_grad for p in trunk.parameters())
    target = torch.rand(2, 3, 32, 64) * 2 - 1
    assert loss_fn(target, target).item() == 0.0
    fake = torch.tanh(generator(torch.rand(2, 3, 32, 64)))
    loss = loss_fn(fake, target)
    assert loss.item() > 0
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    assert all(p.grad is None for p in trunk.parameters())
    parent.train()
    loss_fn(fake.detach(), target)
    for key, value in trunk.state_dict().items():  # eval mode: BN running stats untouched
        assert torch.equal(value, frozen[key]), key
    with pytest.raises(ValueError, match="taps"):
        Lite0PerceptualLoss(EfficientNetLite0((2, 4)))


def test_lite0_loss_is_the_weighted_l1_of_the_taps_in_lite0_normalisation() -> None:
    torch.manual_seed(1)
    trunk = EfficientNetLite0(LITE0_PERCEPTUAL_TAPS).eval()
    generated, target = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        # Lite0 normalisation (x - 0.5) / 0.5 of x = (y + 1) / 2 is y itself.
        fake, real = trunk(generated), trunk(target)
        expected = sum(
            w * F.l1_loss(a, b)
            for w, a, b in zip((1 / 16, 1 / 8, 1 / 4, 1.0), fake, real, strict=True)
        )
        assert Lite0PerceptualLoss(trunk)(generated, target).item() == pytest.approx(
            float(expected), rel=1e-5
        )
