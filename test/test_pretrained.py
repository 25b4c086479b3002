"""Loading torchvision-layout VGG and ResNet-50 weights from .safetensors and .pth files."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch

from synboost_ros.nn.pretrained import (
    load_resnet50_backbone,
    load_state_dict_file,
    load_torchvision_vgg,
)
from synboost_ros.nn.resnet import DilatedResNet
from synboost_ros.nn.vgg import VGGFeatures

SHORT_TAPS = ("relu2_2",)  # keeps the models small: four conv layers


class NotATensor:
    """A custom class that weights-only unpickling must refuse."""


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _torchvision_vgg_state(
    depth: int, last_tap: str, width_multiplier: float = 1.0
) -> dict[str, torch.Tensor]:
    """A VGG ``features`` state dict in torchvision's key layout, plus a classifier entry."""
    source = VGGFeatures(depth, (last_tap,), width_multiplier)
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    return {**state, "classifier.0.weight": torch.randn(2, 3)}


def _write(state: dict[str, torch.Tensor], path: Path) -> Path:
    if path.suffix == ".safetensors":
        safetensors.torch.save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".pt"])
def test_vgg16_file_round_trip(tmp_path: Path, suffix: str) -> None:
    state = _torchvision_vgg_state(16, "relu3_1")
    path = _write(state, tmp_path / f"vgg16{suffix}")
    model = VGGFeatures(16, SHORT_TAPS)
    load_torchvision_vgg(model, path)
    loaded = model.features.state_dict()
    assert sorted(loaded) == ["0.bias", "0.weight", "2.bias", "2.weight", "5.bias", "5.weight",
                              "7.bias", "7.weight"]  # fmt: skip
    for key, value in loaded.items():
        assert torch.equal(value, state[f"features.{key}"]), key


def test_vgg16_file_into_vgg19_model_is_refused(tmp_path: Path) -> None:
    path = _write(_torchvision_vgg_state(16, "relu4_1"), tmp_path / "vgg16.safetensors")
    with pytest.raises(ValueError, match=r"vgg16\.safetensors has conv layers at .* VGG19"):
        load_torchvision_vgg(VGGFeatures(19, ("relu4_1",)), path)


def test_full_vgg19_file_into_vgg16_model_is_refused() -> None:
    # The first four convs of VGG16 and VGG19 coincide: the conv count tells the depth.
    state = _torchvision_vgg_state(19, "relu5_4", width_multiplier=1 / 64)
    with pytest.raises(ValueError, match="VGG19 weights but the model is VGG16"):
        load_torchvision_vgg(VGGFeatures(16, SHORT_TAPS), state)


def test_vgg_with_reduced_width_is_refused() -> None:
    state = _torchvision_vgg_state(16, "relu2_2")
    with pytest.raises(ValueError, match=r"width_multiplier 1, model has 0\.5"):
        load_torchvision_vgg(VGGFeatures(16, SHORT_TAPS, 0.5), state)


def test_vgg_misshaped_kernel_is_refused() -> None:
    state = _torchvision_vgg_state(19, "relu2_2")
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    with pytest.raises(ValueError, match=r"shape mismatch.*2\.weight"):
        load_torchvision_vgg(VGGFeatures(19, SHORT_TAPS), state)


def test_non_vgg_state_dict_is_refused() -> None:
    resnet_state = DilatedResNet(4, (1, 1, 1, 1)).state_dict()
    with pytest.raises(ValueError, match="not a torchvision VGG state dict"):
        load_torchvision_vgg(VGGFeatures(16, SHORT_TAPS), resnet_state)


def test_missing_file_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match=r"absent\.safetensors"):
        load_state_dict_file(path)


def test_pickled_object_is_refused_without_running_it(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": NotATensor()}, path)
    with pytest.raises(ValueError, match=r"evil\.pth.*weights-only"):
        load_state_dict_file(path)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("corrupt.pth", b"not a torch file", "corrupt.pth"),
        ("corrupt.safetensors", b"not a safetensors file", "corrupt.safetensors"),
        ("weights.bin", b"", r"unsupported weights file type '\.bin'"),
    ],
)
def test_unreadable_files_are_refused(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_state_dict_file(path)


def test_non_tensor_entries_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pth"
    torch.save({"weight": torch.zeros(1), "epoch": 3}, path)
    with pytest.raises(ValueError, match=r"mixed\.pth.*'epoch' is a int"):
        load_state_dict_file(path)
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match=r"list\.pt holds a list"):
        load_state_dict_file(path)


@pytest.fixture(scope="module")
def resnet50_state() -> dict[str, torch.Tensor]:
    """resnet50 layout built from DilatedResNet itself, randomised, plus an ``fc`` head."""
    state = {
        k: torch.randn_like(v.float()).to(v.dtype) for k, v in DilatedResNet().state_dict().items()
    }
    state["fc.weight"] = torch.randn(1000, 2048)
    state["fc.bias"] = torch.randn(1000)
    return state


def test_resnet50_round_trip(tmp_path: Path, resnet50_state: dict[str, torch.Tensor]) -> None:
    state = resnet50_state
    path = _write(state, tmp_path / "resnet50.safetensors")
    backbone = DilatedResNet()
    load_resnet50_backbone(backbone, path)
    loaded = backbone.state_dict()
    assert not any(key.startswith("fc.") for key in loaded)
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_resnet50_without_batch_counters_loads(resnet50_state: dict[str, torch.Tensor]) -> None:
    state = {k: v for k, v in resnet50_state.items() if "num_batches" not in k}
    backbone = DilatedResNet()
    load_resnet50_backbone(backbone, state)
    torch.testing.assert_close(backbone.layer4[2].conv3.weight, state["layer4.2.conv3.weight"])


def test_resnet50_weights_into_other_shapes_are_refused(
    resnet50_state: dict[str, torch.Tensor],
) -> None:
    with pytest.raises(ValueError, match="base_width 64"):
        load_resnet50_backbone(DilatedResNet(16, (1, 1, 2, 1)), {})
    state = {k: v for k, v in resnet50_state.items() if k != "layer3.5.bn2.weight"}
    with pytest.raises(ValueError, match=r"missing \['layer3\.5\.bn2\.weight'\]"):
        load_resnet50_backbone(DilatedResNet(), state)
