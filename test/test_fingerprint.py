"""The ONNX fingerprint comes from what a model remembers of its weights, not from its tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synboost_ros import export
from synboost_ros.config import get_preset
from synboost_ros.export import model_fingerprint
from synboost_ros.model import SynBoostModel, state_dict_sha256
from synboost_ros.model_loading import load_or_random_model, random_model, rebuilt_model
from synboost_ros.weights import load_model, save_weights

TINY = get_preset("edge").replace(segmentation_size=(192, 256), synthesis_size=(64, 128))


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    save_weights(random_model(TINY, seed=5), tmp_path / "weights")
    return tmp_path / "weights"


@pytest.fixture()
def tensors_unread(monkeypatch):
    """Fail if any fingerprint falls back to hashing the tensors."""

    def refuse(model):
        raise AssertionError("the fingerprint hashed the tensors")

    monkeypatch.setattr(export, "state_dict_sha256", refuse)


def test_a_loaded_folder_is_fingerprinted_from_its_manifest(folder, tmp_path, tensors_unread):
    first, manifest = load_model(folder)
    second, _ = load_model(folder)
    assert first.weights_identity == {
        "sha256": {part: entry["sha256"] for part, entry in manifest.files.items()}
    }
    assert model_fingerprint(first) == model_fingerprint(second)
    other = tmp_path / "other"
    retrained, _ = load_model(folder)
    retrained.synthesis.load_state_dict(random_model(TINY, seed=6).synthesis.state_dict())
    save_weights(retrained, other)  # rewrites every part file; only synthesis.safetensors differs
    changed, changed_manifest = load_model(other)
    assert changed_manifest.files["segmentation"] == manifest.files["segmentation"]
    assert changed_manifest.files["synthesis"] != manifest.files["synthesis"]
    assert model_fingerprint(changed) != model_fingerprint(first)


def test_other_sizes_keep_the_identity_and_change_the_fingerprint(folder, tensors_unread):
    loaded, _ = load_model(folder)
    resized = load_or_random_model("edge", weights=folder, synthesis_size=(32, 64))
    assert resized.weights_identity == loaded.weights_identity is not None
    assert model_fingerprint(resized) != model_fingerprint(loaded)
    recalibrated = rebuilt_model(loaded, loaded.config.replace(perceptual_scale=0.5))
    assert recalibrated.weights_identity == loaded.weights_identity
    assert model_fingerprint(recalibrated) not in {
        model_fingerprint(loaded),
        model_fingerprint(resized),
    }


def test_random_weights_are_identified_by_their_seed(tensors_unread):
    one, again, two = random_model(TINY, seed=1), random_model(TINY, seed=1), random_model(TINY, 2)
    assert model_fingerprint(one) == model_fingerprint(again) != model_fingerprint(two)
    resized = rebuilt_model(one, TINY.replace(synthesis_size=(32, 64)))
    assert resized.weights_identity == {"random_seed": 1, "drawn_for": TINY.to_dict()}
    assert model_fingerprint(resized) != model_fingerprint(one)


def _step(model: SynBoostModel) -> None:
    parameters = list(model.dissimilarity.parameters())
    optimizer = torch.optim.SGD(parameters, lr=0.1)
    (sum(p.sum() for p in parameters)).backward()
    optimizer.step()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_step, id="optimizer-step"),
        pytest.param(
            lambda m: m.load_state_dict(random_model(TINY, seed=9).state_dict()), id="load"
        ),
        pytest.param(
            lambda m: m.part("segmentation").load_state_dict(
                random_model(TINY, seed=9).segmentation.state_dict()
            ),
            id="part-load",
        ),
        pytest.param(lambda m: m.perceptual.half(), id="cast"),
    ],
)
def test_changed_weights_lose_their_identity(folder, change):
    model, _ = load_model(folder)
    before = model_fingerprint(model)
    change(model)
    assert model.weights_identity is None
    assert model_fingerprint(model) != before  # from the tensors now


def test_models_built_in_memory_are_fingerprinted_by_their_tensors():
    first = SynBoostModel(TINY)
    same = SynBoostModel(TINY)
    same.load_state_dict(first.state_dict())
    assert first.weights_identity is None and same.weights_identity is None
    assert model_fingerprint(first) == model_fingerprint(same)
    with torch.no_grad():
        next(same.dissimilarity.parameters()).add_(1.0)
    assert model_fingerprint(first) != model_fingerprint(same)


def _holding(name: str, tensor: torch.Tensor) -> torch.nn.Module:
    module = torch.nn.Module()
    module.register_buffer(name, tensor)
    return module


def test_state_dict_digest_is_equal_for_equal_state_dicts_and_differs_otherwise():
    values = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    digest = state_dict_sha256(_holding("w", values))
    assert state_dict_sha256(_holding("w", values.clone())) == digest
    assert state_dict_sha256(_holding("w", values.t().contiguous().t())) == digest  # layout
    different = {
        "value": _holding("w", values + 1),
        "name": _holding("v", values),
        "shape": _holding("w", values.reshape(3, 2)),
        "dtype": _holding("w", values.view(torch.int32)),  # the same bytes
    }
    for what, module in different.items():
        assert state_dict_sha256(module) != digest, what
    halves = _holding("w", values.bfloat16())
    assert state_dict_sha256(halves) == state_dict_sha256(_holding("w", values.bfloat16()))
