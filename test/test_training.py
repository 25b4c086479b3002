"""Training runs on a tiny procedural world: resume, CLI chain, ensemble search, checkpoints."""

from __future__ import annotations

import csv
import itertools
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from training_helpers import TINY_CONFIG, single_torch_thread, write_tiny_weights, write_world

from synboost_ros.cli.main import main
from synboost_ros.data.anomaly_sets import AnomalyDataset
from synboost_ros.data.cityscapes import CityscapesDataset
from synboost_ros.metrics.anomaly import AnomalyMetrics
from synboost_ros.training import dissimilarity_data, segmentation
from synboost_ros.training.checkpoint import load_checkpoint, save_checkpoint
from synboost_ros.training.ensemble_search import (
    CandidateResult,
    candidate_weights,
    search_weights,
    selection_key,
)
from synboost_ros.training.model_io import load_dissimilarity_net
from synboost_ros.training.options import TrainOptions
from synboost_ros.training.sampling import EpochSampler
from synboost_ros.training.segmentation import poly_lr_scheduler, train_segmentation
from synboost_ros.training.synthesis import spade_lr_scheduler
from synboost_ros.weights import ModelLoadError, load_model, read_manifest

COMMON = ["--workers", "0", "--device", "cpu", "--log-every", "1"]
SEGMENTATION_LOSS = segmentation.cascade_label_guidance_loss

single_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return write_world(tmp_path_factory.mktemp("world"), 4)


@pytest.fixture(scope="module")
def anomaly_world(tmp_path_factory) -> Path:
    return write_world(tmp_path_factory.mktemp("anomalies"), 3, anomalies=True, seed=7)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return write_tiny_weights(tmp_path_factory.mktemp("tiny"))


def test_epoch_sampler_shards_cover_the_data_and_resume_mid_epoch() -> None:
    shards = [EpochSampler(10, 2, seed=3, rank=r, world_size=3) for r in range(3)]
    for sampler in shards:
        sampler.set_epoch(1)
    keys = [list(sampler) for sampler in shards]
    assert all(len(k) == 4 for k in keys)  # ceil(10 / 3), padded
    assert {index for k in keys for index, _ in k} == set(range(10))
    assert all(epoch == 1 for k in keys for _, epoch in k)
    shards[0].set_epoch(1, skip_batches=1)
    assert list(shards[0]) == keys[0][2:]
    shards[0].set_epoch(2)
    assert list(shards[0]) != keys[0]  # a new order each epoch


def test_checkpoint_loads_weights_only_and_restores_rng(tmp_path) -> None:
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=10, factor=0.5)
    net(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    scheduler.step(1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = save_checkpoint(
        tmp_path / "c.pt", 7, {"net": net}, {"opt": optimizer}, {"s": scheduler}, scaler, {"x": 1.5}
    )
    assert torch.load(path, weights_only=True)["step"] == 7
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.1)
    fresh_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(fresh_opt)
    step, extra = load_checkpoint(
        path, {"net": fresh}, {"opt": fresh_opt}, {"s": fresh_sched}, scaler
    )
    assert (step, extra) == (7, {"x": 1.5})
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert torch.equal(fresh.weight, net.weight)
    assert fresh_sched.patience == 10
    assert fresh_opt.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]


def _poly_factor(step: int, total: int) -> float:
    """The poly factor as schedules.py computed it before torch's schedulers took over."""
    return max(0.0, 1.0 - step / total) ** 0.9


def _spade_factor(step: int, total: int, decay_start: int) -> float:
    """SPADE's factor as schedules.py computed it: 1, then linear to 0 at ``total``."""
    if step < decay_start:
        return 1.0
    return max(0.0, 1.0 - (step - decay_start) / (total - decay_start))


