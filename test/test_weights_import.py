"""``synboost weights import``: the public Cityscapes checkpoints in the light networks.

No real checkpoint is needed: each reference layout is written below as a table of entry names
and shapes (from lxtGH/Fast_Seg, NVlabs/SPADE and giandbt/SynBoost), filled with distinct random
values, saved in the references' file formats and imported. The tests check that every file
tensor lands in exactly one network tensor, and that the imported networks compute what the
reference networks compute, written here as plain functional forwards over the file's entries.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import rclpy
import safetensors.torch
import torch
import torch.nn.functional as F
from rclpy.parameter import Parameter
from ros_test_env import isolate_ros_domain

from synboost_ros.backends.onnx_checks import check_graph_for_tensorrt
from synboost_ros.cli.main import main
from synboost_ros.config import DissimilarityConfig, ICNetConfig, SpadeConfig, get_preset
from synboost_ros.export import export_onnx
from synboost_ros.files import file_sha256
from synboost_ros.model import SynBoostModel
from synboost_ros.model_loading import random_model
from synboost_ros.nn.cityscapes_checkpoints import (
    bake_spectral_norm,
    fast_seg_icnet_plan,
    nvlabs_spade_generator_plan,
    synboost_dissimilarity_plan,
)
from synboost_ros.nn.input_normalization import normalize_input
from synboost_ros.nn.pretrained import read_checkpoint
from synboost_ros.ros.node import AnomalyNode
from synboost_ros.stage_io import stage_specs
from synboost_ros.stages import SegmentationStage, SynthesisStage, build_stages
from synboost_ros.weights import load_model
from synboost_ros.weights_import import SYNBOOST_DISSIMILARITY_MEMBER, import_light_weights

SIZE = (64, 128)
SMALL_ICNET = ICNetConfig(base_width=4, blocks=(1, 2, 1, 1), light_width=4, fusion_width=8)
SMALL_DISSIMILARITY = dict(
    vgg_width=0.125,
    semantic_widths=(4, 8, 16, 32),
    prior_widths=(8, 16, 32, 64),
    fusion_widths=(8, 16, 32, 64),
    spade_hidden=8,
    decoder_widths=(8, 16, 32, 32),
)
LIGHT = get_preset("light")
# The light layouts at small widths; the perceptual VGG19 stays full width (torchvision files).
SMALL = LIGHT.replace(
    segmentation_size=SIZE,
    synthesis_size=SIZE,
    icnet=ICNetConfig(**{**SMALL_ICNET.__dict__, "layout": "psp"}),
    spade=SpadeConfig(
        ngf=4, spade_hidden=8, param_free_norm="batch", label_input="label_ids_edges"
    ),
    dissimilarity=DissimilarityConfig(**SMALL_DISSIMILARITY, correlation="sum"),
)
FAST_SEG_MEAN = torch.tensor([104.00698793, 116.66876762, 122.67891434]).view(1, 3, 1, 1)
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# Cityscapes trainId -> labelId (cityscapesScripts' label table).
LABEL_ID_OF_TRAIN_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)

Table = dict[str, tuple[int, ...]]


# --- The reference layouts as tables ---------------------------------------------------------


def _bn_entries(table: Table, name: str, channels: int) -> None:
    for entry in ("weight", "bias", "running_mean", "running_var"):
        table[f"{name}.{entry}"] = (channels,)
    table[f"{name}.num_batches_tracked"] = ()


def fast_seg_icnet_table(base=64, blocks=(3, 4, 6, 3), light=32, fusion=128, classes=19) -> Table:
    """lxtGH/Fast_Seg ICNet (libs/models/ICNet.py, PSPNet.PSPHead_res50): entry -> shape."""
    table: Table = {}
    conv_bn = [  # (conv, its batch norm, out, in, kernel)
        ("conv_sub1.0.conv", "conv_sub1.0.bn", light, 3, 3),
        ("conv_sub1.1.conv", "conv_sub1.1.bn", light, light, 3),
        ("conv_sub1.2.conv", "conv_sub1.2.bn", 2 * light, light, 3),
        ("backbone.conv1", "backbone.bn1", base, 3, 3),
        ("backbone.conv2", "backbone.bn2", base, base, 3),
        ("backbone.conv3", "backbone.bn3", 2 * base, base, 3),
        *[(f"backbone.head.stages.{i}.1", f"backbone.head.stages.{i}.2", 8 * base, 32 * base, 1)
          for i in range(4)],
        ("backbone.head.bottleneck.0", "backbone.head.bottleneck.1", 8 * base, 64 * base, 3),
        ("conv_sub2.conv", "conv_sub2.bn", 4 * base, 8 * base, 1),
        ("conv_sub4.conv", "conv_sub4.bn", 4 * base, 8 * base, 1),
        ("head.cff_24.conv_low.0", "head.cff_24.conv_low.1", fusion, 4 * base, 3),
        ("head.cff_24.conv_high.0", "head.cff_24.conv_high.1", fusion, 4 * base, 1),
        ("head.cff_12.conv_low.0", "head.cff_12.conv_low.1", fusion, fusion, 3),
        ("head.cff_12.conv_high.0", "head.cff_12.conv_high.1", fusion, 2 * light, 1),
    ]  # fmt: skip
    in_channels = 2 * base
    for layer, (width, count) in enumerate(
        zip((base, 2 * base, 4 * base, 8 * base), blocks, strict=True), 1
    ):
        for block in range(count):
            name = f"backbone.layer{layer}.{block}"
            conv_bn += [
                (f"{name}.conv1", f"{name}.bn1", width, in_channels, 1),
                (f"{name}.conv2", f"{name}.bn2", width, width, 3),
                (f"{name}.conv3", f"{name}.bn3", 4 * width, width, 1),
            ]
            if block == 0:
                conv_bn.append((f"{name}.downsample.0", f"{name}.downsample.1", 4 * width,
                                in_channels, 1))  # fmt: skip
            in_channels = 4 * width
    for conv, bn, out, inp, kernel in conv_bn:
        table[f"{conv}.weight"] = (out, inp, kernel, kernel)
        _bn_entries(table, bn, out)
    for name in ("head.cff_24.conv_low_cls", "head.cff_12.conv_low_cls", "head.conv_cls"):
        table[f"{name}.weight"] = (classes, fusion, 1, 1)
    return table


def nvlabs_spade_table(ngf=64, label_nc=36, hidden=128) -> Table:
    """NVlabs SPADE's SPADEGenerator (Cityscapes options, spectralspadesyncbatch3x3, no VAE)."""
    table: Table = {"fc.weight": (16 * ngf, label_nc, 3, 3), "fc.bias": (16 * ngf,)}

    def spectral_conv(name: str, out: int, inp: int, kernel: int, bias: bool = True) -> None:
        table[f"{name}.weight_orig"] = (out, inp, kernel, kernel)
        table[f"{name}.weight_u"] = (out,)
        table[f"{name}.weight_v"] = (inp * kernel * kernel,)
        if bias:
            table[f"{name}.bias"] = (out,)

    def spade(name: str, channels: int) -> None:
        for entry in ("running_mean", "running_var"):
            table[f"{name}.param_free_norm.{entry}"] = (channels,)
        table[f"{name}.param_free_norm.num_batches_tracked"] = ()
        table[f"{name}.mlp_shared.0.weight"] = (hidden, label_nc, 3, 3)
        table[f"{name}.mlp_shared.0.bias"] = (hidden,)
        for branch in ("mlp_gamma", "mlp_beta"):
            table[f"{name}.{branch}.weight"] = (channels, hidden, 3, 3)
            table[f"{name}.{branch}.bias"] = (channels,)

    blocks = [("head_0", 16, 16), ("G_middle_0", 16, 16), ("G_middle_1", 16, 16),
              ("up_0", 16, 8), ("up_1", 8, 4), ("up_2", 4, 2), ("up_3", 2, 1)]  # fmt: skip
    for name, fin, fout in blocks:
        fin, fout = fin * ngf, fout * ngf
        middle = min(fin, fout)
        spectral_conv(f"{name}.conv_0", middle, fin, 3)
        spectral_conv(f"{name}.conv_1", fout, middle, 3)
        spade(f"{name}.norm_0", fin)
        spade(f"{name}.norm_1", middle)
        if fin != fout:
            spectral_conv(f"{name}.conv_s", fout, fin, 1, bias=False)
            spade(f"{name}.norm_s", fin)
    table["conv_img.weight"] = (3, ngf, 3, 3)
    table["conv_img.bias"] = (3,)
    return table


