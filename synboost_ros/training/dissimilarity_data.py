"""Training data of the dissimilarity network (paper Sec. 3.2), generated once and cached.

Two sources per training frame, all maps at the synthesis size:

- ``swap``: a random number of thing instances in the ground-truth map get another class (drawn
  with weights car 7, road 3, person 3, any other class 1; never their own). The net sees the
  real image, the synthesis of the altered map, the altered map, the entropy and distance of
  the segmentation net on the real image and the perceptual difference of real vs. synthesis.
  Label: 1 on exactly the swapped pixels, 255 where the ground truth is ignored, else 0.
- ``void``: the inference maps (predicted semantic map, its entropy and distance, its
  synthesis and the perceptual difference). Label: 1 on void objects (labelIds 'static',
  'dynamic'), 255 on other ignored pixels, else 0.

Examples are written to ``CACHE/<key>/`` as ``.npz`` files, ``key`` hashing the segmentation,
synthesis and perceptual weights, the sizes, the data and the generator settings; a frame's
``.json`` (written last) marks it done, so later runs and epochs only read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID, NUM_CLASSES
from synboost_ros.data.cityscapes import CityscapesSample, thing_instances, void_object_mask
from synboost_ros.files import atomic_write, atomic_write_text
from synboost_ros.model import SynBoostModel, state_dict_sha256
from synboost_ros.preprocessing import resize_labels, to_uint8_image
from synboost_ros.training.inference_maps import MapExtractor
from synboost_ros.training.options import SOURCES
from synboost_ros.training.runtime import Runtime

CACHE_VERSION = 1
UNCERTAINTY_SCALE = 65535.0  # uncertainty maps are stored as uint16 fractions of [0, 1]


def _class_weights() -> np.ndarray:
    weights = np.ones(NUM_CLASSES, dtype=np.float64)
    for name, weight in (("car", 7.0), ("road", 3.0), ("person", 3.0)):
        weights[CLASS_NAMES.index(name)] = weight
    return weights


SWAP_CLASS_WEIGHTS = _class_weights()  # relative chance of each train id as the new class


@dataclass(frozen=True)
class GeneratorSettings:
    """What the generator produces; part of the cache key."""

    sources: tuple[str, ...] = SOURCES
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown or not self.sources:
            raise ValueError(f"sources must be a non-empty subset of {SOURCES}, got {self.sources}")


@dataclass
class DissimilarityExample:
    """One training example at the synthesis size."""

    image: np.ndarray  # HxWx3 uint8
    synthesized: np.ndarray  # HxWx3 uint8
    semantic: np.ndarray  # HxW uint8 (255: no class)
    uncertainty: np.ndarray  # 3xHxW float32 in [0, 1]: entropy, perceptual, distance
    label: np.ndarray  # HxW uint8: 0 normal, 1 anomaly, 255 ignore


def swap_target(current: int, rng: np.random.Generator) -> int:
    """A new train id for an instance of class ``current``, never ``current`` itself."""
    weights = SWAP_CLASS_WEIGHTS.copy()
    weights[current] = 0.0
    return int(rng.choice(NUM_CLASSES, p=weights / weights.sum()))


def swap_instances(
    train_ids: np.ndarray,
    label_ids: np.ndarray,
    instance_ids: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Relabel 1..n randomly chosen thing instances; return (altered map, swapped mask)."""
    altered = train_ids.copy()
    swapped = np.zeros(train_ids.shape, dtype=bool)
    instances = thing_instances(instance_ids, label_ids)
    if not instances:
        return altered, swapped
    count = int(rng.integers(1, len(instances) + 1))
    for position in sorted(rng.choice(len(instances), size=count, replace=False).tolist()):
        instance = instances[position]
        altered[instance.mask] = swap_target(instance.train_id, rng)
        swapped |= instance.mask
    return altered, swapped


def anomaly_label(train_ids: np.ndarray, anomalous: np.ndarray) -> np.ndarray:
    """1 where ``anomalous``, else 255 where the ground truth is ignored, else 0."""
    label = np.where(train_ids == IGNORE_ID, IGNORE_ID, 0).astype(np.uint8)
    label[anomalous] = 1
    return label


def generate_examples(
    sample: CityscapesSample,
    extractor: MapExtractor,
    settings: GeneratorSettings,
    rng: np.random.Generator,
) -> dict[str, DissimilarityExample]:
    """The examples of one Cityscapes-style sample, keyed by source (``swap`` may be absent)."""
    size = extractor.config.synthesis_size
    image = extractor.synthesis_input(sample.image)
    train_ids = resize_labels(sample.train_ids, size)
    label_ids = resize_labels(sample.label_ids, size)
    predicted = extractor.segment(sample.image)
    examples = {}

    def example(semantic: np.ndarray, anomalous: np.ndarray) -> DissimilarityExample:
        synthesized = extractor.synthesize(semantic)
        perceptual = extractor.perceptual_difference(image, synthesized)
        return DissimilarityExample(
            image=image,
            synthesized=to_uint8_image(synthesized),
            semantic=semantic.astype(np.uint8),
            uncertainty=np.stack([predicted.entropy, perceptual, predicted.distance]),
            label=anomaly_label(train_ids, anomalous),
        )

    if "swap" in settings.sources:
        instance_ids = resize_labels(sample.instance_ids, size)
        altered, swapped = swap_instances(train_ids, label_ids, instance_ids, rng)
        if swapped.any():
            examples["swap"] = example(altered, swapped)
    if "void" in settings.sources:
        examples["void"] = example(predicted.semantic, void_object_mask(label_ids))
    return examples