def _scheduled_lrs(optimizer, scheduler, steps: int) -> list[float]:
    """The learning rate each of ``steps`` training steps runs with."""
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def _sgd(lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


@pytest.mark.parametrize("total", [1, 2, 7, 40])
def test_poly_schedule_gives_the_poly_factor_at_every_step(total) -> None:
    optimizer = _sgd(0.01)
    lrs = _scheduled_lrs(optimizer, poly_lr_scheduler(optimizer, total), total + 3)

    expected = [0.01 * _poly_factor(step, total) for step in range(total + 3)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert lrs[total:] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("total", "decay_start"), [(1, 0), (2, 1), (10, 5), (9, 4), (7, 0)])
def test_spade_schedule_is_constant_then_linear_to_zero(total, decay_start) -> None:
    optimizer = _sgd(4e-4)
    scheduler = spade_lr_scheduler(optimizer, total, decay_start)
    lrs = _scheduled_lrs(optimizer, scheduler, total + 3)

    expected = [4e-4 * _spade_factor(step, total, decay_start) for step in range(total + 3)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert lrs[:decay_start] == [4e-4] * decay_start
    assert lrs[total:] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="decay_start < total_steps"):
        spade_lr_scheduler(_sgd(1.0), total, total)


@pytest.mark.parametrize(
    "make", [lambda opt: poly_lr_scheduler(opt, 9), lambda opt: spade_lr_scheduler(opt, 9, 4)]
)
@pytest.mark.parametrize("stop", [2, 4, 5, 8])
def test_schedules_resume_from_a_checkpoint_exactly(tmp_path, make, stop) -> None:
    optimizer = _sgd(0.01)
    straight = _scheduled_lrs(optimizer, make(optimizer), 11)
    first = _sgd(0.01)
    scheduler = make(first)
    before = _scheduled_lrs(first, scheduler, stop)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = save_checkpoint(tmp_path / "c.pt", stop, {}, {"o": first}, {"s": scheduler}, scaler, {})
    resumed = _sgd(0.01)
    resumed_scheduler = make(resumed)
    load_checkpoint(path, {}, {"o": resumed}, {"s": resumed_scheduler}, scaler)

    after = _scheduled_lrs(resumed, resumed_scheduler, 11 - stop)
    assert before + after == straight


class LossRecorder:
    """Wraps the segmentation loss: records values, optionally crashes at a given call."""

    def __init__(self, crash_at_call: int | None = None) -> None:
        self.values: list[float] = []
        self.crash_at_call = crash_at_call

    def __call__(self, output, labels, class_weights=None):
        if self.crash_at_call is not None and len(self.values) + 1 == self.crash_at_call:
            raise KeyboardInterrupt("simulated crash")
        loss = SEGMENTATION_LOSS(output, labels, class_weights)
        self.values.append(loss.item())
        return loss


def test_resume_continues_exactly_like_an_uninterrupted_run(
    tmp_path, monkeypatch, world, tiny_weights
) -> None:
    def run(out: Path, recorder: LossRecorder, resume: bool = False) -> None:
        monkeypatch.setattr(segmentation, "cascade_label_guidance_loss", recorder)
        options = TrainOptions(
            data=world,
            out=out,
            init_weights=tiny_weights,
            steps=5,
            batch_size=2,
            workers=0,
            device="cpu",
            resume=resume,
            checkpoint_every=3,  # mid-epoch: 2 batches per epoch
            seed=11,
        )
        train_segmentation(options, segmentation.SegmentationOptions(optimizer="adam"))

    straight = LossRecorder()
    run(tmp_path / "straight", straight)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crashed", LossRecorder(crash_at_call=4))
    resumed = LossRecorder()
    run(tmp_path / "crashed", resumed, resume=True)
    assert len(straight.values) == 5 and len(resumed.values) == 2
    assert resumed.values == pytest.approx(straight.values[3:], rel=1e-6, abs=1e-7)
    a = load_file(tmp_path / "straight" / "segmentation.safetensors")
    b = load_file(tmp_path / "crashed" / "segmentation.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="--resume"):
        run(tmp_path / "straight", LossRecorder())  # never overwrites a run silently


def test_train_seg_cli_writes_a_loadable_weights_folder(
    tmp_path, monkeypatch, world, anomaly_world
) -> None:
    used_weights = []

    def recording_loss(output, labels, class_weights=None):
        used_weights.append(class_weights)
        return SEGMENTATION_LOSS(output, labels, class_weights)

    monkeypatch.setattr(segmentation, "cascade_label_guidance_loss", recording_loss)
    out = tmp_path / "seg"
    code = main(
        [
            "train", "seg", "--data", str(world), "--out", str(out), "--preset", "edge",
            "--segmentation-size", "192x384", "--synthesis-size", "64x128", "--steps", "2",
            "--batch-size", "2", "--val-data", str(anomaly_world / "cityscapes"),
            "--anomaly-val-data", str(anomaly_world), "--class-weights", "enet", *COMMON,
        ]
    )  # fmt: skip
    assert code == 0
    expected = segmentation.segmentation_class_weights(CityscapesDataset(world, "train"), "enet")
    assert len(used_weights) == 2
    for weights in used_weights:
        torch.testing.assert_close(weights, expected)
    model, manifest = load_model(out)
    assert model.config.segmentation_size == (192, 384)
    entry = manifest.provenance["training"][-1]
    assert (entry["stage"], entry["steps"], entry["seed"]) == ("segmentation", 2, 0)
    assert 0.0 <= entry["metrics"]["miou"] <= 1.0
    stage = segmentation.SegmentationStage(model)
    anomaly_set = AnomalyDataset(anomaly_world, "fishyscapes")
    expected_entropy = segmentation.validate_entropy_anomaly(
        stage, model.config, anomaly_set, torch.device("cpu")
    )
    assert expected_entropy is not None and 0.0 < expected_entropy["entropy_ap"] < 1.0
    for name, value in expected_entropy.items():
        assert entry["metrics"][name] == pytest.approx(value, rel=1e-5)
    assert entry["data"] == str(world) and entry["wall_time_s"] > 0
    assert entry["hardware"]["device"] == "cpu"
    assert entry["settings"]["class_weighting"] == "enet"
    assert entry["settings"]["class_weights"] == pytest.approx(expected.tolist())
    with open(out / "train_state" / "metrics.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["name"] for row in rows} >= {
        "train/loss", "train/lr", "val/miou", "val/entropy_ap", "val/entropy_fpr95"
    }  # fmt: skip


def test_entropy_anomaly_validation_needs_anomaly_pixels(tmp_path, tiny_weights) -> None:
    for folder in ("images", "labels"):
        (tmp_path / folder).mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.full((64, 128, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), np.zeros((64, 128), np.uint8))
    model, _ = load_model(tiny_weights)
    stage = segmentation.SegmentationStage(model)
    no_anomaly = AnomalyDataset(tmp_path, "fishyscapes")
    assert (
        segmentation.validate_entropy_anomaly(stage, model.config, no_anomaly, torch.device("cpu"))
        is None
    )


def test_entropy_anomaly_validation_scores_entropy_against_the_labels(tmp_path) -> None:
    for folder in ("images", "labels"):
        (tmp_path / folder).mkdir()
    label = np.zeros((192, 192), np.uint8)  # the tiny config's segmentation size: no resizing
    label[40:90, 100:150] = 1
    label[:8] = 255
    image = np.repeat((label == 1)[..., None] * 255, 3, axis=2).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "images" / "a.png"), image)
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), label)
    samples = AnomalyDataset(tmp_path, "fishyscapes")

    def entropy_is_brightness(image: torch.Tensor):
        return None, image.mean(dim=1, keepdim=True), None

    perfect = segmentation.validate_entropy_anomaly(
        entropy_is_brightness, TINY_CONFIG, samples, torch.device("cpu")
    )
    assert perfect == {"entropy_ap": pytest.approx(1.0), "entropy_fpr95": 0.0}

    def entropy_is_darkness(image: torch.Tensor):
        return None, 1.0 - image.mean(dim=1, keepdim=True), None

    inverted = segmentation.validate_entropy_anomaly(
        entropy_is_darkness, TINY_CONFIG, samples, torch.device("cpu")
    )
    assert inverted["entropy_fpr95"] == 1.0 and inverted["entropy_ap"] < 0.1