def synboost_dissimilarity_table(
    vgg=(64, 128, 256, 512),
    semantic=(32, 64, 128, 256),
    fused=(64, 128, 256, 512),
    decoder=(64, 128, 256, 256),
    hidden=128,
    classes=19,
) -> Table:
    """giandbt/SynBoost DissimNetPrior (vgg16, semantic, prior, correlation, spade decoder);
    widths finest first."""
    table: Table = {}

    def conv(name: str, out: int, inp: int, kernel: int) -> None:
        table[f"{name}.weight"] = (out, inp, kernel, kernel)
        table[f"{name}.bias"] = (out,)

    vgg_convs = {1: (0, 2), 2: (1, 3), 3: (1, 3, 5), 4: (1, 3, 5)}
    in_channels = 3
    for layer, indices in vgg_convs.items():
        for index in indices:
            conv(f"vgg_encoder.layer{layer}.{index}", vgg[layer - 1], in_channels, 3)
            in_channels = vgg[layer - 1]
    for encoder, widths, inputs in (
        ("semantic_encoder", semantic, classes),
        ("prior_encoder", fused, 3),
    ):
        for level, width in enumerate(widths):
            conv(f"{encoder}.hidden_layers.{level}.0", width, inputs, 7 if level == 0 else 3)
            inputs = width
    for level, name in enumerate(("conv10", "conv9", "conv8", "conv7")):
        conv(name, fused[level], 2 * vgg[level] + semantic[level], 1)

    def decoder_layer(name: str, channels: int) -> None:
        for norm in ("norm1", "norm2"):
            conv(f"{name}.{norm}.shared.0", hidden, classes, 3)
            conv(f"{name}.{norm}.gamma", channels, hidden, 3)
            conv(f"{name}.{norm}.beta", channels, hidden, 3)
        conv(f"{name}.conv", channels, channels, 3)

    stages = [("conv1", "conv2", "tconv1", 3), ("conv12", "conv13", "tconv3", 2),
              ("conv3", "conv4", "tconv2", 1), ("conv5", "conv6", None, 0)]  # fmt: skip
    previous = 0
    for first, layer, up, level in stages:
        conv(f"{first}.0", decoder[level], previous + fused[level] + 1, 3)
        decoder_layer(layer, decoder[level])
        if up is not None:
            table[f"{up}.weight"] = (decoder[level], decoder[level], 2, 2)
            table[f"{up}.bias"] = (decoder[level],)
        previous = decoder[level]
    conv("conv11", 2, decoder[0], 1)
    return table


