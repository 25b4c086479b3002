"""Options shared by all training commands, and the layout of a run's output folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synboost_ros.config import Size

# Generators of the dissimilarity training examples (``training/dissimilarity_data.py``).
SOURCES = ("swap", "void")


@dataclass(frozen=True)
class TrainOptions:
    """Common options; ``None`` for steps, epochs, batch size or lr means the stage default."""

    data: Path
    out: Path
    preset: str | None = None
    init_weights: Path | None = None
    val_data: Path | None = None
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    resume: bool = False
    workers: int = 2
    log_every: int = 10
    checkpoint_every: int = 500
    segmentation_size: Size | None = None
    synthesis_size: Size | None = None

    def steps_or_epochs(
        self, default_steps: int | None, default_epochs: int | None
    ) -> tuple[int | None, int | None]:
        """(steps, epochs) of the run: the given one, else the stage default."""
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give --steps or --epochs, not both")
        if self.steps is None and self.epochs is None:
            return default_steps, default_epochs
        return self.steps, self.epochs


@dataclass(frozen=True)
class RunLayout:
    """``OUT`` is the weights folder; ``OUT/train_state`` holds checkpoint, logs and extras."""

    out: Path

    @property
    def state_dir(self) -> Path:
        """Folder of everything that is not the final weights."""
        return self.out / "train_state"

    @property
    def checkpoint(self) -> Path:
        """Resumable checkpoint of the latest saved step."""
        return self.state_dir / "checkpoint.pt"

    @property
    def best_weights(self) -> Path:
        """Weights folder of the best validation result so far."""
        return self.state_dir / "best"

    def resume_checkpoint(self, resume: bool) -> Path | None:
        """The checkpoint to resume from, None to start fresh; refuses to overwrite silently."""
        if resume:
            if not self.checkpoint.is_file():
                raise FileNotFoundError(f"--resume: no checkpoint at {self.checkpoint}")
            return self.checkpoint
        if self.checkpoint.exists():
            raise ValueError(
                f"{self.out} already holds a training run ({self.checkpoint}); "
                "pass --resume to continue it or choose another --out"
            )
        return None
