"""ICNet training with cascade label guidance, poly learning rate, mIoU on a validation split
and, optionally, the softmax-entropy anomaly AP / FPR95 on an anomaly set.

A longer-trained network can gain mIoU and still lose anomaly signal (more confident on
objects it has never seen), so the anomaly figures are reported beside the mIoU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import PolynomialLR
from torch.utils.data import Dataset
from tqdm import tqdm

from synboost_ros.classes import NUM_CLASSES, label_ids_to_train_ids
from synboost_ros.config import PipelineConfig, Size
from synboost_ros.data.anomaly_sets import AnomalyDataset
from synboost_ros.data.cityscapes import CityscapesDataset
from synboost_ros.evaluation import evaluate_segmentation
from synboost_ros.metrics.anomaly import ANOMALY_LABEL, AnomalyMetricAccumulator
from synboost_ros.nn.input_normalization import normalize_input
from synboost_ros.nn.losses import cascade_label_guidance_loss, enet_class_weights
from synboost_ros.nn.pretrained import load_resnet50_backbone
from synboost_ros.preprocessing import network_input, resize_labels
from synboost_ros.stages import SegmentationStage
from synboost_ros.training.augment import color_jitter, random_hflip, random_scale_crop
from synboost_ros.training.checkpoint import checkpoint_saver, load_checkpoint
from synboost_ros.training.fine_tuning import (
    freeze_batch_norm_statistics,
    pretrained_lite0_segmentation,
    trunk_parameter_groups,
)
from synboost_ros.training.inference_maps import image_tensor
from synboost_ros.training.loop import LoopSettings, make_loader, run_loop, total_steps
from synboost_ros.training.metric_log import MetricLogger
from synboost_ros.training.model_io import save_trained_model
from synboost_ros.training.options import TrainOptions
from synboost_ros.training.provenance import settings_record, training_entry
from synboost_ros.training.sampling import SampleKey, sample_rng
from synboost_ros.training.session import training_session

DEFAULT_STEPS = 30_000
DEFAULT_BATCH_SIZE = 16
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3}
OPTIMIZERS = tuple(DEFAULT_LR)
CLASS_WEIGHTINGS = ("none", "enet")
POLY_POWER = 0.9  # ICNet / PSPNet


@dataclass(frozen=True)
class SegmentationOptions:
    """ICNet-specific settings."""

    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scale_range: tuple[float, float] = (0.5, 2.0)  # relative to the inference scale
    jitter: float = 0.2
    split: str = "train"
    val_split: str = "val"
    resnet50_weights: Path | None = None  # torchvision ResNet-50 for the backbone (light)
    pretrained_trunk: bool = False  # a fresh ICNet "lite0" on the ImageNet Lite0 trunk
    trunk_lr_scale: float = 1.0  # learning rate of the trunk, times lr
    freeze_trunk_bn: bool = False  # the trunk's batch norms keep their running statistics
    class_weighting: str = "none"  # "enet": 1 / ln(1.02 + class frequency of the training split)
    anomaly_val_data: Path | None = None  # anomaly set for the softmax-entropy AP / FPR95
    anomaly_val_format: str = "fishyscapes"

    def __post_init__(self) -> None:
        if self.pretrained_trunk and self.resnet50_weights is not None:
            raise ValueError("give ResNet-50 weights or the pretrained Lite0 trunk, not both")
        if not self.trunk_lr_scale >= 0.0:
            raise ValueError(f"trunk learning-rate scale must be >= 0, got {self.trunk_lr_scale}")


def poly_lr_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> PolynomialLR:
    """Poly decay, factor (1 - step / total_steps) ** 0.9; stepped once per training step."""
    return PolynomialLR(optimizer, total_iters=total_steps, power=POLY_POWER)


class SegmentationTrainSet(Dataset):
    """Random scale / crop / flip / colour-jitter crops of the segmentation input size."""

    def __init__(
        self,
        samples: Sequence,
        size: Size,
        seed: int,
        scale_range: tuple[float, float],
        jitter: float,
    ) -> None:
        self.samples = samples
        self.size = size
        self.seed = seed
        self.scale_range = scale_range
        self.jitter = jitter

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        index, epoch = key
        sample = self.samples[index]
        rng = sample_rng(self.seed, epoch, index)
        image, labels = random_scale_crop(
            sample.image, sample.train_ids, self.size, self.scale_range, rng
        )
        image = color_jitter(image, rng, self.jitter)
        image, labels = random_hflip(rng, image, labels)
        return {
            "image": image_tensor(image)[0],
            "labels": torch.from_numpy(labels.astype(np.int64)),
        }


def build_optimizer(
    network: nn.Module, options: SegmentationOptions, lr: float
) -> torch.optim.Optimizer:
    """SGD with momentum or Adam, with weight decay; the ``trunk`` of ``network`` (unwrapped)
    at ``lr * options.trunk_lr_scale``."""
    groups = trunk_parameter_groups(network, lr, options.trunk_lr_scale)
    if options.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=options.momentum,
            weight_decay=options.weight_decay,
        )
    if options.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=options.weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {options.optimizer!r}")


def train_id_histogram(dataset: CityscapesDataset) -> np.ndarray:
    """Pixel count of every train id over a split's label files (ignored pixels left out)."""
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)
    for index in tqdm(range(len(dataset)), desc="class histogram", unit="img"):
        train_ids = label_ids_to_train_ids(dataset.label_ids(index))
        counts += np.bincount(train_ids.ravel(), minlength=256)[:NUM_CLASSES]
    return counts


