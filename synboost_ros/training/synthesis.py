"""SPADE generator training: multi-scale PatchGAN, hinge loss, feature matching, perceptual loss
(VGG19 or EfficientNet-Lite0 features), TTUR."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ConstantLR, LinearLR, SequentialLR
from torch.utils.data import Dataset

from synboost_ros.config import InputNormalization, Size
from synboost_ros.nn.discriminator import MultiscalePatchDiscriminator
from synboost_ros.nn.label_maps import SynthesisLabelInput
from synboost_ros.nn.losses import (
    FeaturePerceptualLoss,
    Lite0PerceptualLoss,
    VGGPerceptualLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from synboost_ros.nn.normalization import add_spectral_norm
from synboost_ros.nn.perceptual import (
    LITE0_PERCEPTUAL_TAPS,
    PERCEPTUAL_TAPS,
    PerceptualDifference,
)
from synboost_ros.nn.pretrained import (
    EFFICIENTNET_LITE0_IMAGENET,
    load_torchvision_vgg,
    pretrained_efficientnet_lite0,
)
from synboost_ros.nn.spade_generator import SPADEGenerator
from synboost_ros.nn.vgg import VGGFeatures
from synboost_ros.preprocessing import resize_image, resize_labels
from synboost_ros.training.augment import random_hflip
from synboost_ros.training.checkpoint import checkpoint_saver, load_checkpoint
from synboost_ros.training.inference_maps import image_tensor
from synboost_ros.training.loop import LoopSettings, make_loader, run_loop, total_steps
from synboost_ros.training.metric_log import MetricLogger
from synboost_ros.training.model_io import save_trained_model
from synboost_ros.training.options import TrainOptions
from synboost_ros.training.provenance import settings_record, training_entry
from synboost_ros.training.runtime import Runtime, no_sync
from synboost_ros.training.sampling import SampleKey, sample_rng
from synboost_ros.training.session import training_session

DEFAULT_EPOCHS = 200
DEFAULT_BATCH_SIZE = 8
GENERATOR_LR = 1e-4
DISCRIMINATOR_LR_FACTOR = 4.0  # two time-scale update rule: D learns 4x faster
ADAM_BETAS = (0.0, 0.9)
# Feature networks of the synthesis perceptual loss (``--perceptual-loss``).
PERCEPTUAL_LOSSES = ("vgg19", "lite0")


@dataclass(frozen=True)
class SynthesisOptions:
    """SPADE GAN settings."""

    # "vgg19": the VGG loss, on when ``vgg_weights`` is given; "lite0": the loss on the ImageNet
    # EfficientNet-Lite0 of the pretrained extra.
    perceptual_loss: str = "vgg19"
    vgg_weights: Path | None = None  # torchvision VGG19 state dict; None disables the VGG loss
    ndf: int | None = None  # discriminator width; None: the generator's ngf
    num_scales: int = 2
    discriminator_layers: int = 4
    feature_matching_weight: float = 10.0
    perceptual_weight: float = 10.0
    decay_start_fraction: float = 0.5  # LRs decay linearly to 0 over the last half (SPADE)
    split: str = "train"


def spade_lr_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, decay_start: int
) -> SequentialLR:
    """Learning rate constant until ``decay_start``, then linear to 0 at ``total_steps`` (SPADE).

    Stepped once per training step.
    """
    if not 0 <= decay_start < total_steps:
        raise ValueError(f"need 0 <= decay_start < total_steps, got {decay_start}, {total_steps}")
    constant = ConstantLR(optimizer, factor=1.0, total_iters=decay_start)
    linear = LinearLR(
        optimizer, start_factor=1.0, end_factor=0.0, total_iters=total_steps - decay_start
    )
    return SequentialLR(optimizer, [constant, linear], milestones=[decay_start])


class SynthesisTrainSet(Dataset):
    """Image and train-id map at the synthesis size, mirrored at random."""

    def __init__(self, samples: Sequence, size: Size, seed: int) -> None:
        self.samples = samples
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        index, epoch = key
        sample = self.samples[index]
        image = resize_image(sample.image, self.size)
        labels = resize_labels(sample.train_ids, self.size)
        image, labels = random_hflip(sample_rng(self.seed, epoch, index), image, labels)
        return {
            "image": image_tensor(image)[0],
            "labels": torch.from_numpy(labels.astype(np.int64)),
        }


def add_generator_spectral_norm(generator: SPADEGenerator) -> SPADEGenerator:
    """Spectral norm on the ResBlock convs for training (no-op where already present)."""
    for block in generator.resblocks():
        add_spectral_norm(block)
    return generator


class GANStep:
    """One generator and one discriminator update on a batch (SPADE's pix2pixHD recipe)."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        perceptual_loss: FeaturePerceptualLoss | None,
        optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler],
        scaler: torch.amp.GradScaler,
        options: SynthesisOptions,
        label_input: SynthesisLabelInput,
        runtime: Runtime,
    ) -> None:
        self.generator = generator
        self.discriminator = discriminator
        self.perceptual_loss = perceptual_loss
        self.optimizers = optimizers
        self.schedulers = schedulers
        self.scaler = scaler
        self.options = options
        self.label_input = label_input.to(runtime.device)
        self.runtime = runtime
        self.last_metrics: dict[str, float] = {}

    def _discriminate(
        self, onehot: torch.Tensor, fake: torch.Tensor, real: torch.Tensor
    ) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """Score fake and real in one pass; return (fake outputs, real outputs) per scale."""
        pair = torch.cat([torch.cat([onehot, fake], 1), torch.cat([onehot, real], 1)], 0)
        batch = fake.shape[0]
        outputs = self.discriminator(pair)
        fakes = [[feature[:batch] for feature in scale] for scale in outputs]
        reals = [[feature[batch:] for feature in scale] for scale in outputs]
        return fakes, reals

    def __call__(self, batch: dict, step: int) -> dict[str, float]:
        """Update G then D; return the loss terms."""
        device = self.runtime.device
        real = batch["image"].to(device, non_blocking=True) * 2.0 - 1.0
        onehot = self.label_input(batch["labels"].to(device, non_blocking=True))
        metrics: dict[str, float] = {}

        with no_sync(self.discriminator):  # D's gradients of the G step are thrown away
            with self.runtime.autocast():
                fake = self.generator(onehot)
                fake_out, real_out = self._discriminate(onehot, fake, real)
            adversarial = hinge_generator_loss(fake_out)
            matching = feature_matching_loss(fake_out, real_out)
            g_loss = adversarial + self.options.feature_matching_weight * matching
            if self.perceptual_loss is not None:
                with self.runtime.autocast():
                    perceptual = self.perceptual_loss(fake, real)
                g_loss = g_loss + self.options.perceptual_weight * perceptual.float()
                metrics["train/g_perceptual"] = perceptual.item()
            self.optimizers["generator"].zero_grad(set_to_none=True)
            self.scaler.scale(g_loss).backward()
        self.scaler.step(self.optimizers["generator"])

        with self.runtime.autocast():
            fake_out, real_out = self._discriminate(onehot, fake.detach(), real)
        d_loss = hinge_discriminator_loss(real_out, fake_out)
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.optimizers["discriminator"])
        self.scaler.update()
        for scheduler in self.schedulers.values():
            scheduler.step()
        metrics.update(
            {
                "train/g_total": g_loss.item(),
                "train/g_hinge": adversarial.item(),
                "train/g_feature_matching": matching.item(),
                "train/d_hinge": d_loss.item(),
            }
        )
        self.last_metrics = metrics
        return metrics