def data_fingerprint(root: str | Path, split: str) -> str:
    """sha256 over path, size and modification time of the files of a Cityscapes split."""
    root = Path(root).resolve()
    digest = hashlib.sha256(f"{root}|{split}".encode())
    for folder in (root / "leftImg8bit" / split, root / "gtFine" / split):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(
                    f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}|".encode()
                )
    return digest.hexdigest()


def cache_key(model: SynBoostModel, settings: GeneratorSettings, data_id: str) -> str:
    """Hex key of everything the cached examples depend on."""
    record = {
        "version": CACHE_VERSION,
        "segmentation": state_dict_sha256(model.segmentation),
        "synthesis": state_dict_sha256(model.synthesis),
        "perceptual": state_dict_sha256(model.perceptual),
        "segmentation_size": list(model.config.segmentation_size),
        "synthesis_size": list(model.config.synthesis_size),
        "segmentation_normalization": asdict(model.config.segmentation_normalization),
        "perceptual_normalization": asdict(model.config.perceptual_normalization),
        "settings": asdict(settings),
        "data": data_id,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:24]


def save_example(path: Path, example: DissimilarityExample) -> None:
    """Write one example as an .npz file (atomically)."""
    quantized = np.round(np.clip(example.uncertainty, 0.0, 1.0) * UNCERTAINTY_SCALE)
    arrays = {
        "image": example.image,
        "synthesized": example.synthesized,
        "semantic": example.semantic,
        "uncertainty": quantized.astype(np.uint16),
        "label": example.label,
    }
    # A regenerable cache of thousands of files: not fsynced.
    atomic_write(path, lambda tmp: _write_npz(tmp, arrays), durable=False)


def load_example(path: Path) -> DissimilarityExample:
    """Read an example written by ``save_example``."""
    with np.load(path, allow_pickle=False) as content:
        return DissimilarityExample(
            image=content["image"],
            synthesized=content["synthesized"],
            semantic=content["semantic"],
            uncertainty=content["uncertainty"].astype(np.float32) / UNCERTAINTY_SCALE,
            label=content["label"],
        )


@dataclass(frozen=True)
class CachedExample:
    """Where an example lies and how many normal / anomaly pixels it has."""

    path: Path
    source: str
    normal_pixels: int
    anomaly_pixels: int


class DissimilarityCache:
    """Folder of generated examples for one cache key."""

    def __init__(self, root: str | Path, key: str) -> None:
        self.folder = Path(root) / key

    def _record_path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.json"

    def build(
        self,
        samples: Sequence[CityscapesSample],
        extractor: MapExtractor,
        settings: GeneratorSettings,
        runtime: Runtime,
    ) -> list[CachedExample]:
        """Generate missing frames (split across ranks), then list every frame's examples."""
        self.folder.mkdir(parents=True, exist_ok=True)
        mine = range(runtime.rank, len(samples), runtime.world_size)
        for index in tqdm(mine, desc="dissimilarity data", unit="img", disable=not runtime.is_main):
            if not self._record_path(index).is_file():
                self._generate(index, samples[index], extractor, settings)
        runtime.barrier()
        return self.examples(samples)

    def _generate(
        self,
        index: int,
        sample: CityscapesSample,
        extractor: MapExtractor,
        settings: GeneratorSettings,
    ) -> None:
        rng = np.random.default_rng((settings.seed, index))
        entries = []
        for source, example in generate_examples(sample, extractor, settings, rng).items():
            path = self.folder / f"{index:06d}_{sample.stem}_{source}.npz"
            save_example(path, example)
            entries.append(
                {
                    "file": path.name,
                    "source": source,
                    "normal_pixels": int((example.label == 0).sum()),
                    "anomaly_pixels": int((example.label == 1).sum()),
                }
            )
        text = json.dumps({"stem": sample.stem, "examples": entries}, indent=1)
        atomic_write_text(self._record_path(index), text, durable=False)

    def examples(self, samples: Sequence[CityscapesSample]) -> list[CachedExample]:
        """All cached examples of ``samples``, in sample order."""
        records = sorted(self.folder.glob("*.json"))
        if len(records) != len(samples):
            raise RuntimeError(
                f"dissimilarity cache {self.folder} holds {len(records)} frames, "
                f"expected {len(samples)}"
            )
        found = []
        for record in records:
            for entry in json.loads(record.read_text(encoding="utf-8"))["examples"]:
                found.append(
                    CachedExample(
                        self.folder / entry["file"],
                        entry["source"],
                        entry["normal_pixels"],
                        entry["anomaly_pixels"],
                    )
                )
        return found


def label_histogram(examples: Sequence[CachedExample]) -> np.ndarray:
    """Pixel counts of (normal, anomaly) over all examples."""
    normal = sum(example.normal_pixels for example in examples)
    anomaly = sum(example.anomaly_pixels for example in examples)
    return np.array([normal, anomaly], dtype=np.float64)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # A stream, not a path: savez would append ".npz" to the temporary file's name.
    with path.open("wb") as stream:
        np.savez_compressed(stream, **arrays)
