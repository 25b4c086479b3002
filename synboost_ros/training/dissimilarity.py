"""Dissimilarity network training on the generated (cached) examples.

Class-weighted cross-entropy (ENet weights from the label histogram, 255 ignored), Adam
(lr 1e-4, betas (0.5, 0.999)), ReduceLROnPlateau (patience 10, factor 0.5) once per epoch,
horizontal flips only. With a validation anomaly set the plateau scheduler follows the
validation AP and the weights of the best epoch are kept; otherwise it follows the epoch's
mean training loss and the last weights are written. With ``ema_decay`` an exponential moving
average of the weights is kept beside them; it is what gets validated and written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import Dataset

from synboost_ros.graphs import default_cache_dir
from synboost_ros.model import SynBoostModel
from synboost_ros.nn.losses import enet_class_weights, safe_cross_entropy
from synboost_ros.nn.pretrained import load_torchvision_vgg
from synboost_ros.stages import dissimilarity_logits
from synboost_ros.training.anomaly_validation import AnomalyValidationSet
from synboost_ros.training.augment import random_hflip
from synboost_ros.training.checkpoint import checkpoint_saver, load_checkpoint
from synboost_ros.training.dissimilarity_data import (
    SOURCES,
    CachedExample,
    DissimilarityCache,
    GeneratorSettings,
    cache_key,
    data_fingerprint,
    label_histogram,
    load_example,
)
from synboost_ros.training.fine_tuning import (
    freeze_batch_norm_statistics,
    pretrained_lite0_dissimilarity,
    trunk_parameter_groups,
)
from synboost_ros.training.inference_maps import MapExtractor, image_tensor
from synboost_ros.training.loop import LoopSettings, make_loader, run_loop, total_steps
from synboost_ros.training.model_io import (
    fresh_dissimilarity_net,
    save_trained_model,
)
from synboost_ros.training.options import TrainOptions
from synboost_ros.training.provenance import training_entry
from synboost_ros.training.sampling import SampleKey, sample_rng
from synboost_ros.training.session import training_session
from synboost_ros.weights import load_weights, save_weights

DEFAULT_EPOCHS = 50
DEFAULT_BATCH_SIZE = 4
DEFAULT_LR = 1e-4
ADAM_BETAS = (0.5, 0.999)
PLATEAU_PATIENCE = 10
PLATEAU_FACTOR = 0.5


@dataclass(frozen=True)
class DissimilarityOptions:
    """Dissimilarity-specific settings."""

    use_uncertainty: bool = True  # False: the paper's "w/o uncertainty maps" ablation
    sources: tuple[str, ...] = SOURCES
    cache_dir: Path | None = None  # default: <synboost cache>/dissimilarity
    val_format: str = "fishyscapes"
    vgg16_weights: Path | None = None  # torchvision VGG16 for the image encoder (width 1 only)
    pretrained_encoder: bool = False  # a fresh net on the ImageNet EfficientNet-Lite0 trunk
    reuse_init_net: bool = False  # with it: the rest of the net from the init weights' net
    trunk_lr_scale: float = 1.0  # learning rate of the image encoder's trunk, times lr
    freeze_trunk_bn: bool = False  # the trunk's batch norms keep their running statistics
    split: str = "train"
    ema_decay: float | None = None  # keep, validate and write an EMA of the weights

    def __post_init__(self) -> None:
        if self.pretrained_encoder and self.vgg16_weights is not None:
            raise ValueError("give VGG16 weights or the pretrained Lite0 encoder, not both")
        if self.reuse_init_net and not self.pretrained_encoder:
            raise ValueError("reusing the init net is an option of the pretrained Lite0 encoder")
        if not self.trunk_lr_scale >= 0.0:
            raise ValueError(f"trunk learning-rate scale must be >= 0, got {self.trunk_lr_scale}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {self.ema_decay}")


def exponential_average(net: nn.Module, decay: float) -> AveragedModel:
    """A copy of ``net`` that follows its weights as ``decay * average + (1 - decay) * new``."""
    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


@contextmanager
def dissimilarity_swapped(model: SynBoostModel, net: nn.Module) -> Iterator[SynBoostModel]:
    """``model`` with ``net`` as its dissimilarity part for the duration of the block."""
    original = model.dissimilarity
    model.dissimilarity = net
    try:
        yield model
    finally:
        model.dissimilarity = original


class DissimilarityTrainSet(Dataset):
    """Cached examples as tensors, mirrored at random (all inputs and the label together)."""

    def __init__(self, examples: Sequence[CachedExample], seed: int) -> None:
        self.examples = examples
        self.seed = seed

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        index, epoch = key
        example = load_example(self.examples[index].path)
        image, synthesized, semantic, uncertainty, label = random_hflip(
            sample_rng(self.seed, epoch, index),
            example.image,
            example.synthesized,
            example.semantic,
            example.uncertainty.transpose(1, 2, 0),
            example.label,
        )
        return {
            "image": image_tensor(image)[0],
            "synthesized": image_tensor(synthesized)[0],
            "semantic": torch.from_numpy(semantic.astype(np.int64)),
            "uncertainty": torch.from_numpy(np.ascontiguousarray(uncertainty.transpose(2, 0, 1))),
            "label": torch.from_numpy(label.astype(np.int64)),
        }


def train_dissimilarity(
    options: TrainOptions, dis_options: DissimilarityOptions | None = None
) -> Path:
    """Generate / reuse the training examples, train, write a complete weights folder."""
    from synboost_ros.data.anomaly_sets import AnomalyDataset
    from synboost_ros.data.cityscapes import CityscapesDataset

    dis_options = dis_options or DissimilarityOptions()
    with training_session(options) as session:
        started, layout, resume_from = session.started, session.layout, session.resume_from
        runtime, logger, start = session.runtime, session.logger, session.start
        model = start.model
        config = model.config
        generator = GeneratorSettings(dis_options.sources, options.seed)
        key = cache_key(model, generator, data_fingerprint(options.data, dis_options.split))
        cache = DissimilarityCache(
            dis_options.cache_dir or default_cache_dir() / "dissimilarity", key
        )
        extractor = MapExtractor(model, runtime.device)
        examples = cache.build(
            CityscapesDataset(options.data, dis_options.split), extractor, generator, runtime
        )
        validation = None
        if options.val_data is not None and runtime.is_main:
            validation = AnomalyValidationSet.compute(
                AnomalyDataset(options.val_data, dis_options.val_format), extractor
            )
        for part in (model.segmentation, model.synthesis, model.perceptual):
            part.cpu()  # only the dissimilarity net trains
        histogram = label_histogram(examples)
        class_weights = enet_class_weights(histogram).to(runtime.device)
        logger.note(
            f"{len(examples)} examples from {cache.folder}; pixels normal/anomaly "
            f"{int(histogram[0])}/{int(histogram[1])}; class weights {class_weights.tolist()}"
        )

        pretrained = None
        if dis_options.pretrained_encoder:
            pretrained = pretrained_lite0_dissimilarity(
                model, dis_options.use_uncertainty, options.seed, dis_options.reuse_init_net
            )
            config = model.config
            logger.note(
                f"image encoder: ImageNet EfficientNet-Lite0 trunk from {pretrained['path']}"
            )
            if dis_options.reuse_init_net:
                logger.note(f"{pretrained['reused_from_init']} tensors reused from the init net")
        elif not dis_options.use_uncertainty:
            model.dissimilarity = fresh_dissimilarity_net(config, False, options.seed)
        net = model.dissimilarity
        if dis_options.vgg16_weights is not None:
            if net.vgg is None:
                raise ValueError("VGG16 weights given, but the image encoder is EfficientNet-Lite0")
            load_torchvision_vgg(net.vgg, dis_options.vgg16_weights)
        if dis_options.freeze_trunk_bn:
            count = freeze_batch_norm_statistics(net.trunk)
            logger.note(f"{count} batch norms of the image encoder keep their statistics")
        wrapped = runtime.wrap(net.train())
        ema = None
        if dis_options.ema_decay is not None:
            ema = exponential_average(net, dis_options.ema_decay)
        kept = net if ema is None else ema.module  # the weights that are validated and written
        loader, sampler = make_loader(
            DissimilarityTrainSet(examples, options.seed),
            options.batch_size or DEFAULT_BATCH_SIZE,
            options.seed,
            runtime,
            options.workers,
        )
        steps, epochs = options.steps_or_epochs(None, DEFAULT_EPOCHS)
        total = total_steps(steps, epochs, sampler.batches_per_epoch)
        settings = LoopSettings(total, options.log_every, options.checkpoint_every)
        lr = options.lr or DEFAULT_LR
        optimizer = torch.optim.Adam(
            trunk_parameter_groups(net, lr, dis_options.trunk_lr_scale), lr=lr, betas=ADAM_BETAS
        )
        has_validation = options.val_data is not None
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max" if has_validation else "min",
            factor=PLATEAU_FACTOR,
            patience=PLATEAU_PATIENCE,
        )
        scaler = runtime.grad_scaler()
        modules: dict[str, nn.Module] = {"dissimilarity": net}
        if ema is not None:
            modules["dissimilarity_ema"] = ema
        optimizers = {"optimizer": optimizer}
        schedulers = {"plateau": plateau}
        progress: dict[str, Any] = {
            "loss_sum": 0.0,
            "loss_count": 0,
            "best_ap": -1.0,
            "best_fpr95": 1.0,
            "best_epoch": -1,
            "last_loss": float("nan"),
        }
        start_step = 0
        if resume_from is not None:
            start_step, extra = load_checkpoint(
                resume_from, modules, optimizers, schedulers, scaler
            )
            progress.update(extra)

        def train_step(batch: dict, step: int) -> dict[str, float]:
            tensors = {k: v.to(runtime.device, non_blocking=True) for k, v in batch.items()}
            with runtime.autocast():
                logits = dissimilarity_logits(
                    wrapped,
                    tensors["image"],
                    tensors["synthesized"],
                    tensors["semantic"],
                    tensors["uncertainty"] if dis_options.use_uncertainty else None,
                    config.num_classes,
                    config.dissimilarity_image_normalization,
                )
            loss = safe_cross_entropy(logits, tensors["label"], class_weights)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update_parameters(net)
            value = loss.item()
            progress["loss_sum"] += value
            progress["loss_count"] += 1
            progress["last_loss"] = value
            return {"train/loss": value}

        def end_epoch(epoch: int, step: int) -> None:
            count = max(progress["loss_count"], 1)
            mean_loss = runtime.mean_over_ranks(progress["loss_sum"] / count)
            progress["loss_sum"], progress["loss_count"] = 0.0, 0
            metrics = {"epoch/train_loss": mean_loss, "epoch/lr": optimizer.param_groups[0]["lr"]}
            if not has_validation:
                plateau.step(mean_loss)
                logger.log(step, metrics)
                return
            ap = fpr95 = 0.0
            if validation is not None:
                result = validation.evaluate(
                    validation.dissimilarity_maps(
                        kept, runtime.device, config.dissimilarity_image_normalization
                    )
                )
                ap, fpr95 = result.ap, result.fpr95
                metrics.update({"val/ap": ap, "val/fpr95": fpr95})
            ap = runtime.broadcast_from_main(ap)
            plateau.step(ap)
            if ap > progress["best_ap"]:
                progress.update(best_ap=ap, best_fpr95=fpr95, best_epoch=epoch)
                if runtime.is_main:
                    with dissimilarity_swapped(model, kept) as best:
                        save_weights(best, layout.best_weights, {"epoch": epoch, "val_ap": ap})
            logger.log(step, metrics)

        checkpoint = checkpoint_saver(
            layout.checkpoint, runtime, modules, optimizers, schedulers, scaler, lambda: progress
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
            "train dissim",
            on_epoch_end=end_epoch,
        )
        if total % sampler.batches_per_epoch:
            end_epoch(total // sampler.batches_per_epoch, total)  # the last, partial epoch

        if runtime.is_main:
            metrics: dict[str, Any] = {"final_train_loss": progress["last_loss"]}
            if has_validation:
                _, states = load_weights(layout.best_weights, parts=("dissimilarity",))
                net.load_state_dict(states["dissimilarity"])
                metrics.update(
                    best_val_ap=progress["best_ap"],
                    best_val_fpr95=progress["best_fpr95"],
                    best_epoch=progress["best_epoch"],
                )
            elif ema is not None:
                net.load_state_dict(ema.module.state_dict())
            entry = training_entry(
                "dissimilarity",
                runtime,
                options.data,
                options.seed,
                total,
                time.perf_counter() - started,
                metrics,
                {
                    "batch_size": options.batch_size or DEFAULT_BATCH_SIZE,
                    "lr": lr,
                    "ema_decay": dis_options.ema_decay,
                    "pretrained_encoder": pretrained,
                    "trunk_lr_scale": dis_options.trunk_lr_scale,
                    "freeze_trunk_bn": dis_options.freeze_trunk_bn,
                    "use_uncertainty": dis_options.use_uncertainty,
                    "sources": list(dis_options.sources),
                    "examples": len(examples),
                    "cache_key": key,
                    "label_histogram": histogram.tolist(),
                    "class_weights": class_weights.tolist(),
                    "val_data": str(options.val_data) if has_validation else None,
                },
            )
            save_trained_model(model, options.out, start, entry, dis_options.use_uncertainty)
        logger.close()
        runtime.barrier()
    return options.out
