"""Metric logging to a CSV file and, when TensorBoard is installed, to event files."""

from __future__ import annotations

import csv
import importlib.util
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tqdm import tqdm

CSV_COLUMNS = ("step", "name", "value", "wall_time_s")


class MetricLogger:
    """Appends ``step,name,value,wall_time_s`` rows to ``folder/metrics.csv``.

    Also writes TensorBoard scalars to ``folder/tensorboard`` when ``torch.utils.tensorboard``
    can be imported. A disabled logger (non-zero ranks) does nothing. Appending keeps the
    rows of a resumed run in the same file.
    """

    def __init__(self, folder: str | Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.csv_path = Path(folder) / "metrics.csv"
        self._start = time.perf_counter()
        self._writer = None
        if not enabled:
            return
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.csv_path.exists():
            with open(self.csv_path, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow(CSV_COLUMNS)
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(Path(folder) / "tensorboard"))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record scalar metrics at a training step."""
        if not self.enabled or not metrics:
            return
        elapsed = round(time.perf_counter() - self._start, 3)
        with open(self.csv_path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for name, value in metrics.items():
                writer.writerow((step, name, f"{float(value):.6g}", elapsed))
        if self._writer is not None:
            for name, value in metrics.items():
                self._writer.add_scalar(name, float(value), step)

    def note(self, message: str) -> None:
        """Tell the user something about the run (stderr) and keep it in ``notes.log``."""
        if not self.enabled:
            return
        tqdm.write(message, file=sys.stderr)
        with open(self.csv_path.with_name("notes.log"), "a", encoding="utf-8") as handle:
            handle.write(message + "\n")

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