def segmentation_class_weights(dataset: CityscapesDataset, weighting: str) -> torch.Tensor | None:
    """Per-class loss weights for ``weighting``; None for the plain cross-entropy."""
    if weighting == "none":
        return None
    if weighting == "enet":
        counts = train_id_histogram(dataset)
        # a class absent from the split gets one pixel, so its weight is finite and largest
        return enet_class_weights(np.maximum(counts, 1))
    raise ValueError(f"class weighting must be one of {CLASS_WEIGHTINGS}, got {weighting!r}")


@torch.no_grad()
def predict_train_ids(
    stage: SegmentationStage, image: np.ndarray, config: PipelineConfig, device: torch.device
) -> np.ndarray:
    """Predicted train ids at the image's own resolution, as the inference pipeline gives them."""
    seg_input = torch.from_numpy(network_input(image, config.segmentation_size))
    semantic, _, _ = stage(seg_input.to(device))
    ids = semantic[0].cpu().numpy().astype(np.uint8)
    return resize_labels(ids, image.shape[:2])


def validation_samples(options: TrainOptions, split: str, logger: MetricLogger) -> Sequence | None:
    """The validation split (``--val-data`` or the training root), or None when there is none."""
    root = options.val_data or options.data
    if not (Path(root) / "leftImg8bit" / split).is_dir():
        if options.val_data is not None:
            raise FileNotFoundError(f"--val-data {root} has no leftImg8bit/{split} folder")
        logger.note(f"no {split!r} split under {root}: mIoU is not measured")
        return None
    return CityscapesDataset(root, split)


