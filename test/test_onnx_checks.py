"""The TensorRT readiness checks on our exported graphs and on a deliberately bad graph."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from synboost_ros.backends.onnx_checks import TENSORRT_OPS, check_graph_for_tensorrt  # noqa: E402
from synboost_ros.export import cached_onnx  # noqa: E402


@pytest.fixture(scope="module")
def edge_graphs(edge_random_model):
    """The edge preset's three stage graphs (export_onnx through the session's cache)."""
    return cached_onnx(edge_random_model)


def test_edge_graphs_have_no_problems(edge_graphs):
    for stage, path in edge_graphs.items():
        assert check_graph_for_tensorrt(path) == [], stage


def test_edge_graph_ops_are_all_on_the_list(edge_graphs):
    used = {n.op_type for p in edge_graphs.values() for n in onnx.load(str(p)).graph.node}
    assert used <= TENSORRT_OPS
    assert {"Conv", "Resize", "TopK", "InstanceNormalization"} <= used


def _save(tmp_path, nodes, inputs, outputs, name="bad.onnx"):
    graph = helper.make_graph(nodes, "bad", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_bad_graph_is_flagged(tmp_path):
    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 8]),
        helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8]),
    ]
    outputs = [
        helper.make_tensor_value_info("unique", TensorProto.INT64, [None]),
        helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, 3, 3, 3]),
    ]
    pool = helper.make_node(
        "ATen", ["image"], ["pooled"], domain="org.pytorch.aten", operator="adaptive_avg_pool2d"
    )
    nodes = [helper.make_node("Unique", ["ids"], ["unique"], name="u0"), pool]
    problems = check_graph_for_tensorrt(_save(tmp_path, nodes, inputs, outputs))
    text = "\n".join(problems)
    assert "graph input 'ids' is int64" in text
    assert "graph input 'ids' has dynamic dims ['batch', 8]" in text
    assert "graph output 'unique' is int64" in text
    assert "graph output 'unique' has dynamic dims" in text
    assert "op Unique is not in the TensorRT op list (1 node(s), first 'u0')" in text
    assert "adaptive pooling remnant" in text
    assert "'image'" not in text and "'pooled'" not in text  # fixed float32 I/O is fine
    assert len(problems) == 6


def test_custom_domain_op_is_flagged(tmp_path):
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Relu", ["x"], ["y"], domain="com.example", name="r")
    path = _save(tmp_path, [node], [value], [out])
    assert check_graph_for_tensorrt(path) == [
        "op com.example::Relu is not in the TensorRT op list (1 node(s), first 'r')"
    ]


def test_missing_and_corrupt_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX graph not found"):
        check_graph_for_tensorrt(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00\xffnot a protobuf" * 10)
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        check_graph_for_tensorrt(corrupt)