def torchvision_vgg_table(depth: int) -> Table:
    """torchvision's vgg16 / vgg19 ``features`` entries (and one classifier entry)."""
    per_block = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}[depth]
    table: Table = {}
    index, in_channels = 0, 3
    for block, (count, width) in enumerate(zip(per_block, (64, 128, 256, 512, 512), strict=True)):
        index += block > 0  # the max-pool before each block but the first
        for _ in range(count):
            table[f"features.{index}.weight"] = (width, in_channels, 3, 3)
            table[f"features.{index}.bias"] = (width,)
            index, in_channels = index + 2, width
    table["classifier.0.weight"] = (10, 25088)
    return table


def make_state(table: Table, seed: int) -> dict[str, torch.Tensor]:
    """Distinct random values for every entry, scaled like trained weights; spectral-norm
    vectors near the top singular vectors, as training leaves them."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for number, (key, shape) in enumerate(table.items()):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000 + number)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith(("weight_u", "weight_v")):
            continue
        elif len(shape) > 1:
            state[key] = torch.randn(shape, generator=generator) / math.sqrt(math.prod(shape[1:]))
        elif key.endswith("weight") and ("bn" in key or "downsample.1" in key or ".1." in key):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    for key in table:
        if key.endswith("weight_orig"):
            stem = key.removesuffix("weight_orig")
            matrix = state[key].reshape(state[key].shape[0], -1)
            u = F.normalize(torch.randn(matrix.shape[0], generator=generator), dim=0)
            for _ in range(20):
                v = F.normalize(matrix.t() @ u, dim=0)
                u = F.normalize(matrix @ v, dim=0)
            state[f"{stem}weight_u"] = F.normalize(
                u + 0.01 * torch.randn(u.shape, generator=generator), dim=0
            )
            state[f"{stem}weight_v"] = F.normalize(
                v + 0.01 * torch.randn(v.shape, generator=generator), dim=0
            )
    return state


# --- The reference networks as functional forwards over the file's entries ------------------


def _conv(x, s, name, stride=1, padding=0, dilation=1):
    return F.conv2d(x, s[f"{name}.weight"], s.get(f"{name}.bias"), stride, padding, dilation)


def _bn(x, s, name):
    stats = (s[f"{name}.running_mean"], s[f"{name}.running_var"])
    return F.batch_norm(x, *stats, s[f"{name}.weight"], s[f"{name}.bias"], False, 0.0, 1e-5)


def _bilinear(x, **size):
    return F.interpolate(x, mode="bilinear", align_corners=True, **size)


def fast_seg_icnet(s, x, blocks):
    """(eval logits, 1/4 logits, 1/8 auxiliary, 1/16 auxiliary) of Fast_Seg's ICNet."""
    sub1 = x
    for i in range(3):
        sub1 = F.relu(_bn(_conv(sub1, s, f"conv_sub1.{i}.conv", 2, 1), s, f"conv_sub1.{i}.bn"))
    h = _bilinear(x, scale_factor=0.5)
    for i, stride in ((1, 2), (2, 1), (3, 1)):
        h = F.relu(_bn(_conv(h, s, f"backbone.conv{i}", stride, 1), s, f"backbone.bn{i}"))
    h = F.max_pool2d(h, 3, 2, 1, ceil_mode=True)
    for layer, count in enumerate(blocks, 1):
        dilation = {3: 2, 4: 4}.get(layer, 1)
        for block in range(count):
            n = f"backbone.layer{layer}.{block}"
            stride = 2 if layer == 2 and block == 0 else 1
            out = F.relu(_bn(_conv(h, s, f"{n}.conv1"), s, f"{n}.bn1"))
            out = F.relu(
                _bn(_conv(out, s, f"{n}.conv2", stride, dilation, dilation), s, f"{n}.bn2")
            )
            out = _bn(_conv(out, s, f"{n}.conv3"), s, f"{n}.bn3")
            if block == 0:
                h = _bn(_conv(h, s, f"{n}.downsample.0", stride), s, f"{n}.downsample.1")
            h = F.relu(out + h)
        if layer == 2:
            sub2, h = h, _bilinear(h, scale_factor=0.5)
    head = "backbone.head"
    priors = [
        _bilinear(
            _bn(_conv(F.adaptive_avg_pool2d(h, bins), s, f"{head}.stages.{i}.1"), s,
                f"{head}.stages.{i}.2"),
            size=h.shape[-2:],
        )
        for i, bins in enumerate((1, 2, 3, 6))
    ]  # fmt: skip
    h = _conv(torch.cat([*priors, h], 1), s, f"{head}.bottleneck.0", padding=1)
    h = F.relu(_bn(h, s, f"{head}.bottleneck.1"))
    sub4 = F.relu(_bn(_conv(h, s, "conv_sub4.conv"), s, "conv_sub4.bn"))
    sub2 = F.relu(_bn(_conv(sub2, s, "conv_sub2.conv"), s, "conv_sub2.bn"))

    def cff(low, high, n):
        low = _conv(_bilinear(low, size=high.shape[-2:]), s, f"{n}.conv_low.0", 1, 2, 2)
        low = _bn(low, s, f"{n}.conv_low.1")
        high = _bn(_conv(high, s, f"{n}.conv_high.0"), s, f"{n}.conv_high.1")
        return F.relu(low + high), _conv(low, s, f"{n}.conv_low_cls")

    x24, cls24 = cff(sub4, sub2, "head.cff_24")
    x12, cls12 = cff(x24, sub1, "head.cff_12")
    quarter = _conv(_bilinear(x12, scale_factor=2), s, "head.conv_cls")
    return _bilinear(quarter, scale_factor=4), quarter, cls12, cls24


