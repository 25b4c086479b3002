"""``synboost weights``: tools for weights folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from synboost_ros.config import MODEL_PARTS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``weights`` subcommand."""
    parser = subparsers.add_parser("weights", help="combine, calibrate and import weights folders")
    actions = parser.add_subparsers(dest="action", required=True)
    combine = actions.add_parser(
        "combine", help="take some parts from other folders (e.g. parts trained in parallel)"
    )
    combine.add_argument("--base", type=Path, required=True, help="folder for the other parts")
    combine.add_argument("--out", type=Path, required=True, help="new weights folder")
    for part in MODEL_PARTS:
        combine.add_argument(f"--{part}", type=Path, help=f"folder to take the {part} part from")
    combine.set_defaults(func=run_combine)
    calibrate = actions.add_parser(
        "calibrate", help="set the perceptual-difference scale from training images"
    )
    calibrate.add_argument("--weights", type=Path, required=True, help="weights folder")
    calibrate.add_argument("--data", type=Path, required=True, help="Cityscapes-layout root")
    calibrate.add_argument("--split", default="train")
    calibrate.add_argument("--limit", type=int, default=100, help="images to use")
    calibrate.add_argument("--quantile", type=float, default=0.95)
    calibrate.add_argument(
        "--perceptual-backbone",
        choices=("efficientnet_lite0",),
        help="first move the perceptual difference onto this pretrained backbone (ImageNet "
        "EfficientNet-Lite0 of the pretrained extra); the other parts are kept",
    )
    calibrate.add_argument("--out", type=Path, required=True, help="new weights folder")
    calibrate.set_defaults(func=run_calibrate)
    importer = actions.add_parser(
        "import",
        help="a light weights folder from the public Cityscapes checkpoints (README: real cameras)",
        description="Convert the public Cityscapes checkpoints of the paper's Light pipeline "
        "into a light weights folder. Parts not given keep random weights (the manifest says "
        "so). The SPADE generator is licensed CC BY-NC-SA 4.0: a folder holding it may be used "
        "for non-commercial purposes only.",
    )
    importer.add_argument(
        "--icnet", type=Path, help="lxtGH/Fast_Seg icnet_final.pth (Apache-2.0): segmentation"
    )
    importer.add_argument(
        "--spade",
        type=Path,
        help="NVlabs SPADE checkpoints/cityscapes_pretrained/latest_net_G.pth "
        "(CC BY-NC-SA 4.0, non-commercial): synthesis",
    )
    importer.add_argument(
        "--vgg16", type=Path, help="torchvision vgg16-397923af.pth: the dissimilarity encoder"
    )
    importer.add_argument(
        "--vgg19", type=Path, help="torchvision vgg19-dcbb9e9d.pth: the perceptual difference"
    )
    importer.add_argument(
        "--dissimilarity",
        type=Path,
        help="SynBoost's models.tar (MIT) or the DissimNetPrior .pth in it: the whole "
        "dissimilarity net (instead of --vgg16)",
    )
    importer.add_argument(
        "--dissimilarity-member",
        help="member of the --dissimilarity archive to read (default: the released "
        "best_net_baseline_void_prior_spadedecoder_mult_3.pth)",
    )
    importer.add_argument("--seed", type=int, default=0, help="seed of the parts not given")
    importer.add_argument("--out", type=Path, required=True, help="new weights folder")
    importer.set_defaults(func=run_import)


def run_combine(args: argparse.Namespace) -> int:
    """Combine the named parts into a new folder and print its manifest path."""
    from synboost_ros.weights import combine_weights

    sources = {part: getattr(args, part) for part in MODEL_PARTS if getattr(args, part)}
    if not sources:
        raise ValueError("name at least one part to take, e.g. --synthesis DIR")
    print(combine_weights(sources, args.base, args.out))
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    """Calibrate the perceptual scale on the first ``--limit`` images and save a new folder."""
    from synboost_ros.data.cityscapes import CityscapesDataset
    from synboost_ros.nn.pretrained import EFFICIENTNET_LITE0_IMAGENET
    from synboost_ros.training.perceptual_calibration import (
        calibrate_perceptual_scale,
        with_pretrained_perceptual,
    )
    from synboost_ros.training.provenance import extend_provenance
    from synboost_ros.weights import load_model, save_weights

    model, manifest = load_model(args.weights)
    provenance = manifest.provenance
    if args.perceptual_backbone:
        model = with_pretrained_perceptual(model, args.perceptual_backbone)
        switch = {
            "stage": "perceptual backbone",
            "perceptual_backbone": args.perceptual_backbone,
            "pretrained": EFFICIENTNET_LITE0_IMAGENET.provenance(),
        }
        provenance = extend_provenance(provenance, switch)
    dataset = CityscapesDataset(args.data, args.split)
    images = (dataset[i].image for i in range(min(args.limit, len(dataset))))
    calibrated = calibrate_perceptual_scale(model, images, args.quantile)
    scale = calibrated.config.perceptual_scale
    step = {
        "stage": "perceptual calibration",
        "data": str(args.data),
        "images": min(args.limit, len(dataset)),
        "quantile": args.quantile,
        "perceptual_scale": scale,
    }
    print(save_weights(calibrated, args.out, extend_provenance(provenance, step)))
    print(f"perceptual_scale = {scale:.6g}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import the checkpoints given, print the manifest path and what each part holds."""
    from synboost_ros.weights_import import LIGHT_SOURCES, import_light_weights

    files = {name: getattr(args, name) for name in LIGHT_SOURCES if getattr(args, name)}
    if not files:
        raise ValueError("give at least one checkpoint, e.g. --icnet icnet_final.pth")
    manifest, record = import_light_weights(args.out, files, args.dissimilarity_member, args.seed)
    print(manifest)
    for part, state in record["parts"].items():
        origin = ", ".join(record["sources"][name]["file"] for name in state["from"])
        status = "trained" if state["trained"] else f"UNTRAINED ({state['untrained']})"
        print(f"{part}: {status}{f'; from {origin}' if origin else ''}")
    if "license_note" in record:
        print(f"note: {record['license_note']}")
    return 0
