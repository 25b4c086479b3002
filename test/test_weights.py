"""Weights I/O: round trip, manifest content, tamper and mismatch detection."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from synboost_ros.classes import CLASS_NAMES
from synboost_ros.config import (
    IMAGENET_NORMALIZATION,
    LITE0_NORMALIZATION,
    InputNormalization,
    get_preset,
)
from synboost_ros.manifest import MANIFEST_NAME, ModelLoadError, WeightsNotFoundError
from synboost_ros.model_loading import load_or_random_model, random_model
from synboost_ros.weights import combine_weights, load_model, save_weights

TINY = get_preset("edge").replace(segmentation_size=(192, 256), synthesis_size=(64, 128))
NORMALIZATION_FIELDS = (
    "segmentation_normalization",
    "dissimilarity_image_normalization",
    "perceptual_normalization",
)


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


def test_manifest_records_preset_classes_sizes_normalisation_and_hashes(saved) -> None:
    folder, _ = saved
    data = json.loads((folder / MANIFEST_NAME).read_text())
    assert set(data) == {"format", "classes", "config", "files", "provenance"}
    config = data["config"]
    assert config["preset"] == "edge"
    assert [c["name"] for c in data["classes"]] == list(CLASS_NAMES)
    assert (config["segmentation_size"], config["synthesis_size"]) == ([192, 256], [64, 128])
    assert config["ensemble_weights"] == [0.75, 0.25, 0.0, 0.0]
    imagenet = {
        "channel_order": "rgb",
        "scale": 1.0,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    for key in NORMALIZATION_FIELDS:
        assert config[key] == imagenet, key
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
    with pytest.raises(
        ModelLoadError, match=r"synthesis\.safetensors is corrupt or was modified"
    ) as e:
        load_model(folder)
    # what to do in this project; there is nothing to download (was: "restore or re-download")
    assert "git checkout models/" in str(e.value) and "synboost train" in str(e.value)
    assert "download" not in str(e.value)


def test_truncated_file_is_detected(saved) -> None:
    folder, _ = saved
    target = folder / "dissimilarity.safetensors"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=r"dissimilarity\.safetensors"):
        load_model(folder)


def test_missing_part_file_and_missing_manifest_are_named(saved, tmp_path: Path) -> None:
    folder, _ = saved
    (folder / "perceptual.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"perceptual\.safetensors.*missing.*git checkout"):
        load_model(folder)
    with pytest.raises(WeightsNotFoundError, match="not found") as caught:
        load_model(tmp_path / "nowhere")
    assert "--" not in str(caught.value)  # callers add their own flags or parameters


def test_the_cli_hint_is_added_by_the_cli_only(tmp_path: Path, capsys) -> None:
    from synboost_ros.cli.main import main

    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    out = ["--out", str(tmp_path / "out")]
    assert main(["infer", str(image), *out, "--weights", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert "not found" in error and error.rstrip().endswith("(--weights PATH or --random-weights)")
    assert "-p " not in error


def test_invalid_manifest_is_refused(saved) -> None:
    folder, _ = saved
    (folder / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelLoadError, match="invalid"):
        load_model(folder)


def test_input_normalisations_round_trip_through_a_weights_folder(tmp_path: Path) -> None:
    bgr = InputNormalization("bgr", 255.0, (104.0, 116.7, 122.7), (1.0, 1.0, 1.0))
    lite = InputNormalization("rgb", 1.0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    config = TINY.replace(segmentation_normalization=bgr, dissimilarity_image_normalization=lite)
    save_weights(random_model(config, seed=1), tmp_path)
    written = json.loads((tmp_path / MANIFEST_NAME).read_text())["config"]
    assert written["segmentation_normalization"] == {
        "channel_order": "bgr",
        "scale": 255.0,
        "mean": [104.0, 116.7, 122.7],
        "std": [1.0, 1.0, 1.0],
    }
    model, manifest = load_model(tmp_path)
    assert manifest.config == model.config == config
    assert model.perceptual.normalization == IMAGENET_NORMALIZATION


def test_a_manifest_from_before_the_normalisation_fields_loads_as_imagenet(saved) -> None:
    folder, model = saved
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    config = data["config"]
    for key in NORMALIZATION_FIELDS:
        del config[key]
    # the older layout's top-level copies, which the reader ignores
    data["preset"] = config["preset"]
    data["sizes"] = {
        "segmentation": config["segmentation_size"],
        "synthesis": config["synthesis_size"],
    }
    data["ensemble_weights"] = config["ensemble_weights"]
    path.write_text(json.dumps(data))
    loaded, manifest = load_model(folder, expected_preset="edge")
    assert manifest.config == TINY
    for key in NORMALIZATION_FIELDS:
        assert getattr(loaded.config, key) == IMAGENET_NORMALIZATION, key
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_a_bad_normalisation_in_a_manifest_is_named(saved) -> None:
    folder, _ = saved
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["config"]["segmentation_normalization"]["channel_order"] = "rgba"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="invalid: channel order"):
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


def test_combine_brings_each_part_with_its_own_configuration(tmp_path: Path) -> None:
    other_config = TINY.replace(
        icnet=dataclasses.replace(TINY.icnet, layout="lite0"),
        segmentation_normalization=LITE0_NORMALIZATION,
        perceptual_backbone="efficientnet_lite0",
        perceptual_normalization=LITE0_NORMALIZATION,
        perceptual_scale=17.5,
        ensemble_weights=(1.0, 0.0, 0.0, 0.0),
    )
    save_weights(random_model(TINY, seed=1), tmp_path / "base")
    other = random_model(other_config, seed=2)
    save_weights(other, tmp_path / "other")
    combine_weights({"segmentation": tmp_path / "other"}, tmp_path / "base", tmp_path / "seg")
    combined, _ = load_model(tmp_path / "seg")
    assert combined.config.icnet.layout == "lite0"
    assert combined.config.segmentation_normalization == LITE0_NORMALIZATION
    assert combined.config.perceptual_backbone == "vgg19"
    assert combined.config.ensemble_weights == TINY.ensemble_weights
    for name, tensor in other.part("segmentation").state_dict().items():
        assert torch.equal(tensor, combined.part("segmentation").state_dict()[name]), name
    combine_weights({"perceptual": tmp_path / "other"}, tmp_path / "base", tmp_path / "per")
    combined, _ = load_model(tmp_path / "per")
    assert combined.config.icnet.layout == TINY.icnet.layout
    assert combined.config.perceptual_backbone == "efficientnet_lite0"
    assert combined.config.perceptual_scale == 17.5


def test_combine_refuses_other_configurations(tmp_path: Path) -> None:
    save_weights(random_model(TINY), tmp_path / "base")
    save_weights(random_model(TINY.replace(synthesis_size=(32, 64))), tmp_path / "other")
    with pytest.raises(ModelLoadError, match=r"cannot be combined.*differ in synthesis_size"):
        combine_weights({"synthesis": tmp_path / "other"}, tmp_path / "base", tmp_path / "out")
    assert not (tmp_path / "out").exists()
