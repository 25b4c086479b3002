"""Plots of the pooled anomaly-detection curves (needs the ``viz`` extra: matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synboost_ros.metrics.anomaly import AnomalyCurves, AnomalyMetrics

# Curves over millions of thresholds are thinned to this many points for drawing.
MAX_PLOTTED_POINTS = 20_000


def plot_curves(
    curves: AnomalyCurves, path: str | Path, metrics: AnomalyMetrics | None = None
) -> Path:
    """Draw the precision-recall and ROC curves side by side into an image file."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install synboost_ros[viz]") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path = Path(path)
    figure, (pr_axes, roc_axes) = plt.subplots(1, 2, figsize=(10, 4.5))
    try:
        pr_label = "PR" if metrics is None else f"AP = {metrics.ap:.4f}"
        roc_label = (
            "ROC"
            if metrics is None
            else (f"AUROC = {metrics.auroc:.4f}, FPR95 = {metrics.fpr95:.4f}")
        )
        recall, precision = _thinned(curves.recall, curves.precision)
        pr_axes.plot(recall, precision, label=pr_label)
        pr_axes.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1))
        fpr, tpr = _thinned(curves.fpr, curves.tpr)
        roc_axes.plot(fpr, tpr, label=roc_label)
        roc_axes.plot([0, 1], [0, 1], linestyle=":", color="gray")
        roc_axes.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
        for axes in (pr_axes, roc_axes):
            axes.set_ylim(0, 1.02)
            axes.grid(alpha=0.3)
            axes.legend(loc="lower right")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path


def _thinned(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_PLOTTED_POINTS evenly spaced points, always keeping both ends."""
    if x.size <= MAX_PLOTTED_POINTS:
        return x, y
    index = np.unique(np.linspace(0, x.size - 1, MAX_PLOTTED_POINTS).round().astype(np.int64))
    return x[index], y[index]
