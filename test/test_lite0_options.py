"""The EfficientNet-Lite0 options: dissimilarity image encoder and ICNet deep branch.

Shapes, ONNX export (TensorRT checks, onnxruntime parity), FLOPs, pretrained loading, trunk
learning rate, frozen batch-norm statistics, and tiny ``synboost train`` runs that resume.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from training_helpers import TINY_CONFIG, single_torch_thread, write_tiny_weights, write_world

from synboost_ros.cli.main import main
from synboost_ros.config import (
    IMAGENET_NORMALIZATION,
    LITE0_NORMALIZATION,
    DissimilarityConfig,
    PipelineConfig,
    get_preset,
)
from synboost_ros.flops import count_flops, stage_flops
from synboost_ros.model import SynBoostModel
from synboost_ros.model_loading import random_model
from synboost_ros.nn.dissimilarity import DissimilarityNet
from synboost_ros.nn.icnet import ICNetTrainingOutput
from synboost_ros.nn.icnet_lite0 import ICNetLite0
from synboost_ros.nn.lite0_pyramid import Lite0Pyramid
from synboost_ros.nn.pretrained import (
    EFFICIENTNET_LITE0_IMAGENET,
    find_pretrained_file,
    load_state_dict_file,
)
from synboost_ros.nn.vgg import VGGFeatures
from synboost_ros.training import segmentation
from synboost_ros.training.dissimilarity import DissimilarityOptions
from synboost_ros.training.fine_tuning import (
    freeze_batch_norm_statistics,
    pretrained_lite0_dissimilarity,
    pretrained_lite0_segmentation,
    trunk_parameter_groups,
)
from synboost_ros.weights import load_model, read_manifest

NUM_CLASSES = 19
COMMON = ["--workers", "0", "--device", "cpu", "--log-every", "1"]
LITE0_FILE = find_pretrained_file(EFFICIENTNET_LITE0_IMAGENET)
needs_lite0_file = pytest.mark.skipif(
    LITE0_FILE is None,
    reason=f"{EFFICIENTNET_LITE0_IMAGENET.package} is not installed (pip install '.[pretrained]')",
)

single_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)


def with_lite0(config: PipelineConfig, seg: bool = True, dissim: bool = True) -> PipelineConfig:
    """``config`` with the Lite0 ICNet and / or dissimilarity encoder, normalisations to match."""
    changes: dict = {}
    if seg:
        changes["icnet"] = dataclasses.replace(config.icnet, layout="lite0")
        changes["segmentation_normalization"] = LITE0_NORMALIZATION
    if dissim:
        changes["dissimilarity"] = dataclasses.replace(
            config.dissimilarity, encoder="efficientnet_lite0"
        )
        changes["dissimilarity_image_normalization"] = LITE0_NORMALIZATION
    return config.replace(**changes)


def dissim_inputs(batch: int, height: int, width: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    semantic = torch.randint(0, NUM_CLASSES, (batch, height, width), generator=generator)
    onehot = torch.nn.functional.one_hot(semantic, NUM_CLASSES).permute(0, 3, 1, 2).float()
    return (
        torch.randn(batch, 3, height, width, generator=generator),
        torch.randn(batch, 3, height, width, generator=generator),
        onehot,
        torch.rand(batch, 3, height, width, generator=generator),
    )


def test_defaults_and_old_manifests_keep_the_vgg16_encoder() -> None:
    assert DissimilarityConfig().encoder == "vgg16"
    edge = get_preset("edge")
    old = edge.to_dict()
    del old["dissimilarity"]["encoder"]  # a manifest written before the option
    assert PipelineConfig.from_dict(old) == edge
    net = DissimilarityNet(NUM_CLASSES, edge.dissimilarity)
    assert net.lite0 is None and net.trunk is net.vgg
    assert all(key.startswith("vgg.") for key in net.state_dict() if "vgg" in key)
    assert LITE0_NORMALIZATION.mean == EFFICIENTNET_LITE0_IMAGENET.input_mean
    assert LITE0_NORMALIZATION.std == EFFICIENTNET_LITE0_IMAGENET.input_std
    with pytest.raises(ValueError, match="encoder must be one of"):
        DissimilarityNet(NUM_CLASSES, dataclasses.replace(edge.dissimilarity, encoder="vgg19"))


def test_edge_sizes_give_the_shapes_of_today() -> None:
    edge = get_preset("edge")
    lite0 = with_lite0(edge)
    net = DissimilarityNet(NUM_CLASSES, lite0.dissimilarity).eval()
    vgg = DissimilarityNet(NUM_CLASSES, edge.dissimilarity)
    # same fusion inputs: the projections give the VGG16 tap widths
    assert net.lite0.tap_channels == vgg.vgg.tap_channels == (8, 16, 32, 64)
    features = net.lite0(torch.zeros(2, 3, *edge.synthesis_size))
    assert [tuple(f.shape) for f in features] == [
        (2, width, 128 // 2**level, 256 // 2**level) for level, width in enumerate((8, 16, 32, 64))
    ]
    with torch.no_grad():
        logits = net(*dissim_inputs(1, *edge.synthesis_size))
    assert logits.shape == (1, 2, *edge.synthesis_size)
    icnet = ICNetLite0(NUM_CLASSES, edge.segmentation_size, lite0.icnet)
    image = torch.randn(2, 3, *edge.segmentation_size)
    training = icnet.train()(image)
    assert isinstance(training, ICNetTrainingOutput)
    assert training.logits_quarter.shape == (2, NUM_CLASSES, 64, 128)
    assert [a.shape[-2:] for a in training.aux_logits] == [(32, 64), (16, 32)]
    with torch.no_grad():
        assert icnet.eval()(image).shape == (2, NUM_CLASSES, 256, 512)
    model = SynBoostModel(lite0)
    assert isinstance(model.segmentation, ICNetLite0) and model.dissimilarity.lite0 is not None


def test_flops_count_the_lite0_parts_in_place_of_vgg_and_resnet() -> None:
    edge = get_preset("edge")
    today, lite0 = stage_flops(edge), stage_flops(with_lite0(edge))
    assert today["synthesis"] == lite0["synthesis"]
    assert lite0["total"] == sum(lite0[s] for s in ("segmentation", "synthesis", "dissimilarity"))
    pair = [torch.zeros(2, 3, *edge.synthesis_size)]
    encoder_change = count_flops(Lite0Pyramid((8, 16, 32, 64)), pair) - count_flops(
        VGGFeatures(16, ("relu1_2", "relu2_2", "relu3_3", "relu4_3"), 0.125), pair
    )
    assert lite0["dissimilarity"] - today["dissimilarity"] == encoder_change
    assert lite0["segmentation"] != today["segmentation"] and lite0["segmentation"] > 0


@pytest.mark.filterwarnings(
    "ignore::torch.jit.TracerWarning", "ignore::UserWarning", "ignore::DeprecationWarning"
)
def test_onnx_graphs_pass_the_tensorrt_checks_and_match_torch(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from synboost_ros.backends.onnx_checks import check_graph_for_tensorrt
    from synboost_ros.export import export_onnx

    config = with_lite0(TINY_CONFIG)
    model = random_model(config)
    for stage, path in export_onnx(model, tmp_path / "stages").items():
        assert check_graph_for_tensorrt(path) == [], stage
    networks = {
        "icnet": (model.segmentation, (torch.randn(1, 3, *config.segmentation_size),)),
        "dissimilarity": (model.dissimilarity, dissim_inputs(1, *config.synthesis_size)),
    }
    for name, (network, inputs) in networks.items():
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(network.eval(), inputs, str(path), dynamo=False, opset_version=17)
        assert check_graph_for_tensorrt(path) == [], name
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {a.name: t.numpy() for a, t in zip(session.get_inputs(), inputs, strict=True)}
        (onnx_out,) = session.run(None, feeds)
        with torch.no_grad():
            torch_out = network(*inputs).numpy()
        scale = max(1.0, float(np.abs(torch_out).max()))
        np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4 * scale, rtol=0, err_msg=name)


@needs_lite0_file
def test_pretrained_trunks_hold_the_package_tensors() -> None:
    state = load_state_dict_file(LITE0_FILE)
    model = random_model(TINY_CONFIG)
    provenance = pretrained_lite0_segmentation(model, seed=0)
    pretrained_lite0_dissimilarity(model, use_uncertainty=True, seed=0)
    assert provenance["sha256"] == EFFICIENTNET_LITE0_IMAGENET.sha256
    assert model.config == with_lite0(TINY_CONFIG)
    for trunk in (model.segmentation.trunk, model.dissimilarity.trunk):
        assert torch.equal(trunk.stem.conv.weight, state["_conv_stem.weight"])
        assert torch.equal(
            trunk.blocks[3].depthwise.conv.weight, state["_blocks.3._depthwise_conv.weight"]
        )
        assert torch.equal(
            trunk.blocks[3].project.bn.running_var, state["_blocks.3._bn2.running_var"]
        )
    assert len(model.segmentation.trunk.blocks) == 11  # to stride 16
    assert len(model.dissimilarity.trunk.blocks) == 5  # to stride 8
    assert model.config.dissimilarity_image_normalization == LITE0_NORMALIZATION
    assert TINY_CONFIG.dissimilarity_image_normalization == IMAGENET_NORMALIZATION


@needs_lite0_file
def test_reusing_the_init_net_keeps_all_but_the_image_encoder() -> None:
    model = random_model(TINY_CONFIG)
    before = {k: v.clone() for k, v in model.dissimilarity.state_dict().items()}
    provenance = pretrained_lite0_dissimilarity(model, True, seed=0, reuse_rest=True)
    after = model.dissimilarity.state_dict()
    kept = [k for k in after if k in before and after[k].shape == before[k].shape]
    assert provenance["reused_from_init"] == len(kept) > 0
    assert not any(k.startswith("vgg.") for k in after)  # the encoder is the new trunk
    for name in kept:
        assert torch.equal(after[name], before[name]), name
    fresh = random_model(TINY_CONFIG)
    pretrained_lite0_dissimilarity(fresh, True, seed=0)
    differs = [k for k in kept if not torch.equal(fresh.dissimilarity.state_dict()[k], after[k])]
    assert differs  # without the option those tensors start fresh
    with pytest.raises(ValueError, match="option of the pretrained Lite0 encoder"):
        DissimilarityOptions(reuse_init_net=True)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_trunk_lr_scale_reaches_the_optimizer_groups(optimizer: str) -> None:
    network = ICNetLite0(NUM_CLASSES, (192, 192), with_lite0(TINY_CONFIG).icnet)
    options = segmentation.SegmentationOptions(optimizer=optimizer, trunk_lr_scale=0.1)
    built = segmentation.build_optimizer(network, options, lr=0.01)
    rest, trunk = built.param_groups
    assert (rest["lr"], trunk["lr"]) == pytest.approx((0.01, 0.001))
    assert {id(p) for p in trunk["params"]} == {id(p) for p in network.backbone.parameters()}
    assert len(rest["params"]) + len(trunk["params"]) == len(list(network.parameters()))
    single = segmentation.build_optimizer(network, segmentation.SegmentationOptions(), lr=0.01)
    assert len(single.param_groups) == 1  # checkpoints of scale-1 runs keep their layout
    net = DissimilarityNet(NUM_CLASSES, with_lite0(TINY_CONFIG).dissimilarity)
    groups = trunk_parameter_groups(net, 1e-4, 0.0)
    assert groups[1]["lr"] == 0.0
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in net.lite0.trunk.parameters()}
    with pytest.raises(ValueError, match=">= 0"):
        trunk_parameter_groups(net, 1e-4, -1.0)


def _bn_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_trunk_bn_keeps_its_statistics_through_a_step(freeze: bool) -> None:
    torch.manual_seed(0)
    network = ICNetLite0(NUM_CLASSES, (192, 192), with_lite0(TINY_CONFIG).icnet)
    if freeze:
        assert freeze_batch_norm_statistics(network.trunk) == 1 + 3 * 11 - 1  # no expand in 0
    network.train()
    trunk_before, branch_before = _bn_state(network.trunk), _bn_state(network.full_res_branch)
    trunk_weight = network.trunk.stem.bn.weight.clone()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    output = network(torch.randn(2, 3, 192, 192))
    loss = output.logits_quarter.square().mean() + sum(a.square().mean() for a in output.aux_logits)
    loss.backward()
    optimizer.step()
    trunk_after, branch_after = _bn_state(network.trunk), _bn_state(network.full_res_branch)
    unchanged = [torch.equal(trunk_before[k], trunk_after[k]) for k in trunk_before]
    assert all(unchanged) if freeze else not any(unchanged)
    assert not any(torch.equal(branch_before[k], branch_after[k]) for k in branch_before)
    assert not torch.equal(trunk_weight, network.trunk.stem.bn.weight)  # affine still trains
    assert network.trunk.stem.bn.training is not freeze


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return write_world(tmp_path_factory.mktemp("world"), 4)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return write_tiny_weights(tmp_path_factory.mktemp("tiny"))


def _train(stage: str, out: Path, world: Path, start: Path, *extra: str) -> None:
    assert main(["train", stage, "--data", str(world), "--out", str(out),
                 "--init-weights", str(start), "--steps", "3", "--batch-size", "2",
                 "--checkpoint-every", "2", "--seed", "3", *extra, *COMMON]) == 0  # fmt: skip


def _crash_at_third_call(monkeypatch, module, name: str) -> None:
    original, calls = getattr(module, name), []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, crashing)


@needs_lite0_file
@pytest.mark.parametrize(
    ("stage", "option", "part", "loss_module", "loss_name"),
    [
        ("seg", "--pretrained-trunk", "segmentation", "segmentation",
         "cascade_label_guidance_loss"),
        ("dissim", "--pretrained-encoder", "dissimilarity", "dissimilarity", "safe_cross_entropy"),
    ],
)  # fmt: skip
def test_train_from_the_pretrained_trunk_runs_and_resumes(
    tmp_path, monkeypatch, world, tiny_weights, stage, option, part, loss_module, loss_name
) -> None:
    import importlib

    module = importlib.import_module(f"synboost_ros.training.{loss_module}")
    monkeypatch.setenv("SYNBOOST_CACHE_DIR", str(tmp_path / "cache"))
    extra = (option, "--trunk-lr-scale", "0.1", "--freeze-trunk-bn")
    _train(stage, tmp_path / "straight", world, tiny_weights, *extra)
    with monkeypatch.context() as patch:
        _crash_at_third_call(patch, module, loss_name)
        with pytest.raises(KeyboardInterrupt):
            _train(stage, tmp_path / "crashed", world, tiny_weights, *extra)
    _train(stage, tmp_path / "crashed", world, tiny_weights, *extra, "--resume")
    straight = load_file(tmp_path / "straight" / f"{part}.safetensors")
    resumed = load_file(tmp_path / "crashed" / f"{part}.safetensors")
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-5, atol=1e-6)
    model, manifest = load_model(tmp_path / "straight")
    assert model.config == with_lite0(TINY_CONFIG, seg=stage == "seg", dissim=stage == "dissim")
    trunk = model.part(part).trunk
    state = load_state_dict_file(LITE0_FILE)
    # frozen statistics: the trunk's running means are still ImageNet's after training
    assert torch.equal(trunk.stem.bn.running_mean, state["_bn0.running_mean"])
    assert not torch.equal(trunk.stem.conv.weight, state["_conv_stem.weight"])  # it trained
    entry = manifest.provenance["training"][-1]
    settings = entry["settings"]
    assert settings["trunk_lr_scale"] == 0.1 and settings["freeze_trunk_bn"] is True
    recorded = settings["pretrained_trunk" if stage == "seg" else "pretrained_encoder"]
    assert recorded["sha256"] == EFFICIENTNET_LITE0_IMAGENET.sha256
    checkpoint = torch.load(
        tmp_path / "straight" / "train_state" / "checkpoint.pt", weights_only=True
    )
    groups = checkpoint["optimizers"]["optimizer"]["param_groups"]
    assert len(groups) == 2 and groups[1]["initial_lr" if stage == "seg" else "lr"] == (
        pytest.approx(0.1 * groups[0]["initial_lr" if stage == "seg" else "lr"])
    )
    assert read_manifest(tmp_path / "crashed").config == model.config


def test_cli_refuses_a_negative_trunk_lr_scale_and_two_initialisations(
    tmp_path, capsys, world, tiny_weights
) -> None:
    out = tmp_path / "bad"
    for stage in ("seg", "dissim"):
        code = main(["train", stage, "--data", str(world), "--out", str(out),
                     "--init-weights", str(tiny_weights), "--steps", "1",
                     "--trunk-lr-scale", "-0.5", *COMMON])  # fmt: skip
        assert code == 2
        assert "trunk learning-rate scale must be >= 0, got -0.5" in capsys.readouterr().err
        assert not out.exists()
    for stage, both in (
        ("seg", ["--pretrained-trunk", "--resnet50-weights", "r.pth"]),
        ("dissim", ["--pretrained-encoder", "--vgg16-weights", "v.pth"]),
    ):
        with pytest.raises(SystemExit):
            main(["train", stage, "--data", str(world), "--out", str(out), *both])
        assert "not allowed with argument" in capsys.readouterr().err


def test_resnet50_weights_refuse_the_lite0_trunk() -> None:
    from synboost_ros.nn.pretrained import load_resnet50_backbone

    network = ICNetLite0(NUM_CLASSES, (192, 192), with_lite0(TINY_CONFIG).icnet)
    with pytest.raises(ValueError, match="need a ResNet, not a EfficientNetLite0"):
        load_resnet50_backbone(network.backbone, {})