def nvlabs_spade_generator(s, label, bottom):
    """NVlabs SPADEGenerator ('more' upsampling, sync BN in eval mode, spectral norm in eval)."""

    def weight(name):
        original = s[f"{name}.weight_orig"]
        matrix = original.reshape(original.shape[0], -1)
        return original / torch.dot(s[f"{name}.weight_u"], matrix @ s[f"{name}.weight_v"])

    def norm(x, n):
        stats = (s[f"{n}.param_free_norm.running_mean"], s[f"{n}.param_free_norm.running_var"])
        normalized = F.batch_norm(x, *stats, None, None, False, 0.0, 1e-5)
        actv = F.relu(
            _conv(F.interpolate(label, size=x.shape[-2:]), s, f"{n}.mlp_shared.0", padding=1)
        )
        gamma, beta = (_conv(actv, s, f"{n}.mlp_{b}", padding=1) for b in ("gamma", "beta"))
        return normalized * (1 + gamma) + beta

    def block(x, n):
        dx = F.conv2d(F.leaky_relu(norm(x, f"{n}.norm_0"), 0.2), weight(f"{n}.conv_0"),
                      s[f"{n}.conv_0.bias"], padding=1)  # fmt: skip
        dx = F.conv2d(F.leaky_relu(norm(dx, f"{n}.norm_1"), 0.2), weight(f"{n}.conv_1"),
                      s[f"{n}.conv_1.bias"], padding=1)  # fmt: skip
        if f"{n}.conv_s.weight_orig" in s:
            x = F.conv2d(norm(x, f"{n}.norm_s"), weight(f"{n}.conv_s"))
        return x + dx

    def up(x):
        return F.interpolate(x, scale_factor=2)

    x = _conv(F.interpolate(label, size=bottom), s, "fc", padding=1)
    x = up(block(x, "head_0"))
    x = up(block(x, "G_middle_0"))
    x = block(x, "G_middle_1")
    for i in range(4):
        x = block(up(x), f"up_{i}")
    return torch.tanh(_conv(F.leaky_relu(x, 0.2), s, "conv_img", padding=1))


def spade_label_input(train_ids: torch.Tensor) -> torch.Tensor:
    """SynBoost's synthesis input: labelIds one-hot (35) plus SPADE's instance edges, with the
    label map as the instance map."""
    label_ids = torch.tensor(LABEL_ID_OF_TRAIN_ID)[train_ids.long()].unsqueeze(1)
    one_hot = torch.zeros(label_ids.shape[0], 35, *label_ids.shape[-2:]).scatter_(1, label_ids, 1.0)
    t = label_ids
    edge = torch.zeros_like(t, dtype=torch.bool)
    edge[:, :, :, 1:] |= t[:, :, :, 1:] != t[:, :, :, :-1]
    edge[:, :, :, :-1] |= t[:, :, :, 1:] != t[:, :, :, :-1]
    edge[:, :, 1:, :] |= t[:, :, 1:, :] != t[:, :, :-1, :]
    edge[:, :, :-1, :] |= t[:, :, 1:, :] != t[:, :, :-1, :]
    return torch.cat([one_hot, edge.float()], 1)


def synboost_dissimilarity(s, image, synth, semantic, prior):
    """SynBoost's DissimNetPrior (spade decoder, correlation, prior) forward."""

    def vgg(x):
        features = []
        for layer, indices in ((1, (0, 2)), (2, (1, 3)), (3, (1, 3, 5)), (4, (1, 3, 5))):
            x = F.max_pool2d(x, 2, 2) if layer > 1 else x
            for index in indices:
                x = F.relu(_conv(x, s, f"vgg_encoder.layer{layer}.{index}", padding=1))
            features.append(x)
        return features

    def encoder(x, n):
        features = []
        for level in range(4):
            stride, padding = (1, 3) if level == 0 else (2, 1)
            x = F.relu(_conv(x, s, f"{n}.hidden_layers.{level}.0", stride, padding))
            features.append(x)
        return features

    def spade(x, n):
        actv = F.relu(
            _conv(F.interpolate(semantic, size=x.shape[-2:]), s, f"{n}.shared.0", padding=1)
        )
        gamma, beta = (_conv(actv, s, f"{n}.{b}", padding=1) for b in ("gamma", "beta"))
        return F.instance_norm(x) * (1 + gamma) + beta

    def decoder_layer(x, n):
        return F.selu(
            spade(_conv(F.selu(spade(x, f"{n}.norm1")), s, f"{n}.conv", padding=1), f"{n}.norm2")
        )

    real, fake = vgg(image), vgg(synth)
    sem, pri = encoder(semantic, "semantic_encoder"), encoder(prior, "prior_encoder")
    levels = []
    for level, name in enumerate(("conv10", "conv9", "conv8", "conv7")):
        fused = _conv(torch.cat([real[level], fake[level], sem[level]], 1), s, name) * pri[level]
        correlation = (real[level] * fake[level]).sum(1, keepdim=True)
        levels.append(torch.cat([correlation, fused], 1))
    x = levels[3]
    decoder = (("conv1", "conv2", "tconv1", 2), ("conv12", "conv13", "tconv3", 1),
               ("conv3", "conv4", "tconv2", 0))  # fmt: skip
    for first, layer, up, level in decoder:
        x = decoder_layer(F.selu(_conv(x, s, f"{first}.0", padding=1)), layer)
        x = F.conv_transpose2d(x, s[f"{up}.weight"], s[f"{up}.bias"], stride=2)
        x = torch.cat([x, levels[level]], 1)
    x = decoder_layer(F.selu(_conv(x, s, "conv5.0", padding=1)), "conv6")
    return _conv(x, s, "conv11")


