"""``synboost eval --scores`` on a tiny folder-format data set, checked against scikit-learn."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from synboost_ros.classes import CLASS_NAMES, TRAIN_ID_TO_LABEL_ID
from synboost_ros.cli.main import main
from synboost_ros.data.anomaly_sets import AnomalyDataset
from synboost_ros.evaluation import evaluate_anomaly_set, evaluate_segmentation, score_file_reader

STEMS = ("frame_a", "frame_b", "frame_c")
SHAPE = (12, 20)


@pytest.fixture
def anomaly_set(tmp_path: Path) -> tuple[Path, Path]:
    """DIR/images/<stem>.png, DIR/labels/<stem>.png and SCORES/<stem>.npy with tied scores."""
    rng = np.random.default_rng(0)
    data, scores_dir = tmp_path / "set", tmp_path / "scores"
    for folder in (data / "images", data / "labels", scores_dir):
        folder.mkdir(parents=True)
    for stem in STEMS:
        scores = (rng.integers(0, 10, SHAPE) / 10).astype(np.float32)
        labels = (rng.random(SHAPE) < 0.1 + 0.7 * scores).astype(np.uint8)
        labels[rng.random(SHAPE) < 0.15] = 255
        cv2.imwrite(str(data / "images" / f"{stem}.png"), rng.integers(0, 256, (*SHAPE, 3)))
        cv2.imwrite(str(data / "labels" / f"{stem}.png"), labels)
        np.save(scores_dir / f"{stem}.npy", scores)
    return data, scores_dir


def expected_metrics(data: Path, scores_dir: Path, stems: tuple[str, ...]) -> dict[str, float]:
    """sklearn on all non-ignored pixels of the given images."""
    labels = [cv2.imread(str(data / "labels" / f"{s}.png"), cv2.IMREAD_UNCHANGED) for s in stems]
    scores = [np.load(scores_dir / f"{s}.npy") for s in stems]
    y_true = np.concatenate([label[label != 255] for label in labels])
    pairs = zip(scores, labels, strict=True)
    y_score = np.concatenate([score[label != 255] for score, label in pairs])
    fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=False)
    return {
        "ap": average_precision_score(y_true, y_score),
        "auroc": roc_auc_score(y_true, y_score),
        "fpr95": float(fpr[np.argmax(tpr >= 0.95)]),
        "num_pixels": y_true.size,
        "num_anomaly_pixels": int(y_true.sum()),
    }


def run_eval(capsys: pytest.CaptureFixture, *args: str | Path) -> tuple[int, str, str]:
    code = main(["eval", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_report_equals_sklearn(anomaly_set, capsys) -> None:
    data, scores_dir = anomaly_set
    code, out, _ = run_eval(
        capsys, "--data", data, "--format", "folder", "--scores", scores_dir, "--json"
    )
    assert code == 0
    report = json.loads(out)
    expected = expected_metrics(data, scores_dir, STEMS)
    assert report["format"] == "folder"
    assert report["num_images"] == len(STEMS)
    assert report["exact"] is True
    for key in ("num_pixels", "num_anomaly_pixels"):
        assert report[key] == expected[key]
    for key in ("ap", "auroc", "fpr95"):
        assert report[key] == pytest.approx(expected[key], abs=1e-6)


def test_limit_evaluates_the_first_images(anomaly_set, capsys) -> None:
    data, scores_dir = anomaly_set
    args = ("--data", data, "--format", "folder", "--scores", scores_dir, "--json")
    code, out, _ = run_eval(capsys, *args, "--limit", "2")
    assert code == 0
    report = json.loads(out)
    assert report["num_images"] == 2
    assert report["num_pixels"] == expected_metrics(data, scores_dir, STEMS[:2])["num_pixels"]


def test_plot_and_readable_table(anomaly_set, capsys, tmp_path) -> None:
    data, scores_dir = anomaly_set
    plot = tmp_path / "curves.png"
    code, out, _ = run_eval(
        capsys, "--data", data, "--format", "folder", "--scores", scores_dir, "--plot", plot
    )
    assert code == 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "FPR95" in out and "AUROC" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_missing_score_file_names_the_file(anomaly_set, capsys) -> None:
    data, scores_dir = anomaly_set
    missing = scores_dir / f"{STEMS[1]}.npy"
    missing.unlink()
    code, out, err = run_eval(
        capsys, "--data", data, "--format", "folder", "--scores", scores_dir, "--json"
    )
    assert code == 2
    assert out == ""
    assert str(missing) in err


def test_misshaped_score_file_is_rejected(anomaly_set, capsys) -> None:
    data, scores_dir = anomaly_set
    np.save(scores_dir / f"{STEMS[0]}.npy", np.zeros((3, 4), np.float32))
    code, _, err = run_eval(capsys, "--data", data, "--format", "folder", "--scores", scores_dir)
    assert code == 2
    assert f"{STEMS[0]}.npy has shape (3, 4)" in err


def test_evaluate_segmentation_pools_images_and_names_bad_ones() -> None:
    target = np.array([[0, 1, 255], [1, 1, 0]], dtype=np.uint8)
    samples = [
        SimpleNamespace(image=None, train_ids=target[r : r + 1], stem=f"s{r}") for r in (0, 1)
    ]
    predictions = {"s0": np.array([[0, 0, 2]]), "s1": np.array([[1, 1, 0]])}
    accumulator = evaluate_segmentation(samples, lambda s: predictions[s.stem], num_classes=3)
    metrics = accumulator.compute()
    assert accumulator.num_images == 2
    assert metrics.per_class_iou == pytest.approx({"0": 2 / 3, "1": 2 / 3, "2": None})
    assert metrics.pixel_accuracy == pytest.approx(4 / 5)
    predictions["s1"] = np.array([[1, 7, 0]])
    with pytest.raises(ValueError, match="image 's1'"):
        evaluate_segmentation(samples, lambda s: predictions[s.stem], num_classes=3)


def write_semantic_ground_truth(root: Path, data: Path, seed: int = 1) -> dict[str, np.ndarray]:
    """Cityscapes-layout labels for the anomaly set's frames; returns the train ids by stem."""
    rng = np.random.default_rng(seed)
    city = "town"
    train_ids = {}
    for stem in STEMS:
        ids = rng.integers(0, len(CLASS_NAMES), SHAPE).astype(np.uint8)
        train_ids[stem] = ids
        for folder in (root / "gtFine" / "val" / city, root / "leftImg8bit" / "val" / city):
            folder.mkdir(parents=True, exist_ok=True)
        labels = root / "gtFine" / "val" / city
        cv2.imwrite(str(labels / f"{stem}_gtFine_labelIds.png"), TRAIN_ID_TO_LABEL_ID[ids])
        cv2.imwrite(str(labels / f"{stem}_gtFine_instanceIds.png"), np.zeros(SHAPE, np.uint8))
        image = cv2.imread(str(data / "images" / f"{stem}.png"))
        cv2.imwrite(str(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png"), image)
    return train_ids


def test_false_alarms_by_class_match_a_direct_count(anomaly_set, capsys, tmp_path) -> None:
    data, scores_dir = anomaly_set
    train_ids = write_semantic_ground_truth(tmp_path / "semantic", data)
    args = ("--data", data, "--format", "folder", "--scores", scores_dir, "--json")
    code, out, _ = run_eval(capsys, *args, "--false-alarms-by-class", tmp_path / "semantic")
    assert code == 0
    report = json.loads(out)
    breakdown = report["false_alarms_by_class"]
    labels = [cv2.imread(str(data / "labels" / f"{s}.png"), cv2.IMREAD_UNCHANGED) for s in STEMS]
    scores = [np.load(scores_dir / f"{s}.npy") for s in STEMS]
    threshold = breakdown["threshold"]
    normal = np.concatenate([label.ravel() == 0 for label in labels])
    flagged = np.concatenate([score.ravel() >= threshold for score in scores]) & normal
    classes = np.concatenate([train_ids[s].ravel() for s in STEMS])
    assert flagged.sum() / normal.sum() == pytest.approx(report["fpr95"])
    assert breakdown["false_alarms"] == int(flagged.sum())
    for train_id, name in enumerate(CLASS_NAMES):
        in_class = normal & (classes == train_id)
        if not in_class.any():
            assert name not in breakdown["groups"]
            continue
        entry = breakdown["groups"][name]
        assert entry["normal_pixels"] == int(in_class.sum())
        assert entry["false_alarms"] == int((flagged & in_class).sum())
        assert entry["rate"] == pytest.approx(entry["false_alarms"] / entry["normal_pixels"])


def test_false_alarms_table_and_missing_ground_truth(anomaly_set, capsys, tmp_path) -> None:
    data, scores_dir = anomaly_set
    root = tmp_path / "semantic"
    write_semantic_ground_truth(root, data)
    args = ("--data", data, "--format", "folder", "--scores", scores_dir)
    code, out, _ = run_eval(capsys, *args, "--false-alarms-by-class", root)
    assert code == 0
    assert "false alarms by class  TPR 0.95, threshold" in out and "  car " in out
    for path in (root / "gtFine" / "val" / "town", root / "leftImg8bit" / "val" / "town"):
        for file in path.glob(f"{STEMS[2]}_*"):
            file.unlink()
    code, out, err = run_eval(capsys, *args, "--false-alarms-by-class", root)
    assert code == 2
    assert out == ""
    assert f"frame {STEMS[2]!r} has no semantic ground truth" in err
    code, _, err = run_eval(
        capsys, "--data", root, "--format", "cityscapes", "--false-alarms-by-class", root
    )
    assert code == 2
    assert "--false-alarms-by-class applies to anomaly formats" in err


def test_false_alarms_by_distance_at_a_chosen_operating_point(anomaly_set, capsys) -> None:
    data, scores_dir = anomaly_set
    args = ("--data", data, "--format", "folder", "--scores", scores_dir, "--json")
    code, out, _ = run_eval(
        capsys, *args, "--false-alarms-by-distance", "--false-alarms-tpr", "0.5"
    )
    assert code == 0
    breakdown = json.loads(out)["false_alarms_by_distance"]
    labels = [cv2.imread(str(data / "labels" / f"{s}.png"), cv2.IMREAD_UNCHANGED) for s in STEMS]
    scores = [np.load(scores_dir / f"{s}.npy") for s in STEMS]
    y_true = np.concatenate([label[label != 255] for label in labels])
    y_score = np.concatenate(
        [score[label != 255] for score, label in zip(scores, labels, strict=True)]
    )
    anomaly_scores = np.sort(y_score[y_true == 1])[::-1]
    expected_threshold = anomaly_scores[int(np.ceil(0.5 * anomaly_scores.size)) - 1]
    assert breakdown["tpr"] == 0.5
    assert breakdown["threshold"] == pytest.approx(expected_threshold)
    flagged = (y_score >= breakdown["threshold"]) & (y_true == 0)
    assert breakdown["false_alarms"] == int(flagged.sum())
    bands = breakdown["groups"]
    assert sum(band["normal_pixels"] for band in bands.values()) == int((y_true == 0).sum())
    assert sum(band["false_alarms"] for band in bands.values()) == int(flagged.sum())
    near = [band for name, band in bands.items() if name.startswith("<=")]
    assert len(near) == 1 and near[0]["normal_pixels"] > 0


def test_false_alarm_options_that_would_be_ignored_are_errors(anomaly_set, capsys) -> None:
    data, scores_dir = anomaly_set
    args = ("--data", data, "--format", "folder", "--scores", scores_dir)
    code, out, err = run_eval(capsys, *args, "--false-alarms-tpr", "0.9")
    assert code == 2 and out == ""
    assert "--false-alarms-tpr sets the operating point" in err
    for bad in ("0", "1.5", "x"):
        with pytest.raises(SystemExit):
            main(["eval", *map(str, args), "--false-alarms-by-distance", "--false-alarms-tpr", bad])
    assert "--false-alarms-tpr" in capsys.readouterr().err
    code, _, err = run_eval(
        capsys, "--data", data, "--format", "cityscapes", "--false-alarms-by-distance"
    )
    assert code == 2
    assert "--false-alarms-by-distance applies to anomaly formats" in err


def test_anomaly_evaluation_without_the_cli(anomaly_set) -> None:
    data, scores_dir = anomaly_set
    samples, scores = AnomalyDataset(data, "folder"), score_file_reader(scores_dir)
    plain = evaluate_anomaly_set(samples, scores)
    assert plain.breakdowns == {}
    report = plain.report("folder")
    assert not any(key.startswith("false_alarms_by") for key in report)
    assert report["num_images"] == len(STEMS)
    assert report["ap"] == pytest.approx(expected_metrics(data, scores_dir, STEMS)["ap"])
    banded = evaluate_anomaly_set(samples, scores, limit=2, by_distance=True, tpr=0.5)
    breakdown = banded.breakdowns["distance"]
    assert breakdown.threshold == banded.accumulator.threshold_at_tpr(0.5)
    assert banded.report("folder")["false_alarms_by_distance"] == {
        "tpr": 0.5,
        **breakdown.to_json(),
    }
    assert banded.accumulator.num_images == 2


def test_component_metrics_of_a_hand_made_set(tmp_path: Path, capsys) -> None:
    data, scores_dir = tmp_path / "objects", tmp_path / "object_scores"
    for folder in (data / "images", data / "labels", scores_dir):
        folder.mkdir(parents=True)
    for index, stem in enumerate(("one", "two")):
        labels = np.zeros((40, 60), np.uint8)
        labels[10:20, 10:20] = 1  # one obstacle of 100 pixels
        scores = np.zeros((40, 60), np.float32)
        scores[10:20, 10:20] = 0.9
        scores[25:33, 40:48] = 0.6  # a 64-pixel false positive below the best-F1 threshold
        if index == 1:
            scores[10:20, 10:15] = 0.0  # half of the obstacle missed: sIoU 0.5
        cv2.imwrite(str(data / "images" / f"{stem}.png"), np.zeros((40, 60, 3), np.uint8))
        cv2.imwrite(str(data / "labels" / f"{stem}.png"), labels)
        np.save(scores_dir / f"{stem}.npy", scores)
    args = ("--data", data, "--format", "folder", "--scores", scores_dir)
    code, out, _ = run_eval(capsys, *args, "--json")
    assert code == 0
    components = json.loads(out)["components"]
    assert components["score_threshold"] == pytest.approx(0.9)
    assert (components["gt_components"], components["predicted_components"]) == (2, 2)
    assert components["siou"] == pytest.approx(0.75) and components["ppv"] == 1.0
    # sIoU 1 and 0.5: both TP up to t = 0.5 (6 thresholds, F1 1), then TP 1 / FN 1 (F1 2/3).
    assert components["mean_f1"] == pytest.approx((6 * 1.0 + 5 * 2 / 3) / 11)
    code, out, _ = run_eval(capsys, *args)
    assert "mean F1" in out and "sIoU" in out and "0.750" in out


def test_a_model_run_records_the_precision_and_layout_that_ran(anomaly_set, capsys) -> None:
    data, _ = anomaly_set
    common = ("--data", data, "--format", "folder", "--random-weights", "--backend", "torch")
    reports = {}
    for precision in ("fp32", "bf16"):
        code, out, _ = run_eval(capsys, *common, "--precision", precision, "--limit", "2", "--json")
        assert code == 0
        reports[precision] = json.loads(out)
    for precision, report in reports.items():
        assert report["ran"] == {
            "backend": "torch",
            "device": "cpu",
            "precision": precision,
            "layout": "channels_last",
        }
        assert report["num_images"] == 2
