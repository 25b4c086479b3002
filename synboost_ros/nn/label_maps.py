"""Label maps as network inputs: one-hot maps, and the SPADE generator's label input.

``SpadeConfig.label_input`` chooses the generator's input made from a trainId map:

- ``"train_ids"``: the one-hot trainIds (``num_classes`` channels);
- ``"label_ids_edges"``: what NVlabs SPADE's Cityscapes generator takes, made as SynBoost makes
  it from predicted trainIds: each trainId mapped to its Cityscapes labelId, the one-hot of the
  35 labelIds, and one instance-edge channel (SPADE's ``get_edges``: 1 where a pixel differs
  from a 4-neighbour) computed on that labelId map, which stands in for the instance map, so
  edges are the class boundaries. Ids without a labelId (255 = ignore) become labelId 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.classes import TRAIN_ID_TO_LABEL_ID

LABEL_INPUTS = ("train_ids", "label_ids_edges")
SPADE_CITYSCAPES_LABEL_NC = 35  # NVlabs SPADE's ``label_nc`` for Cityscapes labelIds


def one_hot(semantic: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, H, W) integer ids -> (N, C, H, W) float one-hot, as an export-friendly comparison."""
    classes = torch.arange(num_classes, device=semantic.device, dtype=semantic.dtype)
    return (semantic.unsqueeze(1) == classes.view(1, -1, 1, 1)).float()


def instance_edges(ids: torch.Tensor) -> torch.Tensor:
    """(N, H, W) ids -> (N, 1, H, W) float: 1 where a pixel's id differs from the pixel left,
    right, above or below it."""
    across = (ids[:, :, 1:] != ids[:, :, :-1]).float()
    down = (ids[:, 1:, :] != ids[:, :-1, :]).float()
    horizontal = torch.maximum(F.pad(across, (1, 0)), F.pad(across, (0, 1)))
    vertical = torch.maximum(F.pad(down, (0, 0, 1, 0)), F.pad(down, (0, 0, 0, 1)))
    return torch.maximum(horizontal, vertical).unsqueeze(1)


def label_input_channels(num_classes: int, label_input: str) -> int:
    """Channels of the generator input ``label_input`` for ``num_classes`` trainIds."""
    if label_input not in LABEL_INPUTS:
        raise ValueError(f"label_input must be one of {LABEL_INPUTS}, got {label_input!r}")
    return num_classes if label_input == "train_ids" else SPADE_CITYSCAPES_LABEL_NC + 1


class SynthesisLabelInput(nn.Module):
    """(N, H, W) trainIds -> the (N, C, H, W) generator input of ``label_input``."""

    def __init__(self, num_classes: int, label_input: str) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.label_input = label_input
        self.channels = label_input_channels(num_classes, label_input)
        if label_input == "label_ids_edges":
            if num_classes != len(TRAIN_ID_TO_LABEL_ID):
                raise ValueError(
                    f"label_input 'label_ids_edges' maps the {len(TRAIN_ID_TO_LABEL_ID)} "
                    f"Cityscapes trainIds; the model has {num_classes} classes"
                )
            table = torch.zeros(256, dtype=torch.int64)
            table[:num_classes] = torch.from_numpy(TRAIN_ID_TO_LABEL_ID.astype("int64"))
            self.register_buffer("label_ids", table, persistent=False)

    def forward(self, semantic: torch.Tensor) -> torch.Tensor:
        """The generator input for a trainId map (values 0-255)."""
        if self.label_input == "train_ids":
            return one_hot(semantic, self.num_classes)
        label_ids = self.label_ids[semantic.long()]
        return torch.cat(
            [one_hot(label_ids, SPADE_CITYSCAPES_LABEL_NC), instance_edges(label_ids)], dim=1
        )
