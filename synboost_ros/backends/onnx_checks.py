"""Static checks that an exported ONNX graph will build as a fixed-shape TensorRT 10 engine."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

# ONNX ops (default domain) that TensorRT 10's ONNX parser supports and that models of this
# kind use. A superset of what our three stage graphs contain; anything else is reported so
# it gets checked against TensorRT's operator table before it ships.
TENSORRT_OPS: frozenset[str] = frozenset(
    {
        "Abs",
        "Add",
        "And",
        "ArgMax",
        "ArgMin",
        "AveragePool",
        "BatchNormalization",
        "Cast",
        "Ceil",
        "Clip",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "ConvTranspose",
        "Cos",
        "Div",
        "Elu",
        "Equal",
        "Erf",
        "Exp",
        "Expand",
        "Flatten",
        "Floor",
        "Gather",
        "Gemm",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Greater",
        "HardSigmoid",
        "Identity",
        "InstanceNormalization",
        "LayerNormalization",
        "LeakyRelu",
        "Less",
        "Log",
        "MatMul",
        "Max",
        "MaxPool",
        "Min",
        "Mul",
        "Neg",
        "Not",
        "Or",
        "Pad",
        "Pow",
        "PRelu",
        "Range",
        "ReduceMax",
        "ReduceMean",
        "ReduceMin",
        "ReduceSum",
        "Relu",
        "Reshape",
        "Resize",
        "Selu",
        "Shape",
        "Sigmoid",
        "Sin",
        "Slice",
        "Softmax",
        "Softplus",
        "Split",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Sum",
        "Tanh",
        "Tile",
        "TopK",
        "Transpose",
        "Unsqueeze",
        "Where",
    }
)

# Graph input/output element types TensorRT binds directly (onnx.TensorProto values by name).
TENSORRT_IO_TYPES: frozenset[str] = frozenset(
    {"FLOAT", "FLOAT16", "BFLOAT16", "INT32", "INT8", "UINT8", "BOOL"}
)

_DEFAULT_DOMAINS = ("", "ai.onnx")


def check_graph_for_tensorrt(path: str | os.PathLike) -> list[str]:
    """Problems that would stop or slow a fixed-shape TensorRT build; empty when none."""
    model = _load(Path(path))
    return [*_io_problems(model.graph), *_node_problems(model.graph)]


def _load(path: Path) -> onnx.ModelProto:
    try:
        import onnx
    except ImportError as error:
        raise ImportError("checking ONNX graphs needs onnx: pip install onnx") from error
    if not path.is_file():
        raise FileNotFoundError(f"ONNX graph not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError, ValueError, ... for bad files
        raise ValueError(f"{path} is not a readable ONNX model: {error}") from error


def _io_problems(graph: onnx.GraphProto) -> list[str]:
    from onnx import TensorProto

    problems = []
    for role, values in (("input", graph.input), ("output", graph.output)):
        for value in values:
            tensor = value.type.tensor_type
            type_name = TensorProto.DataType.Name(tensor.elem_type)
            where = f"graph {role} {value.name!r}"
            if type_name == "INT64":
                problems.append(f"{where} is int64: export it as int32 for TensorRT")
            elif type_name not in TENSORRT_IO_TYPES:
                problems.append(f"{where} has type {type_name}, which TensorRT cannot bind")
            if not tensor.HasField("shape"):
                problems.append(f"{where} has no shape: export with fixed shapes")
                continue
            dims = [
                d.dim_param or (d.dim_value if d.dim_value > 0 else "?") for d in tensor.shape.dim
            ]
            if any(not isinstance(d, int) for d in dims):
                problems.append(f"{where} has dynamic dims {dims}: export with fixed shapes")
    return problems


def _node_problems(graph: onnx.GraphProto) -> list[str]:
    unsupported: dict[str, list[str]] = defaultdict(list)
    problems = []
    for node in graph.node:
        if _is_adaptive_pooling(node):
            problems.append(
                f"node {node.name!r} ({node.op_type}) is an adaptive pooling remnant: "
                "use fixed pooling windows"
            )
        elif node.domain not in _DEFAULT_DOMAINS:
            unsupported[f"{node.domain}::{node.op_type}"].append(node.name)
        elif node.op_type not in TENSORRT_OPS:
            unsupported[node.op_type].append(node.name)
    for op, names in sorted(unsupported.items()):
        problems.append(
            f"op {op} is not in the TensorRT op list ({len(names)} node(s), first {names[0]!r})"
        )
    return problems


def _is_adaptive_pooling(node: onnx.NodeProto) -> bool:
    texts = [node.op_type]
    texts += [a.s.decode(errors="replace") for a in node.attribute if a.name == "operator"]
    return any("adaptive" in text.lower() for text in texts)
