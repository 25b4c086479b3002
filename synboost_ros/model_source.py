"""The model a pipeline runs: its configuration, and its stage graphs or torch networks.

``ModelSource.open`` reads only the weights manifest, without torch. The onnxruntime and
TensorRT backends ask for ``onnx_graphs``: the graphs kept next to the weights
(``<weights>/onnx/``, shipped with the default weights) when they verify and match the weights
and the sizes asked for, so that no torch is imported; else the graphs exported once into the
cache, which needs torch. The torch backend asks for ``model()``, the torch networks with the
weights loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from synboost_ros.config import Size, with_sizes
from synboost_ros.graphs import WEIGHTS_GRAPHS_DIR, graph_paths, graph_source, source_problem
from synboost_ros.manifest import read_manifest, resolve_manifest_path
from synboost_ros.shipped import weights_path
from synboost_ros.torch_missing import TORCH_INSTALL, TorchMissingError, torch_missing

if TYPE_CHECKING:
    from synboost_ros.config import PipelineConfig
    from synboost_ros.model import SynBoostModel

logger = logging.getLogger(__name__)


class ModelSource:
    """A model's configuration, with its torch networks built on first use."""

    def __init__(
        self,
        config: PipelineConfig,
        load: Callable[[], SynBoostModel],
        graphs_folder: Path | None = None,
        weights_identity: dict | None = None,
    ) -> None:
        self.config = config
        self._load = load
        self._model: SynBoostModel | None = None
        # Graphs kept next to the weights (None for random weights or a model in memory),
        # valid when exported from weights of this identity for this configuration.
        self.graphs_folder = graphs_folder
        self.graphs_source = graph_source(config, weights_identity)

    @classmethod
    def open(
        cls,
        preset: str,
        weights: str | Path | None = None,
        random_weights: bool = False,
        segmentation_size: Size | None = None,
        synthesis_size: Size | None = None,
    ) -> ModelSource:
        """The model of ``model_loading.load_or_random_model`` with these arguments; only
        random weights are built here (they need torch), named weights load on first use."""

        def load() -> SynBoostModel:
            from synboost_ros.model_loading import load_or_random_model

            return load_or_random_model(
                preset, weights, random_weights, segmentation_size, synthesis_size
            )

        if random_weights:
            return cls.of_model(_torch_model(load, "drawing random weights"))
        manifest_path = resolve_manifest_path(weights_path(preset, weights))
        manifest = read_manifest(manifest_path, expected_preset=preset)
        config = with_sizes(manifest.config, segmentation_size, synthesis_size)
        graphs = manifest_path.parent / WEIGHTS_GRAPHS_DIR
        return cls(config, load, graphs, manifest.weights_identity())

    @classmethod
    def of_model(cls, model: SynBoostModel) -> ModelSource:
        """A model already built (random weights, or trained in memory)."""
        return cls(model.config, lambda: model)

    def model(self) -> SynBoostModel:
        """The torch networks with the weights loaded (``TorchMissingError`` without torch)."""
        if self._model is None:
            self._model = _torch_model(self._load, "loading the weights into the torch networks")
        return self._model

    def onnx_graphs(self, backend: str) -> dict[str, Path]:
        """Verified stage graphs for ``backend`` (named in the error without torch): those
        kept with the weights when they match, else the export cache's (needs torch)."""
        problem = "do not exist for random weights or a model in memory"
        if self.graphs_folder is not None:
            problem = source_problem(self.graphs_folder, self.graphs_source)
            if problem is None:
                logger.info("running the ONNX graphs kept with the weights: %s", self.graphs_folder)
                return graph_paths(self.graphs_folder)
        where = self.graphs_folder or "the graphs kept with the weights"
        try:
            model = self.model()
        except TorchMissingError:
            raise TorchMissingError(
                f"without PyTorch, backend {backend} runs only the ONNX graphs kept with the "
                f"weights, and {where} {problem}: export them where PyTorch is installed "
                "(synboost export onnx --weights W --out W/onnx, with the same sizes) or "
                f"install it: {TORCH_INSTALL}"
            ) from None
        logger.info("ONNX graphs %s %s; using the export cache", where, problem)
        from synboost_ros.export import cached_onnx

        return cached_onnx(model)


def _torch_model(load: Callable[[], SynBoostModel], what: str) -> SynBoostModel:
    """``load()``, with a missing torch said in one line."""
    try:
        return load()
    except ImportError as error:
        missing = torch_missing(error, what)
        if missing is None:
            raise
        raise missing from None
