"""Weights I/O: round trip, manifest content, tamper and mismatch detection."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from synboost_ros.classes import CLASS_NAMES
from synboost_ros.config import get_preset
from synboost_ros.model_loading import load_or_random_model, random_model
from synboost_ros.weights import (
    MANIFEST_NAME,
    ModelLoadError,
    combine_weights,
    load_model,
    save_weights,
)

TINY = get_preset("edge").replace(segmentation_size=(192, 256), synthesis_size=(64, 128))


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    model = random_model(TINY, seed=5)
    save_weights(model, tmp_path, provenance={"command": "test", "steps": 0})
    return tmp_path, model


def test_round_trip_restores_every_tensor(saved) -> None:
    folder, model = saved
    loaded, manifest = load_model(folder, expected_preset="edge")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert manifest.config == TINY
    assert manifest.provenance == {"command": "test", "steps": 0}


def test_manifest_records_preset_classes_sizes_and_hashes(saved) -> None:
    folder, _ = saved
    data = json.loads((folder / MANIFEST_NAME).read_text())
    assert data["preset"] == "edge"
    assert [c["name"] for c in data["classes"]] == list(CLASS_NAMES)
    assert data["sizes"] == {"segmentation": [192, 256], "synthesis": [64, 128]}
    assert data["ensemble_weights"] == [0.75, 0.25, 0.0, 0.0]
    for part in ("segmentation", "synthesis", "perceptual", "dissimilarity"):
        entry = data["files"][part]
        assert (
            len(entry["sha256"]) == 64 and (folder / entry["path"]).stat().st_size == entry["bytes"]
        )


def test_tampered_file_is_detected_and_named(saved) -> None:
    folder, _ = saved
    target = folder / "synthesis.safetensors"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"synthesis\.safetensors is corrupt or was modified"):
        load_model(folder)


def test_truncated_file_is_detected(saved) -> None:
    folder, _ = saved
    target = folder / "dissimilarity.safetensors"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=r"dissimilarity\.safetensors"):
        load_model(folder)


def test_missing_part_file_and_missing_manifest_are_named(saved, tmp_path: Path) -> None:
    folder, _ = saved
    (folder / "perceptual.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"perceptual\.safetensors.*missing"):
        load_model(folder)
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_invalid_manifest_is_refused(saved) -> None:
    folder, _ = saved
    (folder / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelLoadError, match="invalid"):
        load_model(folder)


def test_other_presets_weights_are_refused(saved) -> None:
    folder, _ = saved
    with pytest.raises(ModelLoadError, match="for preset 'edge', not 'light'"):
        load_model(folder, expected_preset="light")


def test_weights_whose_shapes_do_not_fit_are_refused(saved) -> None:
    folder, _ = saved
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["config"]["spade"]["ngf"] = 16  # claims a wider generator than the file holds
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_model(folder)


def test_random_weights_need_asking_and_warn(saved) -> None:
    folder, _ = saved
    with pytest.warns(UserWarning, match="meaningless"):
        model = load_or_random_model("edge", random_weights=True)
    assert model.config.preset == "edge"
    with pytest.raises(ValueError, match="either weights or random"):
        load_or_random_model("edge", weights=folder, random_weights=True)


def test_named_weights_load_with_overridden_sizes(saved) -> None:
    folder, model = saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resized = load_or_random_model("edge", weights=folder, synthesis_size=(32, 64))
    assert resized.config.synthesis_size == (32, 64)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, resized.state_dict()[name]), name


def test_combine_takes_named_parts_from_their_folders(tmp_path: Path) -> None:
    base, other = random_model(TINY, seed=1), random_model(TINY, seed=2)
    save_weights(base, tmp_path / "base")
    save_weights(other, tmp_path / "other")
    combine_weights({"synthesis": tmp_path / "other"}, tmp_path / "base", tmp_path / "out")
    combined, manifest = load_model(tmp_path / "out")
    for part, source in (("synthesis", other), ("segmentation", base), ("dissimilarity", base)):
        for name, tensor in source.part(part).state_dict().items():
            assert torch.equal(tensor, combined.part(part).state_dict()[name]), (part, name)
    assert manifest.provenance["combined"]["synthesis"]["path"] == str(tmp_path / "other")
    assert combined.config == base.config
    with pytest.raises(ValueError, match="unknown parts"):
        combine_weights({"wheels": tmp_path / "other"}, tmp_path / "base", tmp_path / "x")


def test_combine_keeps_the_base_calibration_over_a_calibrated_part(tmp_path: Path) -> None:
    calibrated = TINY.replace(perceptual_scale=0.02, ensemble_weights=(1.0, 0.0, 0.0, 0.0))
    save_weights(random_model(TINY, seed=1), tmp_path / "base")
    save_weights(random_model(calibrated, seed=2), tmp_path / "other")
    combine_weights({"dissimilarity": tmp_path / "other"}, tmp_path / "base", tmp_path / "out")
    combined, _ = load_model(tmp_path / "out")
    assert combined.config == TINY
    assert calibrated.without_calibration() == TINY.without_calibration() != calibrated


def test_combine_refuses_other_configurations(tmp_path: Path) -> None:
    save_weights(random_model(TINY), tmp_path / "base")
    save_weights(random_model(TINY.replace(synthesis_size=(32, 64))), tmp_path / "other")
    with pytest.raises(ModelLoadError, match="cannot be combined"):
        combine_weights({"synthesis": tmp_path / "other"}, tmp_path / "base", tmp_path / "out")
