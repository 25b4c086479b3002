"""The public Cityscapes checkpoints of the paper's Light pipeline, in this package's networks.

One converter per checkpoint layout, each from a flat state dict in the reference's key names
(``nn/pretrained.py`` reads the files) to the state dict of our network:

- lxtGH/Fast_Seg ``icnet_final.pth`` -> ``ICNetPSP`` (renamed keys only);
- NVlabs/SPADE ``checkpoints/cityscapes_pretrained/latest_net_G.pth`` -> ``SPADEGenerator``
  with ``label_input="label_ids_edges"`` and ``param_free_norm="batch"``: renamed keys, and each
  spectral-normalised weight (``weight_orig``, ``weight_u``, ``weight_v``) replaced by the
  weight torch's spectral norm computes from them in eval mode,
  ``weight_orig / (u . (W v))`` with W = ``weight_orig`` as an (out, -1) matrix;
- giandbt/SynBoost ``DissimNetPrior`` (VGG16 encoder, semantic, prior and correlation
  branches, SPADE decoder) -> ``DissimilarityNet`` with ``decoder_widths=(64, 128, 256, 256)``
  and ``correlation="sum"``: renamed keys, and the decoder's input channels reordered (SynBoost
  puts the correlation channel before the fused features, we after them).

The expected entries are derived from the target network, so reduced widths convert as well.
A file that does not fit gets one ``ValueError`` naming, in the file's key names, every
missing, unexpected and mis-shaped entry. BN ``num_batches_tracked`` counters may be absent
(older files); the network keeps its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from synboost_ros.nn.dissimilarity import NUM_LEVELS, DissimilarityNet
from synboost_ros.nn.icnet_psp import ICNetPSP
from synboost_ros.nn.spade_generator import SPADEGenerator

StateDict = dict[str, torch.Tensor]
Shape = tuple[int, ...]
_BN_COUNTER = "num_batches_tracked"
_SHOWN = 5  # entries named per kind of problem in an error message


@dataclass(frozen=True)
class Entry:
    """How one tensor of the target network is made from entries of the file."""

    keys: tuple[str, ...]  # file entries, in the order ``make`` takes them
    shapes: tuple[Shape, ...]  # their expected shapes
    make: Callable[..., torch.Tensor] = lambda tensor: tensor
    optional: bool = False  # may be absent: the network keeps its value


def convert(
    plan: Mapping[str, Entry], state: Mapping[str, torch.Tensor], source: str, target: str
) -> StateDict:
    """The target tensors ``plan`` makes from ``state``; one error naming every problem."""
    expected = {
        key: shape
        for entry in plan.values()
        for key, shape in zip(entry.keys, entry.shapes, strict=True)
    }
    required = [key for entry in plan.values() if not entry.optional for key in entry.keys]
    missing = [key for key in required if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshaped = [
        f"{key}: file {tuple(state[key].shape)} vs expected {shape}"
        for key, shape in expected.items()
        if key in state and tuple(state[key].shape) != shape
    ]
    problems = [
        _listing(kind, names)
        for kind, names in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", misshaped),
        )
        if names
    ]
    if problems:
        raise ValueError(f"{source} does not fit {target}: " + "; ".join(problems))
    return {
        name: entry.make(*(state[key] for key in entry.keys))
        for name, entry in plan.items()
        if all(key in state for key in entry.keys)
    }


def _listing(kind: str, names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"{kind} {names[:_SHOWN]}{more}"


def load_converted(module: nn.Module, converted: StateDict) -> None:
    """Load ``converted`` strictly; entries it lacks (optional ones) keep their values."""
    module.load_state_dict({**module.state_dict(), **converted}, strict=True)


def _renamed(key: str, rules: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in rules:
        renamed, count = re.subn(pattern, replacement, key, count=1)
        if count:
            return renamed
    raise KeyError(f"no reference name for {key!r}")


def _rename_plan(module: nn.Module, rules: tuple[tuple[str, str], ...]) -> dict[str, Entry]:
    return {
        key: Entry(
            (_renamed(key, rules),), (tuple(value.shape),), optional=key.endswith(_BN_COUNTER)
        )
        for key, value in module.state_dict().items()
    }


# --- lxtGH/Fast_Seg ICNet ---------------------------------------------------------------

_ICNET_RULES = (
    (r"^full_res_branch\.(\d+)\.0\.", r"conv_sub1.\1.conv."),
    (r"^full_res_branch\.(\d+)\.1\.", r"conv_sub1.\1.bn."),
    (r"^pyramid_pooling\.", "backbone.head."),
    (r"^backbone\.", "backbone."),
    (r"^project_sixteenth\.0\.", "conv_sub2.conv."),
    (r"^project_sixteenth\.1\.", "conv_sub2.bn."),
    (r"^project_thirty_second\.0\.", "conv_sub4.conv."),
    (r"^project_thirty_second\.1\.", "conv_sub4.bn."),
    (r"^fuse_to_sixteenth\.low_conv\.", "head.cff_24.conv_low."),
    (r"^fuse_to_sixteenth\.high_conv\.", "head.cff_24.conv_high."),
    (r"^fuse_to_sixteenth\.aux_classifier\.", "head.cff_24.conv_low_cls."),
    (r"^fuse_to_eighth\.low_conv\.", "head.cff_12.conv_low."),
    (r"^fuse_to_eighth\.high_conv\.", "head.cff_12.conv_high."),
    (r"^fuse_to_eighth\.aux_classifier\.", "head.cff_12.conv_low_cls."),
    (r"^classifier\.", "head.conv_cls."),
)


def fast_seg_icnet_plan(network: ICNetPSP) -> dict[str, Entry]:
    """Our ``ICNetPSP`` entries from Fast_Seg's ``ICNet`` state dict."""
    return _rename_plan(network, _ICNET_RULES)


