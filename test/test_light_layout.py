"""The light preset's layouts: Fast_Seg-style ICNet, fixed adaptive pooling, deep stem, SPADE's
labelId + edge input and parameter-free batch norm, SynBoost's decoder widths; FLOP counts."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.config import (
    DissimilarityConfig,
    ICNetConfig,
    PipelineConfig,
    SpadeConfig,
    get_preset,
)
from synboost_ros.flops import count_flops, stage_flops
from synboost_ros.model import SynBoostModel, segmentation_network
from synboost_ros.nn.adaptive_pooling import FixedAdaptiveAvgPool2d, adaptive_pooling_matrix
from synboost_ros.nn.dissimilarity import DissimilarityNet, channel_correlation
from synboost_ros.nn.icnet import ICNetTrainingOutput
from synboost_ros.nn.icnet_psp import ICNetPSP
from synboost_ros.nn.label_maps import SynthesisLabelInput, instance_edges
from synboost_ros.nn.normalization import SPADE
from synboost_ros.nn.resnet import DilatedResNet, deep_stem_layer2_size
from synboost_ros.nn.spade_generator import SPADEGenerator

TINY_PSP = ICNetConfig(
    base_width=4, blocks=(1, 1, 1, 1), light_width=4, fusion_width=8, layout="psp"
)
# Cityscapes trainId -> labelId (cityscapesScripts' label table), written out independently.
LABEL_ID_OF_TRAIN_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize(
    ("size", "bins"), [((16, 32), (1, 1)), ((16, 32), (3, 3)), ((16, 32), (6, 6)), ((5, 7), (3, 6)),
                       ((2, 4), (6, 6)), ((33, 65), (2, 3))]
)  # fmt: skip
def test_fixed_adaptive_pooling_equals_torch_at_any_size(size, bins) -> None:
    x = torch.randn(2, 3, *size)
    pooled = FixedAdaptiveAvgPool2d(size, bins)(x)
    torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(x, bins), rtol=0, atol=1e-6)


def test_pooling_matrix_rows_average_the_adaptive_bins() -> None:
    # 5 cells in 3 bins: [0, 2), [1, 4), [3, 5) (floor / ceil of i * 5 / 3)
    expected = torch.tensor(
        [[1 / 2, 1 / 2, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0, 1 / 2, 1 / 2]]
    )
    torch.testing.assert_close(adaptive_pooling_matrix(5, 3), expected)
    with pytest.raises(ValueError, match="built for input size"):
        FixedAdaptiveAvgPool2d((5, 5), (3, 3))(torch.zeros(1, 1, 6, 5))


def test_fixed_adaptive_pooling_exports_to_onnx() -> None:
    pool = FixedAdaptiveAvgPool2d((16, 32), (6, 6)).eval()
    x = torch.randn(1, 4, 16, 32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(pool, (x,), buffer, input_names=["x"], opset_version=17, dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(out, F.adaptive_avg_pool2d(x, 6).numpy(), atol=1e-5)


@pytest.mark.parametrize("side", [32, 48, 64, 96, 100, 128, 160, 256, 512, 1024])
def test_deep_stem_sizes_are_predicted(side: int) -> None:
    net = DilatedResNet(base_width=2, blocks=(1, 1, 1, 1), stem="deep").eval()
    with torch.no_grad():
        out = net.forward_to_layer2(torch.zeros(1, 3, side, 8))
    assert out.shape[-2] == deep_stem_layer2_size(side)
    assert deep_stem_layer2_size(256) == 33  # 512x1024 input: 1/16 features are 33x65


def test_deep_stem_layout() -> None:
    net = DilatedResNet(base_width=4, blocks=(1, 1, 1, 1), stem="deep")
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["conv1.weight"] == (4, 3, 3, 3)
    assert shapes["conv2.weight"] == (4, 4, 3, 3)
    assert shapes["conv3.weight"] == (8, 4, 3, 3)
    assert shapes["layer1.0.conv1.weight"] == (4, 8, 1, 1)
    assert shapes["layer1.0.downsample.0.weight"] == (16, 8, 1, 1)
    assert net.maxpool.ceil_mode
    with pytest.raises(ValueError, match="stem must be one of"):
        DilatedResNet(stem="wide")


def test_icnet_psp_shapes_in_both_modes() -> None:
    net = ICNetPSP(5, (64, 96), TINY_PSP)
    assert (net.half_size, net.sixteenth_size, net.thirty_second_size) == ((32, 48), (5, 7), (2, 3))
    x = torch.randn(2, 3, 64, 96)
    out = net.train()(x)
    assert isinstance(out, ICNetTrainingOutput)
    assert out.logits_quarter.shape == (2, 5, 16, 24)
    assert [a.shape for a in out.aux_logits] == [(2, 5, 8, 12), (2, 5, 5, 7)]
    with torch.no_grad():
        assert net.eval()(x).shape == (2, 5, 64, 96)
    with pytest.raises(ValueError, match=r"built for input size \(64, 96\), got \(64, 64\)"):
        net(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="multiples of 8"):
        ICNetPSP(5, (60, 96), TINY_PSP)


def test_icnet_psp_classifiers_have_no_bias_and_training_reaches_every_weight() -> None:
    net = ICNetPSP(3, (32, 64), TINY_PSP).train()
    assert net.classifier.bias is None
    assert net.fuse_to_eighth.aux_classifier.bias is None
    out = net(torch.randn(2, 3, 32, 64))
    (out.logits_quarter.sum() + sum(a.sum() for a in out.aux_logits)).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_icnet_psp_exports_to_onnx_with_align_corners_resizes() -> None:
    net = ICNetPSP(3, (64, 96), TINY_PSP).eval()
    x = torch.randn(1, 3, 64, 96)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buffer, input_names=["x"], opset_version=17, dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, net(x).numpy(), atol=1e-4, rtol=1e-4)


def test_segmentation_network_follows_the_layout() -> None:
    tiny = ICNetConfig(base_width=4, blocks=(1, 1, 1, 1), light_width=4, fusion_width=8)
    compact = PipelineConfig(preset="edge", segmentation_size=(192, 224), icnet=tiny)
    psp = compact.replace(icnet=TINY_PSP)
    assert type(segmentation_network(psp)) is ICNetPSP
    assert type(segmentation_network(compact)).__name__ == "ICNet"
    with pytest.raises(ValueError, match="ICNet layout must be one of"):
        segmentation_network(compact.replace(icnet=ICNetConfig(layout="other")))


def _edges_by_definition(ids: np.ndarray) -> np.ndarray:
    edges = np.zeros_like(ids, dtype=bool)
    edges[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edges[:, :-1] |= ids[:, 1:] != ids[:, :-1]
    edges[1:, :] |= ids[1:, :] != ids[:-1, :]
    edges[:-1, :] |= ids[1:, :] != ids[:-1, :]
    return edges


def test_label_id_edge_input_of_the_spade_generator() -> None:
    train_ids = torch.randint(0, 19, (2, 9, 13), dtype=torch.int32)
    train_ids[0, 0, 0] = 255  # ignore: labelId 0 ('unlabeled')
    labels = SynthesisLabelInput(19, "label_ids_edges")(train_ids)
    assert labels.shape == (2, 36, 9, 13)
    table = np.zeros(256, dtype=np.int64)
    table[:19] = LABEL_ID_OF_TRAIN_ID
    label_ids = table[train_ids.numpy()]
    for n in range(2):
        np.testing.assert_array_equal(labels[n, :35].argmax(0).numpy(), label_ids[n])
        np.testing.assert_array_equal(labels[n, 35].numpy(), _edges_by_definition(label_ids[n]))
    assert torch.equal(labels[:, :35].sum(1), torch.ones(2, 9, 13))
    plain = SynthesisLabelInput(19, "train_ids")(train_ids.clamp(max=18))
    assert plain.shape == (2, 19, 9, 13)
    with pytest.raises(ValueError, match="label_input must be one of"):
        SynthesisLabelInput(19, "rgb")


def test_instance_edges_mark_both_sides_of_a_boundary() -> None:
    ids = torch.tensor([[[1, 1, 2, 2]]])
    assert instance_edges(ids).tolist() == [[[[0.0, 1.0, 1.0, 0.0]]]]


def test_spade_batch_norm_uses_running_statistics_in_eval_mode() -> None:
    spade = SPADE(4, 3, hidden=5, param_free_norm="batch").eval()
    spade.normalize.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    spade.normalize.running_var.copy_(torch.tensor([4.0, 1.0, 0.25, 9.0]))
    x, label = torch.randn(2, 4, 6, 6), torch.rand(2, 3, 6, 6)
    with torch.no_grad():
        features = spade.shared(label)
        normalized = (x - spade.normalize.running_mean.view(1, 4, 1, 1)) / torch.sqrt(
            spade.normalize.running_var.view(1, 4, 1, 1) + 1e-5
        )
        expected = normalized * (1 + spade.gamma(features)) + spade.beta(features)
        torch.testing.assert_close(spade(x, label), expected)
    assert {k for k in spade.state_dict() if k.startswith("normalize.")} == {
        "normalize.running_mean", "normalize.running_var", "normalize.num_batches_tracked"
    }  # fmt: skip
    with pytest.raises(ValueError, match="param_free_norm must be one of"):
        SPADE(4, 3, param_free_norm="group")


def test_generator_with_batch_norm_takes_a_one_cell_bottom_grid() -> None:
    config = SpadeConfig(
        ngf=2, num_upsampling_layers="more", spade_hidden=4, param_free_norm="batch"
    )
    generator = SPADEGenerator(36, (64, 64), config, spectral_norm=False).eval()
    with torch.no_grad():
        assert generator(torch.rand(1, 36, 64, 64)).shape == (1, 3, 64, 64)


def test_dissimilarity_decoder_widths_and_sum_correlation() -> None:
    config = DissimilarityConfig(
        vgg_width=0.125,
        semantic_widths=(4, 8, 16, 32),
        prior_widths=(8, 16, 32, 64),
        fusion_widths=(8, 16, 32, 64),
        spade_hidden=4,
        decoder_widths=(8, 16, 32, 32),
        correlation="sum",
    )
    net = DissimilarityNet(19, config)
    in_channels = [stage.conv[0].in_channels for stage in net.decoder]
    out_channels = [stage.conv[0].out_channels for stage in net.decoder]
    assert out_channels == [32, 32, 16, 8]  # coarsest first
    assert in_channels == [64 + 1, 32 + 32 + 1, 32 + 16 + 1, 16 + 8 + 1]
    real, synth = torch.randn(1, 6, 2, 2), torch.randn(1, 6, 2, 2)
    torch.testing.assert_close(channel_correlation(real, synth, "sum"), (real * synth).sum(1, True))
    torch.testing.assert_close(channel_correlation(real, synth), (real * synth).mean(1, True))
    with pytest.raises(ValueError, match="correlation must be one of"):
        DissimilarityNet(19, DissimilarityConfig(correlation="max"))
    with pytest.raises(ValueError, match="4 positive decoder widths"):
        DissimilarityNet(19, DissimilarityConfig(decoder_widths=(8, 16)))


def test_light_preset_takes_the_checkpoint_layouts_and_edge_keeps_its_own() -> None:
    light, edge = get_preset("light"), get_preset("edge")
    assert light.icnet.layout == "psp" and edge.icnet.layout == "compact"
    assert (light.spade.label_input, light.spade.param_free_norm) == ("label_ids_edges", "batch")
    assert (edge.spade.label_input, edge.spade.param_free_norm) == ("train_ids", "instance")
    assert light.dissimilarity.decoder_widths == (64, 128, 256, 256)
    assert edge.dissimilarity.decoder_widths == () and edge.dissimilarity.correlation == "mean"
    assert light.segmentation_normalization.channel_order == "bgr"
    assert light.segmentation_normalization.mean == (104.00698793, 116.66876762, 122.67891434)
    assert PipelineConfig.from_dict(light.to_dict()) == light


def test_count_flops_is_two_per_multiply_accumulate() -> None:
    conv = nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False)
    assert count_flops(conv, [torch.zeros(1, 3, 8, 8)]) == 2 * (4 * 3 * 9) * 64


def test_stage_flops_match_a_count_on_real_tensors() -> None:
    config = PipelineConfig(
        preset="edge",
        segmentation_size=(64, 64),
        synthesis_size=(32, 64),
        icnet=TINY_PSP,
        spade=SpadeConfig(ngf=2, num_upsampling_layers="normal", spade_hidden=4),
        dissimilarity=DissimilarityConfig(
            vgg_width=0.0625,
            semantic_widths=(2, 4, 8, 16),
            prior_widths=(4, 8, 16, 32),
            fusion_widths=(4, 8, 16, 32),
            spade_hidden=4,
        ),
        perceptual_vgg_width=0.0625,
    )
    flops = stage_flops(config)
    model = SynBoostModel(config).eval()
    net = model.segmentation
    assert flops["segmentation"] == count_flops(net, [torch.zeros(1, 3, 64, 64)])
    assert flops["total"] == flops["segmentation"] + flops["synthesis"] + flops["dissimilarity"]
    assert min(flops.values()) > 0


def test_synthesis_training_feeds_the_generator_and_discriminator_the_light_label_input() -> None:
    from synboost_ros.nn.discriminator import MultiscalePatchDiscriminator
    from synboost_ros.training.runtime import Runtime
    from synboost_ros.training.synthesis import (
        GANStep,
        SynthesisOptions,
        add_generator_spectral_norm,
    )

    config = SpadeConfig(
        ngf=2, spade_hidden=4, param_free_norm="batch", label_input="label_ids_edges"
    )
    label_input = SynthesisLabelInput(19, config.label_input)
    generator = add_generator_spectral_norm(
        SPADEGenerator(label_input.channels, (64, 64), config, spectral_norm=False)
    ).train()
    discriminator = MultiscalePatchDiscriminator(label_input.channels + 3, 1, 4, 2).train()
    seen: list[int] = []
    discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    optimizers = {
        "generator": torch.optim.Adam(generator.parameters(), lr=1e-4),
        "discriminator": torch.optim.Adam(discriminator.parameters(), lr=1e-4),
    }
    runtime = Runtime(device=torch.device("cpu"), amp=False)
    step = GANStep(generator, discriminator, None, optimizers, {}, runtime.grad_scaler(),
                   SynthesisOptions(), label_input, runtime)  # fmt: skip
    batch = {"image": torch.rand(2, 3, 64, 64), "labels": torch.randint(0, 19, (2, 64, 64))}
    before = generator.head.norm_0.normalize.running_mean.clone()
    metrics = step(batch, 0)
    assert all(np.isfinite(value) for value in metrics.values())
    assert set(seen) == {36 + 3}
    assert not torch.equal(generator.head.norm_0.normalize.running_mean, before)
