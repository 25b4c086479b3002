"""Weights I/O: one safetensors file per model part plus a JSON manifest.

A manifest (``manifest.json``) holds ``format`` (the version), ``classes`` (names and
colours), ``config`` (the full ``PipelineConfig``: preset, stage sizes, widths, each network's
input normalisation, perceptual scale and ensemble weights), ``files`` (each part file's name,
size and sha256) and ``provenance`` (how the weights were made). Loading verifies every hash
before any tensor is read. Older manifests also carry top-level copies of ``preset``,
``sizes`` and ``ensemble_weights``, which are ignored (``config`` is what counts); those
without the normalisation fields read them as ImageNet RGB, the only normalisation then.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from synboost_ros.config import PipelineConfig
from synboost_ros.files import atomic_write, atomic_write_text, file_sha256
from synboost_ros.manifest import (
    MANIFEST_NAME,
    WEIGHTS_REMEDY,
    Manifest,
    ModelLoadError,
    read_manifest,
    resolve_manifest_path,
)
from synboost_ros.model import MODEL_PARTS, SynBoostModel


def save_weights(
    model: SynBoostModel, folder: str | os.PathLike, provenance: dict | None = None
) -> Path:
    """Write each part as safetensors and the manifest, atomically per file; return the manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    for part in MODEL_PARTS:
        state = {k: v.detach().contiguous().cpu() for k, v in model.part(part).state_dict().items()}
        target = folder / f"{part}.safetensors"
        atomic_write(target, lambda tmp, state=state: save_file(state, str(tmp)))
        files[part] = {
            "path": target.name,
            "sha256": file_sha256(target),
            "bytes": target.stat().st_size,
        }
    manifest = Manifest(config=model.config, files=files, provenance=provenance or {})
    text = json.dumps(manifest.to_json(), indent=2) + "\n"
    manifest_path = folder / MANIFEST_NAME
    atomic_write_text(manifest_path, text)
    return manifest_path


def load_weights(
    path: str | os.PathLike,
    expected_preset: str | None = None,
    parts: tuple[str, ...] = MODEL_PARTS,
) -> tuple[Manifest, dict[str, dict[str, torch.Tensor]]]:
    """Verify hashes and read the state dict of each part; refuse another preset's weights."""
    manifest = read_manifest(path, expected_preset)
    manifest_path = resolve_manifest_path(path)
    states: dict[str, dict[str, torch.Tensor]] = {}
    for part in parts:
        entry = manifest.files[part]
        file_path = manifest_path.parent / entry["path"]
        if not file_path.is_file():
            raise ModelLoadError(
                f"weights file {file_path} (part {part!r}) is missing; {WEIGHTS_REMEDY}"
            )
        actual = file_sha256(file_path)
        if actual != entry["sha256"]:
            raise ModelLoadError(
                f"weights file {file_path} is corrupt or was modified: sha256 {actual} does not "
                f"match the manifest's {entry['sha256']}; {WEIGHTS_REMEDY}"
            )
        try:
            states[part] = load_file(str(file_path))
        except (SafetensorError, OSError) as error:
            raise ModelLoadError(f"weights file {file_path} cannot be read: {error}") from None
    return manifest, states


def load_model(
    path: str | os.PathLike,
    expected_preset: str | None = None,
    config: PipelineConfig | None = None,
) -> tuple[SynBoostModel, Manifest]:
    """Build the model described by a manifest (or ``config``) and load its weights strictly;
    the model remembers the verified sha256 of each part file (``weights_identity``)."""
    manifest, states = load_weights(path, expected_preset)
    model = SynBoostModel(config or manifest.config)
    for part, state in states.items():
        try:
            model.part(part).load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ModelLoadError(
                f"weights {resolve_manifest_path(path)} part {part!r} do not fit preset "
                f"{model.config.preset!r}: {str(error).splitlines()[0]}"
            ) from None
    model.remember_weights(manifest.weights_identity())
    return model.eval(), manifest


def combine_weights(
    sources: dict[str, str | os.PathLike], base: str | os.PathLike, out: str | os.PathLike
) -> Path:
    """Write a weights folder taking each part in ``sources`` from its folder, the rest from
    ``base``; parts trained separately (e.g. segmentation and synthesis in parallel) meet here.
    Each part brings its own configuration (``PART_CONFIG_FIELDS``: e.g. the ICNet layout and
    input normalisation with the segmentation, the backbone and scale with the perceptual
    difference); the ensemble weights are the base's.
    """
    unknown = set(sources) - set(MODEL_PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; parts are {MODEL_PARTS}")
    base_manifest, states = load_weights(base)
    config = base_manifest.config
    provenance = {"base": {"path": str(base), **base_manifest.provenance}}
    for part, folder in sources.items():
        manifest, part_states = load_weights(folder, expected_preset=config.preset, parts=(part,))
        try:
            config = config.with_part_of(part, manifest.config)
        except ValueError as error:
            raise ModelLoadError(
                f"weights {folder} cannot be combined with {base}: {error}"
            ) from None
        states[part] = part_states[part]
        provenance[part] = {"path": str(folder), **manifest.provenance}
    model = SynBoostModel(config)
    for part, state in states.items():
        model.part(part).load_state_dict(state, strict=True)
    return save_weights(model, out, provenance={"combined": provenance})