def test_train_seg_checks_the_anomaly_set_before_training(tmp_path, world, capsys) -> None:
    code = main(
        [
            "train", "seg", "--data", str(world), "--out", str(tmp_path / "seg"),
            "--steps", "2", "--anomaly-val-data", str(tmp_path / "missing"), *COMMON,
        ]
    )  # fmt: skip
    assert code != 0
    assert f"anomaly set folder not found: {tmp_path / 'missing'}" in capsys.readouterr().err
    assert not (tmp_path / "seg").exists()


def test_synth_dissim_ensemble_chain_and_ablation(
    tmp_path, monkeypatch, capsys, world, anomaly_world, tiny_weights
) -> None:
    monkeypatch.setenv("SYNBOOST_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    generate = dissimilarity_data.generate_examples

    def counting_generate(sample, *args):
        calls.append(sample.stem)
        return generate(sample, *args)

    monkeypatch.setattr(dissimilarity_data, "generate_examples", counting_generate)
    synth, dissim, ablation, ensemble = (tmp_path / n for n in ("syn", "dis", "abl", "ens"))
    assert main(["train", "synth", "--data", str(world), "--out", str(synth),
                 "--init-weights", str(tiny_weights), "--steps", "2", "--batch-size", "2",
                 *COMMON]) == 0  # fmt: skip
    synth_manifest = read_manifest(synth)
    tiny_synthesis = load_file(tiny_weights / "synthesis.safetensors")
    trained_synthesis = load_file(synth / "synthesis.safetensors")
    assert set(trained_synthesis) == set(tiny_synthesis)  # spectral norm baked away
    assert any(not torch.equal(trained_synthesis[k], tiny_synthesis[k]) for k in tiny_synthesis)

    assert main(["train", "dissim", "--data", str(world), "--out", str(dissim),
                 "--init-weights", str(synth), "--epochs", "2", "--batch-size", "4",
                 "--val-data", str(anomaly_world), *COMMON]) == 0  # fmt: skip
    assert len(calls) == 4  # one generation per frame for two epochs
    entry = read_manifest(dissim).provenance["training"][-1]
    assert entry["stage"] == "dissimilarity" and entry["settings"]["examples"] >= 4
    assert 0 <= entry["metrics"]["best_val_ap"] <= 1 and entry["metrics"]["best_epoch"] in (0, 1)
    stages = [e["stage"] for e in read_manifest(dissim).provenance["training"]]
    assert stages == [*[e["stage"] for e in synth_manifest.provenance["training"]], "dissimilarity"]

    assert main(["train", "dissim", "--data", str(world), "--out", str(ablation),
                 "--init-weights", str(synth), "--steps", "1", "--batch-size", "4",
                 "--no-uncertainty", *COMMON]) == 0  # fmt: skip
    assert len(calls) == 4  # cache hit: same segmentation / synthesis weights and data
    net, _ = load_dissimilarity_net(ablation)
    assert not net.use_uncertainty
    with pytest.raises(ModelLoadError):
        load_model(ablation)

    assert main(["train", "ensemble", "--data", str(anomaly_world), "--out", str(ensemble),
                 "--init-weights", str(dissim), "--device", "cpu"]) == 0  # fmt: skip
    manifest = read_manifest(ensemble)
    with open(ensemble / "train_state" / "ensemble_search.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 225
    best = min(rows, key=lambda r: (float(r["fpr95"]), -float(r["ap"])))
    chosen = [float(best[f"w_{n}"]) for n in ("dissimilarity", "entropy", "perceptual", "distance")]
    assert manifest.config.ensemble_weights == pytest.approx(chosen, abs=1e-6)
    written = json.loads((ensemble / "manifest.json").read_text())
    assert written["config"]["ensemble_weights"] == list(manifest.config.ensemble_weights)
    assert manifest.provenance["training"][-1]["stage"] == "ensemble"

    capsys.readouterr()
    assert main(["ablation", "--data", str(anomaly_world), "--format", "fishyscapes",
                 "--weights", str(ensemble), "--no-uncertainty-weights", str(ablation),
                 "--device", "cpu", "--json"]) == 0  # fmt: skip
    report = {row["key"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert all(row["status"] == "ok" for row in report.values())
    assert main(["eval", "--data", str(anomaly_world), "--format", "fishyscapes",
                 "--weights", str(ensemble), "--backend", "torch", "--device", "cpu",
                 "--json"]) == 0  # fmt: skip
    evaluated = json.loads(capsys.readouterr().out)
    assert report["ensemble"]["ap"] == pytest.approx(evaluated["ap"], rel=1e-5)
    assert report["ensemble"]["fpr95"] == pytest.approx(evaluated["fpr95"], rel=1e-5)
    # The component metrics of both commands: the same maps, binarised at the same grid point.
    components = evaluated["components"]
    for key, name in (("siou", "siou"), ("ppv", "ppv"), ("mean_f1", "mean_f1")):
        if components[name] is None:
            assert report["ensemble"][key] is None
        else:
            assert report["ensemble"][key] == pytest.approx(components[name], abs=0.01)


def test_candidate_weights_are_normalised_and_not_proportional() -> None:
    candidates = candidate_weights()
    assert len(candidates) == 4**4 - 1 - 2 * 15  # {0,2}- and {0,3}-only vectors are duplicates
    assert all(sum(c) == pytest.approx(1.0) for c in candidates)
    for a, b in itertools.combinations(candidates, 2):
        assert not np.allclose(a, b)
    assert any(np.allclose(c, (0.75, 0.25, 0, 0)) for c in candidates)


def test_ensemble_search_picks_the_perfectly_separating_map() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(5000) < 0.1).astype(np.uint8)
    entropy = np.where(labels == 1, 0.51, 0.49) + rng.uniform(-0.005, 0.005, labels.size)
    maps = {
        "dissimilarity": rng.random(labels.size),  # noise wider than entropy's margin
        "entropy": entropy,
        "perceptual": rng.random(labels.size),
        "distance": 0.5 * rng.random(labels.size) + 0.3 * labels,  # informative, overlapping
    }
    best, results = search_weights(maps, labels)
    assert best.weights == (0.0, 1.0, 0.0, 0.0)
    assert best.metrics.fpr95 == 0.0 and best.metrics.ap == pytest.approx(1.0)
    assert [r.weights for r in results if r.metrics.fpr95 == 0.0] == [best.weights]
    assert results[0].weights != best.weights  # not simply the first candidate


def test_selection_prefers_low_fpr95_then_high_ap() -> None:
    def result(weights, ap: float, fpr95: float) -> CandidateResult:
        return CandidateResult(weights, AnomalyMetrics(ap, fpr95, 0.5, 10, 1, True))

    results = [
        result((1.0, 0, 0, 0), ap=0.9, fpr95=0.3),
        result((0, 1.0, 0, 0), ap=0.4, fpr95=0.2),
        result((0, 0, 1.0, 0), ap=0.5, fpr95=0.2),
    ]
    assert min(results, key=selection_key).weights == (0, 0, 1.0, 0)


def train_dissim_weights(
    out: Path, world: Path, start: Path, steps: int, *extra: str
) -> dict[str, torch.Tensor]:
    """``train dissim`` for a few steps (4 frames: 2 batches per epoch); its saved weights."""
    assert main(["train", "dissim", "--data", str(world), "--out", str(out),
                 "--init-weights", str(start), "--steps", str(steps), "--batch-size", "2",
                 "--seed", "3", *extra, *COMMON]) == 0  # fmt: skip
    return load_file(out / "dissimilarity.safetensors")


def test_dissim_ema_follows_the_weights_of_every_step(
    tmp_path, monkeypatch, world, anomaly_world, tiny_weights
) -> None:
    monkeypatch.setenv("SYNBOOST_CACHE_DIR", str(tmp_path / "cache"))
    plain = [train_dissim_weights(tmp_path / f"p{n}", world, tiny_weights, n) for n in (1, 2, 3)]
    assert any(not torch.equal(plain[0][k], plain[2][k]) for k in plain[0])
    no_memory = train_dissim_weights(tmp_path / "d0", world, tiny_weights, 3, "--ema-decay", "0")
    for name, value in plain[2].items():
        assert torch.equal(no_memory[name], value), name
    decay = 0.5
    averaged = train_dissim_weights(
        tmp_path / "d5", world, tiny_weights, 3, "--ema-decay", str(decay)
    )
    for name in plain[0]:
        expected = plain[0][name]  # the first update copies the weights
        for later in plain[1:]:
            expected = decay * expected + (1 - decay) * later[name]
        torch.testing.assert_close(averaged[name], expected, rtol=1e-5, atol=1e-6)
    entry = read_manifest(tmp_path / "d5").provenance["training"][-1]
    assert entry["settings"]["ema_decay"] == decay
    validated = train_dissim_weights(
        tmp_path / "v5", world, tiny_weights, 2, "--ema-decay", str(decay),
        "--val-data", str(anomaly_world),
    )  # fmt: skip
    assert read_manifest(tmp_path / "v5").provenance["training"][-1]["metrics"]["best_epoch"] == 0
    for name in plain[0]:
        expected = decay * plain[0][name] + (1 - decay) * plain[1][name]
        torch.testing.assert_close(validated[name], expected, rtol=1e-5, atol=1e-6)


def test_dissim_ema_resumes_exactly_and_rejects_a_bad_decay(
    tmp_path, monkeypatch, capsys, world, tiny_weights
) -> None:
    from synboost_ros.training import dissimilarity

    monkeypatch.setenv("SYNBOOST_CACHE_DIR", str(tmp_path / "cache"))
    ema = ("--ema-decay", "0.7", "--checkpoint-every", "2")
    straight = train_dissim_weights(tmp_path / "straight", world, tiny_weights, 4, *ema)
    loss, calls = dissimilarity.safe_cross_entropy, []

    def crash_at_third_call(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")
        return loss(*args)

    monkeypatch.setattr(dissimilarity, "safe_cross_entropy", crash_at_third_call)
    with pytest.raises(KeyboardInterrupt):
        train_dissim_weights(tmp_path / "crashed", world, tiny_weights, 4, *ema)
    monkeypatch.setattr(dissimilarity, "safe_cross_entropy", loss)
    resumed = train_dissim_weights(tmp_path / "crashed", world, tiny_weights, 4, *ema, "--resume")
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-5, atol=1e-6)

    capsys.readouterr()
    out = tmp_path / "bad"
    code = main(["train", "dissim", "--data", str(world), "--out", str(out),
                 "--init-weights", str(tiny_weights), "--steps", "1",
                 "--ema-decay", "1.5", *COMMON])  # fmt: skip
    assert code == 2
    assert "EMA decay must be in [0, 1), got 1.5" in capsys.readouterr().err
    assert not out.exists()
