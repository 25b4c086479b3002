"""``synboost weights import``: a ``light`` weights folder from the public Cityscapes checkpoints.

Each part comes from its own published file (``LIGHT_SOURCES``), converted exactly into the
``light`` preset's networks (``nn/cityscapes_checkpoints.py``, ``nn/pretrained.py``):

- segmentation: lxtGH/Fast_Seg's ICNet ``icnet_final.pth``;
- synthesis: NVlabs SPADE's Cityscapes generator ``latest_net_G.pth`` (CC BY-NC-SA 4.0:
  non-commercial use only, and so is every folder that holds it);
- perceptual difference: torchvision's ImageNet VGG19;
- dissimilarity: torchvision's ImageNet VGG16 as the image encoder (the rest untrained), or
  SynBoost's released ``DissimNetPrior`` (its ``models.tar`` or the ``.pth`` inside).

Parts not given keep deterministic random weights; the manifest's provenance lists every source
file with its sha256 and license, and says which parts are untrained.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synboost_ros.config import PipelineConfig, get_preset
from synboost_ros.files import file_sha256
from synboost_ros.model import SynBoostModel
from synboost_ros.model_loading import random_model
from synboost_ros.nn.cityscapes_checkpoints import (
    check_synboost_dissimilarity_kind,
    convert,
    fast_seg_icnet_plan,
    load_converted,
    nvlabs_spade_generator_plan,
    synboost_dissimilarity_plan,
)
from synboost_ros.nn.pretrained import Checkpoint, load_torchvision_vgg, read_checkpoint
from synboost_ros.weights import save_weights

PRESET = "light"
IMPORT_KEY = "import"  # manifest provenance key
# SynBoost's released dissimilarity net inside models.tar (image_dissimilarity/configs/test/
# ours_configuration.yaml: save_folder, which_epoch and experiment_name).
SYNBOOST_DISSIMILARITY_MEMBER = "best_net_baseline_void_prior_spadedecoder_mult_3.pth"
NON_COMMERCIAL_NOTE = (
    "the synthesis weights are NVlabs SPADE's, licensed CC BY-NC-SA 4.0: this folder may be "
    "used for non-commercial purposes only"
)


@dataclass(frozen=True)
class CheckpointSource:
    """A published checkpoint: which part it fills, where it comes from, its license."""

    part: str
    project: str
    file: str
    url: str
    license: str


LIGHT_SOURCES: dict[str, CheckpointSource] = {
    "icnet": CheckpointSource(
        "segmentation",
        "lxtGH/Fast_Seg (ICNet, Cityscapes)",
        "icnet_final.pth",
        "https://drive.google.com/file/d/1A6z87_GCHEuKeZfbGpEvnkZ0POdW2Q_U/view?usp=sharing",
        "Apache-2.0 (the repository's license)",
    ),
    "spade": CheckpointSource(
        "synthesis",
        "NVlabs/SPADE (Cityscapes generator)",
        "checkpoints/cityscapes_pretrained/latest_net_G.pth of checkpoints.tar.gz",
        "https://drive.google.com/file/d/12gvlTbMvUcJewQlSEaZdeb2CdOB-b8kQ/view?usp=sharing",
        "CC BY-NC-SA 4.0 (non-commercial use only)",
    ),
    "vgg19": CheckpointSource(
        "perceptual",
        "pytorch/vision (VGG19, ImageNet-1k)",
        "vgg19-dcbb9e9d.pth",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "BSD-3-Clause (torchvision); trained on ImageNet-1k, whose terms of access apply",
    ),
    "vgg16": CheckpointSource(
        "dissimilarity",
        "pytorch/vision (VGG16, ImageNet-1k)",
        "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "BSD-3-Clause (torchvision); trained on ImageNet-1k, whose terms of access apply",
    ),
    "dissimilarity": CheckpointSource(
        "dissimilarity",
        "giandbt/SynBoost (DissimNetPrior, the paper's released model)",
        f"models.tar (member {SYNBOOST_DISSIMILARITY_MEMBER})",
        "http://robotics.ethz.ch/~asl-datasets/Dissimilarity/models.tar",
        "MIT (the repository's license)",
    ),
}


def import_light_weights(
    out: str | os.PathLike,
    files: Mapping[str, str | os.PathLike],
    dissimilarity_member: str | None = None,
    seed: int = 0,
    config: PipelineConfig | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write a ``light`` weights folder from the checkpoints in ``files`` (keys of
    ``LIGHT_SOURCES``); return the manifest path and the import record of its provenance.

    ``config`` (default: the light preset) may change widths and sizes, not the layouts.
    """
    config = config or get_preset(PRESET)
    _check_light_layouts(config)
    unknown = sorted(set(files) - set(LIGHT_SOURCES))
    if unknown:
        raise ValueError(f"unknown checkpoints {unknown}; known: {sorted(LIGHT_SOURCES)}")
    if "vgg16" in files and "dissimilarity" in files:
        raise ValueError(
            "--vgg16 and --dissimilarity both give the dissimilarity net's VGG16 encoder "
            "(SynBoost's file holds its trained copy): give one of them"
        )
    model = random_model(config, seed)
    sources = {}
    for name, path in files.items():
        path = Path(path)
        member = None
        if name == "dissimilarity" and path.suffix.lower() == ".tar":
            member = dissimilarity_member or SYNBOOST_DISSIMILARITY_MEMBER
        checkpoint = read_checkpoint(path, member)
        _IMPORTERS[name](model, checkpoint, str(path))
        sources[name] = _source_record(name, path, checkpoint)
    record = _import_record(sources, seed)
    manifest = save_weights(model.eval(), out, {IMPORT_KEY: record})
    return manifest, record