# --- Fixtures: reference files and the imported folder ---------------------------------------


def small_tables() -> dict[str, Table]:
    widths = SMALL_DISSIMILARITY
    vgg = tuple(max(1, round(w * widths["vgg_width"])) for w in (64, 128, 256, 512))
    return {
        "icnet": fast_seg_icnet_table(4, SMALL_ICNET.blocks, 4, 8),
        "spade": nvlabs_spade_table(4, 36, 8),
        "vgg19": torchvision_vgg_table(19),
        "dissimilarity": synboost_dissimilarity_table(
            vgg, widths["semantic_widths"], widths["fusion_widths"], widths["decoder_widths"], 8
        ),
    }


def write_tar(path: Path, members: dict[str, dict[str, torch.Tensor]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, state in members.items():
            buffer = io.BytesIO()
            torch.save(state, buffer)
            info = tarfile.TarInfo(name)
            info.size = buffer.tell()
            buffer.seek(0)
            archive.addfile(info, buffer)
    return path


@pytest.fixture(scope="module")
def reference_files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("references")
    states = {
        name: make_state(table, seed) for seed, (name, table) in enumerate(small_tables().items())
    }
    torch.save(states["icnet"], folder / "icnet_final.pth")
    safetensors.torch.save_file(states["spade"], str(folder / "latest_net_G.safetensors"))
    torch.save(states["vgg19"], folder / "vgg19-dcbb9e9d.pth")
    write_tar(
        folder / "models.tar",
        {
            "models/image-segmentation/other_net.pth": {"x": torch.zeros(1)},
            f"models/image-dissimilarity/{SYNBOOST_DISSIMILARITY_MEMBER}": states["dissimilarity"],
        },
    )
    files = {
        "icnet": folder / "icnet_final.pth",
        "spade": folder / "latest_net_G.safetensors",
        "vgg19": folder / "vgg19-dcbb9e9d.pth",
        "dissimilarity": folder / "models.tar",
    }
    return {"states": states, "files": files, "folder": folder}


@pytest.fixture(scope="module")
def imported(reference_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("light_imported")
    manifest, record = import_light_weights(out, reference_files["files"], config=SMALL)
    model, loaded = load_model(out, expected_preset="light")
    return {"out": out, "manifest": manifest, "record": record, "model": model, "loaded": loaded}


def assert_every_file_tensor_lands_once(file_state, network_state, transformed=()) -> None:
    """Distinct values: each untransformed file tensor equals exactly one network tensor, and
    the network has no tensor that no file tensor gave."""
    where: dict[bytes, list[str]] = {}
    for key, value in network_state.items():
        where.setdefault(value.numpy().tobytes(), []).append(key)
    found = []
    for key, value in file_state.items():
        if key in transformed:
            continue
        hits = where.get(value.numpy().tobytes(), [])
        assert len(hits) == 1, (key, hits)
        found += hits
    assert len(set(found)) == len(found)
    return set(found)


# --- Tests ----------------------------------------------------------------------------------


def test_full_size_tables_are_what_the_light_networks_expect() -> None:
    with torch.device("meta"):
        model = SynBoostModel(LIGHT)
    for table, plan in (
        (fast_seg_icnet_table(), fast_seg_icnet_plan(model.segmentation)),
        (nvlabs_spade_table(), nvlabs_spade_generator_plan(model.synthesis)),
        (synboost_dissimilarity_table(), synboost_dissimilarity_plan(model.dissimilarity)),
    ):
        expected = {k: s for e in plan.values() for k, s in zip(e.keys, e.shapes, strict=True)}
        assert expected == table


def test_icnet_tensors_land_in_place_and_compute_fast_segs_function(reference_files, imported):
    state, network = reference_files["states"]["icnet"], imported["model"].segmentation
    ours = network.state_dict()
    landed = assert_every_file_tensor_lands_once(state, ours)
    assert landed == set(ours)
    spots = {
        "backbone.head.bottleneck.0.weight": "pyramid_pooling.bottleneck.0.weight",
        "backbone.head.stages.2.1.weight": "pyramid_pooling.stages.2.1.weight",
        "conv_sub4.conv.weight": "project_thirty_second.0.weight",
        "head.cff_24.conv_low_cls.weight": "fuse_to_sixteenth.aux_classifier.weight",
        "conv_sub1.2.bn.running_var": "full_res_branch.2.1.running_var",
        "backbone.layer2.1.bn2.num_batches_tracked": "backbone.layer2.1.bn2.num_batches_tracked",
    }
    for theirs, mine in spots.items():
        assert torch.equal(ours[mine], state[theirs]), theirs
    rgb = torch.rand(2, 3, *SIZE)
    bgr = rgb[:, [2, 1, 0]] * 255.0 - FAST_SEG_MEAN
    expected = fast_seg_icnet(state, bgr, SMALL_ICNET.blocks)
    with torch.no_grad():
        logits = network(normalize_input(rgb, imported["model"].config.segmentation_normalization))
        torch.testing.assert_close(logits, expected[0], rtol=1e-4, atol=1e-4)
        semantic, _, _ = SegmentationStage(imported["model"])(rgb)
        assert torch.equal(semantic.long(), expected[0].argmax(1))
        network.train()
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()
        heads = network(bgr)
        network.eval()
    torch.testing.assert_close(heads.logits_quarter, expected[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(heads.aux_logits[0], expected[2], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(heads.aux_logits[1], expected[3], rtol=1e-4, atol=1e-4)


def test_baked_spectral_norm_is_the_weight_torch_uses_in_eval_mode() -> None:
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 5, 3))
    conv.train()(torch.randn(1, 3, 8, 8))  # one power iteration: u, v as training leaves them
    conv.eval()
    with torch.no_grad():
        conv(torch.randn(1, 3, 8, 8))
        baked = bake_spectral_norm(conv.weight_orig, conv.weight_u, conv.weight_v)
    assert torch.equal(baked, conv.weight)
    assert not torch.allclose(baked, conv.weight_orig)


def test_spade_tensors_land_in_place_and_compute_nvlabs_function(reference_files, imported):
    state, model = reference_files["states"]["spade"], imported["model"]
    ours = model.synthesis.state_dict()
    spectral = {k for k in state if k.endswith(("weight_orig", "weight_u", "weight_v"))}
    landed = assert_every_file_tensor_lands_once(state, ours, transformed=spectral)
    baked = {k for k in ours if k.endswith((".conv_0.weight", ".conv_1.weight", ".conv_s.weight"))}
    assert landed == set(ours) - baked and len(baked) == len(spectral) // 3
    name = "up_blocks.1.conv_s.weight"
    expected_weight = bake_spectral_norm(
        *(state[f"up_1.conv_s.weight_{e}"] for e in ("orig", "u", "v"))
    )
    assert torch.equal(ours[name], expected_weight)
    assert torch.equal(ours["head.norm_1.normalize.running_mean"],
                       state["head_0.norm_1.param_free_norm.running_mean"])  # fmt: skip
    generator = torch.Generator().manual_seed(5)
    coarse = torch.randint(0, 19, (2, 1, SIZE[0] // 8, SIZE[1] // 8), generator=generator)
    train_ids = F.interpolate(coarse.float(), size=SIZE)[:, 0].to(torch.int32)
    with torch.no_grad():
        expected = nvlabs_spade_generator(state, spade_label_input(train_ids), (1, 2))
        synthesized = SynthesisStage(model)(train_ids)
    torch.testing.assert_close(synthesized, ((expected + 1) / 2).clamp(0, 1), rtol=1e-4, atol=1e-5)
    assert synthesized.std() > 0.01  # not saturated: the comparison means something


def test_dissimilarity_tensors_land_in_place_and_compute_synboosts_function(
    reference_files, imported
):
    state, model = reference_files["states"]["dissimilarity"], imported["model"]
    net = model.dissimilarity
    ours = net.state_dict()
    decoder_convs = {
        "conv1.0.weight": 0,
        "conv12.0.weight": 1,
        "conv3.0.weight": 2,
        "conv5.0.weight": 3,
    }
    landed = assert_every_file_tensor_lands_once(state, ours, transformed=set(decoder_convs))
    assert landed == set(ours) - {f"decoder.{i}.conv.0.weight" for i in range(4)}
    for theirs, stage in decoder_convs.items():  # SynBoost: [previous, correlation, fused]
        mine, file = ours[f"decoder.{stage}.conv.0.weight"], state[theirs]
        fused = net.fusion[3 - stage].out_channels
        previous = file.shape[1] - fused - 1
        assert torch.equal(mine[:, :previous], file[:, :previous])
        assert torch.equal(mine[:, previous : previous + fused], file[:, previous + 1 :])
        assert torch.equal(mine[:, -1], file[:, previous])
    assert torch.equal(ours["vgg.features.12.weight"], state["vgg_encoder.layer3.3.weight"])
    assert torch.equal(ours["fusion.0.bias"], state["conv10.bias"])
    assert torch.equal(
        ours["decoder.2.block.norm_1.gamma.weight"], state["conv4.norm2.gamma.weight"]
    )
    image, synth = torch.rand(2, 3, *SIZE), torch.rand(2, 3, *SIZE)
    train_ids = torch.randint(0, 19, (2, *SIZE))
    semantic = F.one_hot(train_ids, 19).permute(0, 3, 1, 2).float()
    prior = torch.rand(2, 3, *SIZE)
    normalization = model.config.dissimilarity_image_normalization
    with torch.no_grad():
        expected = synboost_dissimilarity(
            state, (image - IMAGENET_MEAN) / IMAGENET_STD, (synth - IMAGENET_MEAN) / IMAGENET_STD,
            semantic, prior,
        )  # fmt: skip
        logits = net(normalize_input(image, normalization), normalize_input(synth, normalization),
                     semantic, prior)  # fmt: skip
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_perceptual_vgg19_takes_the_torchvision_file(reference_files, imported):
    state = reference_files["states"]["vgg19"]
    for key, value in imported["model"].perceptual.vgg.features.state_dict().items():
        assert torch.equal(value, state[f"features.{key}"]), key


def test_manifest_records_sources_hashes_licenses_and_the_config(reference_files, imported):
    data = json.loads(imported["manifest"].read_text())
    record = data["provenance"]["import"]
    assert record == imported["record"]
    assert record["untrained_parts"] == []
    for name, path in reference_files["files"].items():
        source = record["sources"][name]
        assert source["sha256"] == file_sha256(path)
        assert source["bytes"] == path.stat().st_size
        assert source["license"]
    dissimilarity = record["sources"]["dissimilarity"]
    assert dissimilarity["member"].endswith(SYNBOOST_DISSIMILARITY_MEMBER)
    assert len(dissimilarity["member_sha256"]) == 64
    assert "CC BY-NC-SA 4.0" in record["sources"]["spade"]["license"]
    assert "non-commercial" in record["license_note"]
    assert set(data["files"]) == {"segmentation", "synthesis", "perceptual", "dissimilarity"}
    assert imported["loaded"].config == SMALL


def test_parts_not_given_stay_untrained_and_the_manifest_says_so(reference_files, tmp_path):
    files = {"icnet": reference_files["files"]["icnet"]}
    _, record = import_light_weights(tmp_path / "seg_only", files, seed=3, config=SMALL)
    assert record["untrained_parts"] == ["synthesis", "perceptual", "dissimilarity"]
    assert record["parts"]["segmentation"] == {"trained": True, "from": ["icnet"]}
    assert record["parts"]["synthesis"] == {
        "trained": False,
        "from": [],
        "untrained": "random weights",
    }
    assert record["random_seed"] == 3 and "license_note" not in record
    model, _ = load_model(tmp_path / "seg_only", expected_preset="light")
    drawn = random_model(SMALL, seed=3)
    for part in ("synthesis", "perceptual", "dissimilarity"):
        for key, value in drawn.part(part).state_dict().items():
            assert torch.equal(model.part(part).state_dict()[key], value), (part, key)


def test_vgg16_file_gives_the_dissimilarity_encoder_only(tmp_path):
    config = SMALL.replace(
        dissimilarity=DissimilarityConfig(
            **{**SMALL_DISSIMILARITY, "vgg_width": 1.0}, correlation="sum"
        )
    )
    state = make_state(torchvision_vgg_table(16), 4)
    torch.save(state, tmp_path / "vgg16-397923af.pth")
    _, record = import_light_weights(
        tmp_path / "out", {"vgg16": tmp_path / "vgg16-397923af.pth"}, config=config
    )
    part = record["parts"]["dissimilarity"]
    assert part["trained"] is False and part["from"] == ["vgg16"]
    assert "all but the ImageNet VGG16 image encoder" in part["untrained"]
    model, _ = load_model(tmp_path / "out", expected_preset="light")
    for key, value in model.dissimilarity.vgg.features.state_dict().items():
        assert torch.equal(value, state[f"features.{key}"]), key


def test_a_file_that_does_not_fit_gets_one_message_naming_each_entry(reference_files, tmp_path):
    state = dict(reference_files["states"]["icnet"])
    del state["backbone.layer1.0.conv2.weight"]
    state["backbone.fc.weight"] = torch.zeros(3)
    state["head.conv_cls.weight"] = torch.zeros(19, 7, 1, 1)
    path = tmp_path / "icnet_final.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as raised:
        import_light_weights(tmp_path / "out", {"icnet": path}, config=SMALL)
    message = str(raised.value)
    assert message.startswith(f"{path} does not fit the light ICNet: ")
    assert "missing ['backbone.layer1.0.conv2.weight']" in message
    assert "unexpected ['backbone.fc.weight']" in message
    assert (
        "shape mismatch ['head.conv_cls.weight: file (19, 7, 1, 1) vs expected (19, 8, 1, 1)']"
        in message
    )
    assert not (tmp_path / "out").exists()


def test_dissimilarity_nets_we_cannot_represent_are_refused_with_the_reason(
    reference_files, tmp_path
):
    state = {k: v for k, v in reference_files["states"]["dissimilarity"].items()
             if not k.startswith("prior_encoder.")}  # fmt: skip
    path = write_tar(tmp_path / "models.tar", {f"models/{SYNBOOST_DISSIMILARITY_MEMBER}": state})
    with pytest.raises(ValueError, match=r"without the uncertainty \(prior\) encoder"):
        import_light_weights(tmp_path / "out", {"dissimilarity": path}, config=SMALL)
    with pytest.raises(ValueError, match="give one of them"):
        import_light_weights(tmp_path / "out", {"dissimilarity": path, "vgg16": path}, config=SMALL)
    with pytest.raises(ValueError, match="light layouts only"):
        import_light_weights(tmp_path / "out", {}, config=get_preset("edge"))


def test_read_checkpoint_unwraps_saved_states_and_reads_tar_members(tmp_path):
    state = {"a.weight": torch.arange(3.0), "b.bias": torch.ones(2)}
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "w.pth"
    )
    torch.save({"model": state, "optimizer": {"lr": 0.1}}, tmp_path / "m.pt")
    for name in ("w.pth", "m.pt"):
        read = read_checkpoint(tmp_path / name)
        assert read.state.keys() == state.keys() and read.member is None
        assert all(torch.equal(read.state[k], v) for k, v in state.items())
    archive = write_tar(
        tmp_path / "models.tar", {"./models/x/best.pth": state, "models/y/other.pth": {}}
    )
    by_name = read_checkpoint(archive, "best.pth")
    by_path = read_checkpoint(archive, "models/x/best.pth")
    assert by_name.member == by_path.member == "./models/x/best.pth"
    assert by_name.state.keys() == state.keys() and by_name.member_sha256 == by_path.member_sha256
    with pytest.raises(ValueError, match=r"no file member 'missing.pth'.*best.pth"):
        read_checkpoint(archive, "missing.pth")
    with pytest.raises(ValueError, match="name the member"):
        read_checkpoint(archive)
    with pytest.raises(ValueError, match=r"not a \.tar archive"):
        read_checkpoint(tmp_path / "w.pth", "best.pth")
    (tmp_path / "broken.tar").write_bytes(b"not a tar archive at all" * 40)
    with pytest.raises(ValueError, match=r"cannot read .* as a tar archive"):
        read_checkpoint(tmp_path / "broken.tar", "best.pth")


def test_pickled_objects_in_an_archive_are_refused(tmp_path):
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(1), "code": Path("x")}, buffer)
    info = tarfile.TarInfo("models/evil.pth")
    info.size = buffer.tell()
    buffer.seek(0)
    with tarfile.open(tmp_path / "models.tar", "w") as archive:
        archive.addfile(info, buffer)
    with pytest.raises(ValueError, match="weights-only"):
        read_checkpoint(tmp_path / "models.tar", "evil.pth")


def test_imported_weights_export_and_run_alike_on_onnxruntime_and_torch(imported, tmp_path):
    model = imported["model"]
    paths = export_onnx(model, tmp_path / "onnx")
    stages, specs = build_stages(model), stage_specs(model.config)
    generator = torch.Generator().manual_seed(1)
    inputs = {
        "image": torch.rand(1, 3, *SIZE, generator=generator),
        "synthesized": torch.rand(1, 3, *SIZE, generator=generator),
        "semantic": torch.randint(0, 19, (1, *SIZE), generator=generator).to(torch.int32),
        "entropy": torch.rand(1, 1, *SIZE, generator=generator),
        "distance": torch.rand(1, 1, *SIZE, generator=generator),
        "ensemble_weights": torch.tensor(model.config.ensemble_weights),
    }
    for name, path in paths.items():
        assert check_graph_for_tensorrt(path) == [], name
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {t.name: inputs[t.name].numpy() for t in specs[name].inputs}
        outputs = session.run(None, feed)
        with torch.no_grad():
            expected = stages[name](*(inputs[t.name] for t in specs[name].inputs))
        expected = (expected,) if isinstance(expected, torch.Tensor) else expected
        for spec, got, want in zip(specs[name].outputs, outputs, expected, strict=True):
            if spec.dtype is np.int32:
                assert (got != want.numpy()).mean() < 1e-3, (name, spec.name)
            else:
                np.testing.assert_allclose(
                    got, want.numpy(), atol=2e-4, err_msg=f"{name} {spec.name}"
                )


def _synboost(capsys, *args: str) -> tuple[int, str, str]:
    """Run the ``synboost`` command line in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_bench_and_infer_run_the_imported_folder(imported, tmp_path, capsys):
    out = str(imported["out"])
    code, stdout, stderr = _synboost(
        capsys, "bench", "--preset", "light", "--weights", out, "--backend", "torch", "--device",
        "cpu", "--size", "64x128", "--iters", "1", "--warmup", "0", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["preset"] == "light"
    assert set(report["flops"]) == {"segmentation", "synthesis", "dissimilarity", "total"}
    assert report["flops"]["total"] == sum(v for k, v in report["flops"].items() if k != "total")
    image = tmp_path / "street.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (48, 96, 3), np.uint8))
    code, _, stderr = _synboost(
        capsys, "infer", str(image), "--preset", "light", "--weights", out, "--backend",
        "torch", "--out", str(tmp_path / "maps"),
    )  # fmt: skip
    assert code == 0, stderr
    assert any((tmp_path / "maps").rglob("*.png"))


def test_the_node_runs_the_imported_folder(imported, monkeypatch):
    """The node loads the imported light folder, passes its self-test and reports the preset."""
    isolate_ros_domain(monkeypatch)
    context = rclpy.Context()
    rclpy.init(context=context)
    settings = {"preset": "light", "weights": str(imported["out"]), "backend": "torch"}
    try:
        node = AnomalyNode(
            "sb_light",
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in settings.items()],
        )
        try:
            (status,) = node.diagnostic_statuses()
            values = {kv.key: kv.value for kv in status.values}
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert values["preset"] == "light" and values["backend"] == "torch"
    assert values["self_test"].startswith("passed")  # within the latency budget or not


def test_cli_import_refuses_conflicting_and_missing_files(tmp_path, capsys):
    target = str(tmp_path / "o")
    code, _, stderr = _synboost(
        capsys, "weights", "import", "--vgg16", "a.pth", "--dissimilarity", "b.tar", "--out", target
    )
    assert code == 2 and "give one of them" in stderr
    code, _, stderr = _synboost(capsys, "weights", "import", "--out", target)
    assert code == 2 and "give at least one checkpoint" in stderr
    assert not (tmp_path / "o").exists()