def train_segmentation(
    options: TrainOptions, seg_options: SegmentationOptions | None = None
) -> Path:
    """Train the segmentation part and write a complete weights folder to ``options.out``."""
    seg_options = seg_options or SegmentationOptions()
    anomaly_samples = None  # read before the run folder is made: a wrong path costs nothing
    if seg_options.anomaly_val_data is not None:
        anomaly_samples = AnomalyDataset(
            seg_options.anomaly_val_data, seg_options.anomaly_val_format
        )
    with training_session(options) as session:
        started, layout, resume_from = session.started, session.layout, session.resume_from
        runtime, logger, start = session.runtime, session.logger, session.start
        model = start.model
        pretrained = None
        if seg_options.pretrained_trunk:
            pretrained = pretrained_lite0_segmentation(model, options.seed)
            logger.note(f"ICNet lite0: ImageNet EfficientNet-Lite0 trunk from {pretrained['path']}")
        if seg_options.resnet50_weights is not None:
            load_resnet50_backbone(model.segmentation.backbone, seg_options.resnet50_weights)
            logger.note(f"ICNet backbone initialised from {seg_options.resnet50_weights}")
        train_split = CityscapesDataset(options.data, seg_options.split)
        class_weights = segmentation_class_weights(train_split, seg_options.class_weighting)
        if class_weights is not None:
            logger.note(f"class weights ({seg_options.class_weighting}): {class_weights.tolist()}")
            class_weights = class_weights.to(runtime.device)
        dataset = SegmentationTrainSet(
            train_split,
            model.config.segmentation_size,
            options.seed,
            seg_options.scale_range,
            seg_options.jitter,
        )
        val_samples = None
        if runtime.is_main:  # checked before training, used after it
            val_samples = validation_samples(options, seg_options.val_split, logger)
        batch_size = options.batch_size or DEFAULT_BATCH_SIZE
        loader, sampler = make_loader(dataset, batch_size, options.seed, runtime, options.workers)
        steps, epochs = options.steps_or_epochs(DEFAULT_STEPS, None)
        settings = LoopSettings(
            total_steps(steps, epochs, sampler.batches_per_epoch),
            options.log_every,
            options.checkpoint_every,
        )
        if runtime.distributed and runtime.device.type == "cuda":
            model.segmentation = nn.SyncBatchNorm.convert_sync_batchnorm(model.segmentation)
        if seg_options.freeze_trunk_bn:
            count = freeze_batch_norm_statistics(model.segmentation.trunk)
            logger.note(f"{count} batch norms of the ICNet trunk keep their statistics")
        network = runtime.wrap(model.segmentation.train())
        lr = options.lr or DEFAULT_LR[seg_options.optimizer]
        optimizer = build_optimizer(model.segmentation, seg_options, lr)
        scheduler = poly_lr_scheduler(optimizer, settings.total_steps)
        scaler = runtime.grad_scaler()
        modules = {"segmentation": model.segmentation}
        optimizers = {"optimizer": optimizer}
        schedulers = {"scheduler": scheduler}
        start_step = 0
        if resume_from is not None:
            start_step, _ = load_checkpoint(resume_from, modules, optimizers, schedulers, scaler)

        def train_step(batch: dict, step: int) -> dict[str, float]:
            images = batch["image"].to(runtime.device, non_blocking=True)
            labels = batch["labels"].to(runtime.device, non_blocking=True)
            with runtime.autocast():
                output = network(normalize_input(images, model.config.segmentation_normalization))
            loss = cascade_label_guidance_loss(output, labels, class_weights)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            lr_now = scheduler.get_last_lr()[0]
            scheduler.step()
            return {"train/loss": loss.item(), "train/lr": lr_now}

        checkpoint = checkpoint_saver(
            layout.checkpoint, runtime, modules, optimizers, schedulers, scaler
        )
        run_loop(
            loader,
            sampler,
            settings,
            start_step,
            train_step,
            checkpoint,
            logger,
            runtime,
            "train seg",
        )
        if runtime.is_main:
            model.segmentation.eval()
            stage = SegmentationStage(model)
            metrics = {}
            if val_samples is not None:
                metrics = validate_segmentation(stage, model.config, val_samples, runtime.device)
            if anomaly_samples is not None:  # main process only, like the mIoU
                entropy_metrics = validate_entropy_anomaly(
                    stage, model.config, anomaly_samples, runtime.device
                )
                if entropy_metrics is None:
                    logger.note(f"{seg_options.anomaly_val_data} has no anomaly pixels: no AP")
                metrics.update(entropy_metrics or {})
            if metrics:
                logger.log(settings.total_steps, {f"val/{k}": v for k, v in metrics.items()})
            entry = training_entry(
                "segmentation",
                runtime,
                options.data,
                options.seed,
                settings.total_steps,
                time.perf_counter() - started,
                metrics,
                {
                    "batch_size": batch_size,
                    "lr": lr,
                    **settings_record(seg_options),
                    "pretrained_trunk": pretrained,
                    "class_weights": None if class_weights is None else class_weights.tolist(),
                },
            )
            save_trained_model(model, options.out, start, entry)
        logger.close()
        runtime.barrier()
    return options.out


def validate_segmentation(
    stage: SegmentationStage, config: PipelineConfig, samples: Sequence, device: torch.device
) -> dict[str, float]:
    """mIoU and pixel accuracy of the predicted train ids on a labelled split."""
    accumulator = evaluate_segmentation(
        samples, lambda sample: predict_train_ids(stage, sample.image, config, device)
    )
    result = accumulator.compute()
    return {"miou": result.miou, "pixel_accuracy": result.pixel_accuracy}


@torch.no_grad()
def validate_entropy_anomaly(
    stage: SegmentationStage, config: PipelineConfig, samples: AnomalyDataset, device: torch.device
) -> dict[str, float] | None:
    """Pooled AP / FPR95 of the softmax entropy as the anomaly score, at the segmentation size
    with the labels nearest-resized to it (a selection figure; ``synboost ablation`` gives the
    entropy row at the labels' own resolution). None when no pixel is anomalous."""
    accumulator = AnomalyMetricAccumulator()
    anomalous = 0
    for index in tqdm(range(len(samples)), desc="entropy anomaly AP", unit="img"):
        sample = samples[index]
        image = torch.from_numpy(network_input(sample.image, config.segmentation_size)).to(device)
        _, entropy, _ = stage(image)
        label = resize_labels(sample.label, config.segmentation_size)
        anomalous += int((label == ANOMALY_LABEL).sum())
        accumulator.update(entropy[0, 0].cpu().numpy(), label)
    if anomalous == 0:
        return None
    result = accumulator.compute()
    return {"entropy_ap": result.ap, "entropy_fpr95": result.fpr95}