def build_perceptual_loss(
    options: SynthesisOptions, normalization: InputNormalization, logger: MetricLogger
) -> FeaturePerceptualLoss | None:
    """The perceptual loss of ``options.perceptual_loss``, or None (disabled, with a note).

    "vgg19": from ``--vgg-weights``, with the perceptual difference's input ``normalization``
    (a full-width VGG19 there shares its weights); "lite0": the installed ImageNet Lite0 with
    its own normalisation.
    """
    if options.perceptual_loss not in PERCEPTUAL_LOSSES:
        raise ValueError(
            f"perceptual loss must be one of {PERCEPTUAL_LOSSES}, got {options.perceptual_loss!r}"
        )
    if options.perceptual_loss == "lite0":
        if options.vgg_weights is not None:
            raise ValueError("--vgg-weights is for the vgg19 perceptual loss, not lite0")
        trunk = pretrained_efficientnet_lite0(LITE0_PERCEPTUAL_TAPS)
        logger.note(
            f"perceptual loss on EfficientNet-Lite0 ({EFFICIENTNET_LITE0_IMAGENET.package} "
            f"{EFFICIENTNET_LITE0_IMAGENET.version}), weight {options.perceptual_weight}"
        )
        return Lite0PerceptualLoss(trunk)
    if options.vgg_weights is None:
        logger.note(
            "perceptual loss disabled: no --vgg-weights given (a torchvision VGG19 state dict "
            "enables the VGG loss; --perceptual-loss lite0 uses the pretrained extra's Lite0)"
        )
        return None
    vgg = VGGFeatures(19, PERCEPTUAL_TAPS, 1.0)
    load_torchvision_vgg(vgg, options.vgg_weights)
    return VGGPerceptualLoss(vgg, normalization)