# --- NVlabs SPADE generator ---------------------------------------------------------------

_SPADE_RULES = (
    (r"^label_conv\.", "fc."),
    (r"^head\.", "head_0."),
    (r"^middle_(\d)\.", r"G_middle_\1."),
    (r"^up_blocks\.(\d+)\.", r"up_\1."),
    (r"^to_rgb\.", "conv_img."),
)
_SPADE_NORM_RULES = (
    (r"\.normalize\.", ".param_free_norm."),
    (r"\.shared\.0\.", ".mlp_shared.0."),
    (r"\.gamma\.", ".mlp_gamma."),
    (r"\.beta\.", ".mlp_beta."),
)
_SPECTRAL_CONV = re.compile(r"\.conv_[01s]\.weight$")


def bake_spectral_norm(
    weight_orig: torch.Tensor, weight_u: torch.Tensor, weight_v: torch.Tensor
) -> torch.Tensor:
    """The weight ``torch.nn.utils.spectral_norm`` uses in eval mode (no power iteration)."""
    matrix = weight_orig.reshape(weight_orig.shape[0], -1)
    sigma = torch.dot(weight_u, torch.mv(matrix, weight_v))
    return weight_orig / sigma


def _spade_name(key: str) -> str:
    name = _renamed(key, _SPADE_RULES)
    for pattern, replacement in _SPADE_NORM_RULES:
        name = re.sub(pattern, replacement, name)
    return name


def nvlabs_spade_generator_plan(
    network: SPADEGenerator, spectral_norm: bool = True
) -> dict[str, Entry]:
    """Our ``SPADEGenerator`` entries from NVlabs' ``SPADEGenerator`` state dict (no VAE).

    With ``spectral_norm`` (the released checkpoints) the ResBlock conv weights come as
    ``weight_orig`` / ``weight_u`` / ``weight_v`` and are baked; without, as plain weights.
    """
    plan = {}
    for key, value in network.state_dict().items():
        name, shape = _spade_name(key), tuple(value.shape)
        if spectral_norm and _SPECTRAL_CONV.search(key):
            stem = name.removesuffix("weight")
            plan[key] = Entry(
                (f"{stem}weight_orig", f"{stem}weight_u", f"{stem}weight_v"),
                (shape, (shape[0],), (value[0].numel(),)),
                bake_spectral_norm,
            )
        else:
            plan[key] = Entry((name,), (shape,), optional=key.endswith(_BN_COUNTER))
    return plan


# --- giandbt/SynBoost DissimNetPrior ----------------------------------------------------

