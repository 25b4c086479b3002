"""Choose the fixed perceptual-difference scale from training images.

The perceptual difference V is mapped to 1 - exp(-V / s). With s the ``quantile`` of V over
the pixels of (normal) training images, a typical resynthesis error stays below
1 - exp(-1) = 0.63 and only larger errors approach 1, the same for every image.
``with_pretrained_perceptual`` first moves the perceptual difference onto a pretrained backbone
(its scale must then be calibrated again).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from tqdm import tqdm

from synboost_ros.config import LITE0_NORMALIZATION, MODEL_PARTS
from synboost_ros.model import SynBoostModel
from synboost_ros.model_loading import rebuilt_model
from synboost_ros.nn.pretrained import load_efficientnet_lite0, pretrained_file_or_error
from synboost_ros.training.inference_maps import MapExtractor, image_tensor

DEFAULT_QUANTILE = 0.95


@torch.no_grad()
def raw_perceptual_differences(
    model: SynBoostModel, images: Iterable[np.ndarray], device: str = "cpu"
) -> np.ndarray:
    """V (before normalisation) of every pixel of each image and its resynthesis, flattened."""
    extractor = MapExtractor(model, torch.device(device))
    perceptual = model.perceptual.to(device).eval()
    values = []
    for image in tqdm(images, desc="perceptual calibration", unit="img"):
        synthesized = extractor.synthesize(extractor.segment(image).semantic)
        real = image_tensor(extractor.synthesis_input(image)).to(device)
        fake = torch.from_numpy(synthesized)[None].to(device)
        values.append(perceptual.raw_difference(real, fake).flatten().cpu().numpy())
    if not values:
        raise ValueError("perceptual calibration needs at least one image")
    return np.concatenate(values)


def calibrate_perceptual_scale(
    model: SynBoostModel,
    images: Iterable[np.ndarray],
    quantile: float = DEFAULT_QUANTILE,
    device: str = "cpu",
) -> SynBoostModel:
    """The model with ``perceptual_scale`` set to the ``quantile`` of V over ``images``."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    scale = float(np.quantile(raw_perceptual_differences(model, images, device), quantile))
    if not scale > 0.0:
        raise ValueError("perceptual differences are all zero: cannot calibrate the scale")
    return rebuilt_model(model, model.config.replace(perceptual_scale=scale))


def with_pretrained_perceptual(model: SynBoostModel, backbone: str) -> SynBoostModel:
    """The model with its perceptual difference on ``backbone``'s ImageNet weights; the other
    parts keep theirs. Only "efficientnet_lite0" has weights here (the installed package of
    the pretrained extra); its input normalisation comes with it."""
    if backbone != "efficientnet_lite0":
        raise ValueError(
            f"no pretrained weights for a {backbone!r} perceptual difference here: only "
            "efficientnet_lite0 (the pretrained extra)"
        )
    config = model.config.replace(
        perceptual_backbone=backbone, perceptual_normalization=LITE0_NORMALIZATION
    )
    switched = SynBoostModel(config)
    for part in MODEL_PARTS:
        if part != "perceptual":
            switched.part(part).load_state_dict(model.part(part).state_dict(), strict=True)
    load_efficientnet_lite0(switched.perceptual.trunk, pretrained_file_or_error())
    return switched.eval()
