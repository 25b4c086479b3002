"""Starting a part from the ImageNet EfficientNet-Lite0 trunk, and how the trunk then trains.

``--pretrained-trunk`` (seg) / ``--pretrained-encoder`` (dissim) rebuild the part with a Lite0
trunk (ICNet layout "lite0", dissimilarity encoder "efficientnet_lite0"), switch its input
normalisation to Lite0's and load the installed package's weights into the trunk. Any part's
``trunk`` (the ResNet, VGG16 or Lite0 that ImageNet weights initialise) can train at a scaled
learning rate and with frozen batch-norm statistics.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from synboost_ros.config import LITE0_NORMALIZATION
from synboost_ros.model import SynBoostModel, segmentation_network
from synboost_ros.nn.dissimilarity import DissimilarityNet
from synboost_ros.nn.pretrained import (
    EFFICIENTNET_LITE0_IMAGENET,
    load_efficientnet_lite0,
    pretrained_file_or_error,
)

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def lite0_provenance(path: Path) -> dict[str, object]:
    """The provenance record of the Lite0 ImageNet weights read from ``path``."""
    return {**EFFICIENTNET_LITE0_IMAGENET.provenance(), "path": str(path)}


def pretrained_lite0_segmentation(model: SynBoostModel, seed: int) -> dict[str, object]:
    """Give ``model`` a fresh ICNet of layout "lite0" (seeded) with the ImageNet Lite0 trunk
    and Lite0's input normalisation; return the weights' provenance."""
    path = pretrained_file_or_error()
    model.config = model.config.replace(
        icnet=dataclasses.replace(model.config.icnet, layout="lite0"),
        segmentation_normalization=LITE0_NORMALIZATION,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.segmentation = segmentation_network(model.config)
    load_efficientnet_lite0(model.segmentation.trunk, path)
    return lite0_provenance(path)


def pretrained_lite0_dissimilarity(
    model: SynBoostModel, use_uncertainty: bool, seed: int, reuse_rest: bool = False
) -> dict[str, object]:
    """Give ``model`` a fresh dissimilarity net (seeded) whose image encoder is the ImageNet
    Lite0 trunk, with Lite0's input normalisation; return the weights' provenance.

    ``reuse_rest``: every other tensor of the new net whose name and shape match one of the
    net it replaces starts from that one (semantic and uncertainty encoders, fusion, decoder);
    the provenance then counts them."""
    path = pretrained_file_or_error()
    previous = model.dissimilarity.state_dict()
    model.config = model.config.replace(
        dissimilarity=dataclasses.replace(model.config.dissimilarity, encoder="efficientnet_lite0"),
        dissimilarity_image_normalization=LITE0_NORMALIZATION,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.dissimilarity = DissimilarityNet(
            model.config.num_classes, model.config.dissimilarity, use_uncertainty
        )
    load_efficientnet_lite0(model.dissimilarity.trunk, path)
    provenance = lite0_provenance(path)
    if reuse_rest:
        provenance["reused_from_init"] = reuse_matching(model.dissimilarity, previous)
    return provenance


def reuse_matching(network: nn.Module, source: dict[str, torch.Tensor]) -> int:
    """Copy into ``network`` every tensor of ``source`` whose name and shape match, except its
    ``trunk``'s; return how many were copied."""
    state = network.state_dict()
    prefix = next(name for name, module in network.named_modules() if module is network.trunk)
    trunk = {f"{prefix}.{name}" for name in network.trunk.state_dict()}
    reused = {
        name: tensor
        for name, tensor in source.items()
        if name in state and name not in trunk and state[name].shape == tensor.shape
    }
    network.load_state_dict(reused, strict=False)
    return len(reused)


def trunk_parameter_groups(network: nn.Module, lr: float, trunk_lr_scale: float) -> list[dict]:
    """Optimizer parameter groups: the network without its ``trunk`` at ``lr`` first, then the
    trunk at ``lr * trunk_lr_scale``; one group where the scale is 1."""
    if not trunk_lr_scale >= 0.0:
        raise ValueError(f"trunk learning-rate scale must be >= 0, got {trunk_lr_scale}")
    if trunk_lr_scale == 1.0:
        return [{"params": list(network.parameters()), "lr": lr}]
    trunk = list(network.trunk.parameters())
    trunk_ids = {id(p) for p in trunk}
    rest = [p for p in network.parameters() if id(p) not in trunk_ids]
    return [{"params": rest, "lr": lr}, {"params": trunk, "lr": lr * trunk_lr_scale}]


def freeze_batch_norm_statistics(module: nn.Module) -> int:
    """Keep every batch norm in ``module`` in eval mode (running statistics used and never
    updated; its affine weights still train), even after ``train()``; return their count."""
    norms = [m for m in module.modules() if isinstance(m, _BATCH_NORMS)]
    for norm in norms:
        norm.register_forward_pre_hook(_use_running_statistics)
    return len(norms)


def _use_running_statistics(norm: nn.Module, _inputs: tuple) -> None:
    norm.training = False