def share_perceptual_vgg(
    vgg_loss: VGGPerceptualLoss, perceptual: PerceptualDifference, logger: MetricLogger
) -> None:
    """Give a full-width perceptual-difference VGG19 the ImageNet weights of the VGG loss."""
    if perceptual.backbone != "vgg19" or perceptual.vgg.width_multiplier != 1:
        logger.note(
            "the perceptual difference is not a full-width VGG19: it keeps its weights (only "
            "full-width VGGs take torchvision weights)"
        )
        return
    perceptual.vgg.load_state_dict(vgg_loss.features.state_dict())
    logger.note("perceptual-difference VGG19 set to the --vgg-weights ImageNet weights")


def train_synthesis(options: TrainOptions, syn_options: SynthesisOptions | None = None) -> Path:
    """Train the synthesis part and write a complete weights folder to ``options.out``."""
    from synboost_ros.data.cityscapes import CityscapesDataset

    syn_options = syn_options or SynthesisOptions()
    with training_session(options) as session:
        started, layout, resume_from = session.started, session.layout, session.resume_from
        runtime, logger, start = session.runtime, session.logger, session.start
        model = start.model
        config = model.config
        dataset = SynthesisTrainSet(
            CityscapesDataset(options.data, syn_options.split), config.synthesis_size, options.seed
        )
        batch_size = options.batch_size or DEFAULT_BATCH_SIZE
        loader, sampler = make_loader(dataset, batch_size, options.seed, runtime, options.workers)
        steps, epochs = options.steps_or_epochs(None, DEFAULT_EPOCHS)
        total = total_steps(steps, epochs, sampler.batches_per_epoch)
        settings = LoopSettings(total, options.log_every, options.checkpoint_every)

        generator = add_generator_spectral_norm(model.synthesis).train()
        label_input = SynthesisLabelInput(config.num_classes, config.spade.label_input)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)
            discriminator = MultiscalePatchDiscriminator(
                label_input.channels + 3,
                syn_options.num_scales,
                syn_options.ndf or config.spade.ngf,
                syn_options.discriminator_layers,
            )
        perceptual_loss = build_perceptual_loss(
            syn_options, config.perceptual_normalization, logger
        )
        if isinstance(perceptual_loss, VGGPerceptualLoss):
            share_perceptual_vgg(perceptual_loss, model.perceptual, logger)
        if perceptual_loss is not None:
            perceptual_loss = perceptual_loss.to(runtime.device)
        wrapped_g = runtime.wrap(generator)
        wrapped_d = runtime.wrap(discriminator.train())
        g_lr = options.lr or GENERATOR_LR
        optimizers = {
            "generator": torch.optim.Adam(wrapped_g.parameters(), lr=g_lr, betas=ADAM_BETAS),
            "discriminator": torch.optim.Adam(
                wrapped_d.parameters(), lr=g_lr * DISCRIMINATOR_LR_FACTOR, betas=ADAM_BETAS
            ),
        }
        decay_start = int(total * syn_options.decay_start_fraction)
        schedulers = {
            name: spade_lr_scheduler(opt, total, decay_start) for name, opt in optimizers.items()
        }
        scaler = runtime.grad_scaler()
        modules = {"generator": generator, "discriminator": discriminator}
        start_step = 0
        if resume_from is not None:
            start_step, _ = load_checkpoint(resume_from, modules, optimizers, schedulers, scaler)
        step_fn = GANStep(
            wrapped_g,
            wrapped_d,
            perceptual_loss,
            optimizers,
            schedulers,
            scaler,
            syn_options,
            label_input,
            runtime,
        )
        checkpoint = checkpoint_saver(
            layout.checkpoint, runtime, modules, optimizers, schedulers, scaler
        )
        run_loop(
            loader,
            sampler,
            settings,
            start_step,
            step_fn,
            checkpoint,
            logger,
            runtime,
            "train synth",
        )
        if runtime.is_main:
            generator.prepare_for_inference()  # bakes spectral norm into plain weights
            run_settings = {
                "batch_size": batch_size,
                "generator_lr": g_lr,
                "discriminator_lr": g_lr * DISCRIMINATOR_LR_FACTOR,
                "perceptual_loss_enabled": perceptual_loss is not None,
                **settings_record(syn_options),
            }
            entry = training_entry(
                "synthesis",
                runtime,
                options.data,
                options.seed,
                total,
                time.perf_counter() - started,
                {name.replace("train/", "final_"): v for name, v in step_fn.last_metrics.items()},
                run_settings,
            )
            save_trained_model(model, options.out, start, entry)
        logger.close()
        runtime.barrier()
    return options.out