# SynBoost's VGG16 encoder slices torchvision's ``features`` at these indices into layer1-4.
_VGG_SLICE_STARTS = (0, 4, 9, 16)
# SynBoost's modules per decoder stage, coarsest first: (3x3 conv, SPADE block, transposed conv).
_DECODER_MODULES = (
    ("conv1", "conv2", "tconv1"),
    ("conv12", "conv13", "tconv3"),
    ("conv3", "conv4", "tconv2"),
    ("conv5", "conv6", None),
)
# Our fusion convs, finest first, and SynBoost's.
_FUSION_MODULES = ("conv10", "conv9", "conv8", "conv7")
_BLOCK_RULES = (
    (r"^norm_0\.", "norm1."),
    (r"^norm_1\.", "norm2."),
    (r"^conv\.", "conv."),
)


def _vgg_name(key: str) -> str:
    index, rest = key.removeprefix("vgg.features.").split(".", 1)
    start = max(s for s in _VGG_SLICE_STARTS if s <= int(index))
    return f"vgg_encoder.layer{_VGG_SLICE_STARTS.index(start) + 1}.{int(index) - start}.{rest}"


def _dissimilarity_name(key: str) -> str:
    if key.startswith("vgg.features."):
        return _vgg_name(key)
    for encoder in ("semantic_encoder", "prior_encoder"):
        if key.startswith(f"{encoder}.stages."):
            return f"{encoder}.hidden_layers." + key.removeprefix(f"{encoder}.stages.")
    if key.startswith("fusion."):
        level, rest = key.removeprefix("fusion.").split(".", 1)
        return f"{_FUSION_MODULES[int(level)]}.{rest}"
    if key.startswith("head."):
        return "conv11." + key.removeprefix("head.")
    stage, part, rest = key.removeprefix("decoder.").split(".", 2)
    conv, block, up = _DECODER_MODULES[int(stage)]
    if part == "conv":
        return f"{conv}.{rest}"
    if part == "up" and up is not None:
        return f"{up}.{rest}"
    if part == "block":
        return f"{block}." + _renamed(rest, _BLOCK_RULES)
    raise KeyError(f"no reference name for {key!r}")


def _correlation_first_order(previous: int, fused: int) -> torch.Tensor:
    """SynBoost's input channel of each of our decoder input channels: ours are [previous
    stage (``previous``), fused level (``fused``), correlation (1)], SynBoost's [previous
    stage, correlation, fused level]."""
    return torch.cat(
        [
            torch.arange(previous),
            torch.arange(previous + 1, previous + 1 + fused),
            torch.tensor([previous]),
        ]
    )


def synboost_dissimilarity_plan(network: DissimilarityNet) -> dict[str, Entry]:
    """Our ``DissimilarityNet`` entries from SynBoost's ``DissimNetPrior`` state dict
    (``semantic``, ``prior``, ``correlation`` true; ``spade: decoder``)."""
    if network.prior_encoder is None:
        raise ValueError("SynBoost's DissimNetPrior needs a net with the uncertainty encoder")
    state = network.state_dict()
    plan = {
        key: Entry((_dissimilarity_name(key),), (tuple(value.shape),))
        for key, value in state.items()
    }
    fused = [conv.out_channels for conv in network.fusion]
    for stage in range(NUM_LEVELS):
        key = f"decoder.{stage}.conv.0.weight"
        level = NUM_LEVELS - 1 - stage
        previous = state[key].shape[1] - fused[level] - 1
        order = _correlation_first_order(previous, fused[level])
        plan[key] = Entry(
            plan[key].keys, plan[key].shapes, lambda weight, order=order: weight[:, order]
        )
    return plan


def check_synboost_dissimilarity_kind(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse SynBoost dissimilarity nets our network cannot represent, saying why."""
    if not any(key.startswith("prior_encoder.") for key in state):
        raise ValueError(
            f"{source} holds a SynBoost DissimNet without the uncertainty (prior) encoder "
            "(e.g. the baseline or the fishyscapes_package Light training configuration): our "
            "dissimilarity network always multiplies the fused features by the encoded "
            "entropy / perceptual difference / distance maps; only DissimNetPrior "
            "(prior: True, spade: 'decoder') can be imported"
        )
    if not any(key.startswith("conv2.norm1.") for key in state):
        raise ValueError(
            f"{source} holds a SynBoost dissimilarity net without the SPADE decoder "
            "(spade: ''): our decoder stages are SPADE blocks; only spade: 'decoder' imports"
        )
