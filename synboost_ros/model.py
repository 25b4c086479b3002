"""The four trainable parts of a SynBoost model, built from a ``PipelineConfig``."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import nn

from synboost_ros.config import ICNET_LAYOUTS, MODEL_PARTS, PipelineConfig
from synboost_ros.nn.dissimilarity import DissimilarityNet
from synboost_ros.nn.icnet import ICNet
from synboost_ros.nn.icnet_lite0 import ICNetLite0
from synboost_ros.nn.icnet_psp import ICNetPSP
from synboost_ros.nn.label_maps import label_input_channels
from synboost_ros.nn.perceptual import PerceptualDifference
from synboost_ros.nn.spade_generator import SPADEGenerator


class SynBoostModel(nn.Module):
    """Container of the segmentation, synthesis, perceptual and dissimilarity networks."""

    def __init__(self, config: PipelineConfig, spectral_norm: bool = False) -> None:
        super().__init__()
        self.config = config
        self.segmentation = segmentation_network(config)
        self.synthesis = SPADEGenerator(
            label_input_channels(config.num_classes, config.spade.label_input),
            config.synthesis_size,
            config.spade,
            spectral_norm=spectral_norm,
        )
        self.perceptual = PerceptualDifference(
            config.perceptual_vgg_width,
            config.perceptual_scale,
            config.perceptual_normalization,
            config.perceptual_backbone,
        )
        self.dissimilarity = DissimilarityNet(config.num_classes, config.dissimilarity)
        self._weights_record: tuple[dict[str, Any], tuple] | None = None

    def part(self, name: str) -> nn.Module:
        """Return one of ``MODEL_PARTS`` by name."""
        if name not in MODEL_PARTS:
            raise ValueError(f"unknown model part {name!r}; parts are {MODEL_PARTS}")
        return getattr(self, name)

    def remember_weights(self, identity: dict[str, Any]) -> None:
        """Record where the current weights came from (JSON data: the part files' sha256s,
        or a random seed), so that they can be identified without reading them."""
        state = self._tensor_state()
        self._weights_record = None if state is None else (identity, state)

    @property
    def weights_identity(self) -> dict[str, Any] | None:
        """The identity given to ``remember_weights``; None when none was given or a weight or
        buffer has changed since: loaded into, trained, replaced, moved or cast (writes
        through ``tensor.data`` are not seen)."""
        if self._weights_record is None:
            return None
        identity, recorded = self._weights_record
        return identity if self._tensor_state() == recorded else None

    def _tensor_state(self) -> tuple | None:
        # Each in-place change bumps a tensor's version counter; replacing a tensor or its
        # storage changes its id or data pointer. Inference tensors have no version counter.
        tensors = self.state_dict(keep_vars=True)
        if any(tensor.is_inference() for tensor in tensors.values()):
            return None
        return tuple(
            (name, id(tensor), tensor._version, tensor.data_ptr())
            for name, tensor in tensors.items()
        )


def state_dict_sha256(module: nn.Module) -> str:
    """Hex sha256 over a module's state dict: each entry's name, dtype, shape and value bytes,
    in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        values = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{values.dtype}|{tuple(values.shape)}|".encode())
        digest.update(values.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


_ICNETS: dict[str, type[ICNet | ICNetPSP | ICNetLite0]] = {
    "compact": ICNet,
    "psp": ICNetPSP,
    "lite0": ICNetLite0,
}


def segmentation_network(config: PipelineConfig) -> ICNet | ICNetPSP | ICNetLite0:
    """The ICNet of ``config.icnet.layout``."""
    layout = config.icnet.layout
    if layout not in ICNET_LAYOUTS:
        raise ValueError(f"ICNet layout must be one of {ICNET_LAYOUTS}, got {layout!r}")
    return _ICNETS[layout](config.num_classes, config.segmentation_size, config.icnet)