def _check_light_layouts(config: PipelineConfig) -> None:
    """Refuse a configuration whose layouts are not the light preset's."""
    preset = get_preset(PRESET)
    layouts = {
        "preset": (config.preset, preset.preset),
        "icnet.layout": (config.icnet.layout, preset.icnet.layout),
        "spade.label_input": (config.spade.label_input, preset.spade.label_input),
        "spade.param_free_norm": (config.spade.param_free_norm, preset.spade.param_free_norm),
        "dissimilarity.correlation": (
            config.dissimilarity.correlation,
            preset.dissimilarity.correlation,
        ),
        "segmentation_normalization": (
            config.segmentation_normalization,
            preset.segmentation_normalization,
        ),
    }
    wrong = [
        f"{name} {got!r} (needs {want!r})" for name, (got, want) in layouts.items() if got != want
    ]
    if wrong:
        raise ValueError("the checkpoints import into the light layouts only: " + "; ".join(wrong))


def _import_icnet(model: SynBoostModel, checkpoint: Checkpoint, source: str) -> None:
    network = model.segmentation
    plan = fast_seg_icnet_plan(network)
    load_converted(network, convert(plan, checkpoint.state, source, "the light ICNet"))


def _import_spade(model: SynBoostModel, checkpoint: Checkpoint, source: str) -> None:
    network = model.synthesis
    spectral = any(key.endswith(".weight_orig") for key in checkpoint.state)
    plan = nvlabs_spade_generator_plan(network, spectral_norm=spectral)
    load_converted(network, convert(plan, checkpoint.state, source, "the light SPADE generator"))


def _import_vgg19(model: SynBoostModel, checkpoint: Checkpoint, source: str) -> None:
    try:
        load_torchvision_vgg(model.perceptual.vgg, checkpoint.state)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def _import_vgg16(model: SynBoostModel, checkpoint: Checkpoint, source: str) -> None:
    try:
        load_torchvision_vgg(model.dissimilarity.vgg, checkpoint.state)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def _import_dissimilarity(model: SynBoostModel, checkpoint: Checkpoint, source: str) -> None:
    if checkpoint.member is not None:
        source = f"{source}:{checkpoint.member}"
    check_synboost_dissimilarity_kind(checkpoint.state, source)
    network = model.dissimilarity
    plan = synboost_dissimilarity_plan(network)
    converted = convert(plan, checkpoint.state, source, "the light dissimilarity net")
    load_converted(network, converted)


_IMPORTERS = {
    "icnet": _import_icnet,
    "spade": _import_spade,
    "vgg19": _import_vgg19,
    "vgg16": _import_vgg16,
    "dissimilarity": _import_dissimilarity,
}


def _source_record(name: str, path: Path, checkpoint: Checkpoint) -> dict[str, Any]:
    record = {
        **asdict(LIGHT_SOURCES[name]),
        "path": str(path.resolve()),
        "sha256": file_sha256(path),
        "bytes": path.stat().st_size,
    }
    if checkpoint.member is not None:
        record["member"] = checkpoint.member
        record["member_sha256"] = checkpoint.member_sha256
    return record


def _import_record(sources: dict[str, dict[str, Any]], seed: int) -> dict[str, Any]:
    parts = {
        "segmentation": _part_state(sources, ("icnet",), ()),
        "synthesis": _part_state(sources, ("spade",), ()),
        "perceptual": _part_state(sources, ("vgg19",), ()),
        "dissimilarity": _part_state(sources, ("dissimilarity",), ("vgg16",)),
    }
    record: dict[str, Any] = {
        "command": shlex.join(sys.argv),
        "preset": PRESET,
        "random_seed": seed,
        "sources": sources,
        "parts": parts,
        "untrained_parts": [part for part, state in parts.items() if not state["trained"]],
    }
    if "spade" in sources:
        record["license_note"] = NON_COMMERCIAL_NOTE
    return record


def _part_state(
    sources: Mapping[str, Any], complete: tuple[str, ...], partial: tuple[str, ...]
) -> dict[str, Any]:
    """Whether a part holds trained weights, and from which of ``sources``."""
    given = [name for name in (*complete, *partial) if name in sources]
    if any(name in sources for name in complete):
        return {"trained": True, "from": given}
    if given:
        return {
            "trained": False,
            "from": given,
            "untrained": "all but the ImageNet VGG16 image encoder: random (train it with "
            "synboost train dissim --init-weights <this folder>)",
        }
    return {"trained": False, "from": [], "untrained": "random weights"}
