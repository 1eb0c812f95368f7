"""PP-OCRv4's recogniser with its elementwise steps folded (plate_reader.ppocr_graph) computes
what the model as shipped computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plate_reader.ocr import find_ppocr_model, load_ppocr_model
from plate_reader.ppocr_graph import simplify


@pytest.fixture(scope="module", name="model_path")
def model_path_fixture() -> Path:
    path = find_ppocr_model()
    if path is None:
        pytest.skip("PP-OCR model not installed (rapidocr-onnxruntime --no-deps)")
    return path


def _session(model: str | bytes) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def test_every_block_of_the_recogniser_is_folded(model_path: Path) -> None:
    import onnx

    model = onnx.load(str(model_path))
    before = {op: sum(n.op_type == op for n in model.graph.node) for op in ("Clip", "Div")}
    folded = simplify(model)
    onnx.checker.check_model(model)
    assert folded.hard_swish == 28 and folded.affine_after_conv == 28
    assert folded.affine_before_conv == 12
    after = {op: sum(n.op_type == op for n in model.graph.node) for op in ("Clip", "Div")}
    assert after["Clip"] == before["Clip"] - 28 and after["Div"] == before["Div"] - 28


@pytest.mark.parametrize("width", [64, 216, 328])
def test_the_folded_model_reads_as_the_shipped_one(model_path: Path, width: int) -> None:
    """Per-position probabilities of every class equal to float rounding, on noise and on a
    plate-like input, at the widths the reader feeds it."""
    shipped, folded = _session(str(model_path)), _session(load_ppocr_model(model_path))
    name = shipped.get_inputs()[0].name  # type: ignore[attr-defined]
    rng = np.random.default_rng(width)
    noise = rng.random((1, 3, 40, width), dtype=np.float32) * 2 - 1
    bars = np.ones((1, 3, 40, width), np.float32)
    bars[:, :, 8:32, 6 : width - 6 : 9] = -1.0  # dark strokes on a light ground
    for x in (noise, bars):
        a = shipped.run(None, {name: x})[0]  # type: ignore[attr-defined]
        b = folded.run(None, {name: x})[0]  # type: ignore[attr-defined]
        assert a.shape == b.shape
        assert float(np.abs(a - b).max()) < 1e-4
        assert (a.argmax(axis=-1) == b.argmax(axis=-1)).all()


def test_a_pattern_used_elsewhere_is_left_as_it_is() -> None:
    """A convolution whose output another node reads too keeps its affine: folding it would
    change what that node sees."""
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 1, 1, 1], [1.0, 2.0])
    s = helper.make_tensor("s", TensorProto.FLOAT, [], [3.0])
    c = helper.make_tensor("c", TensorProto.FLOAT, [], [0.5])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"]),
        helper.make_node("Mul", ["y", "s"], ["ys"]),
        helper.make_node("Add", ["ys", "c"], ["z"]),
        helper.make_node("Relu", ["y"], ["r"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("r", TensorProto.FLOAT, None),
        ],
        initializer=[w, s, c],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    assert simplify(model).affine_after_conv == 0
    assert [n.op_type for n in model.graph.node] == ["Conv", "Mul", "Add", "Relu"]
    nodes[3].input[0] = "x"  # now the convolution's output feeds the affine alone
    model = helper.make_model(
        helper.make_graph(nodes, "g", graph.input, graph.output, initializer=[w, s, c]),
        opset_imports=[helper.make_opsetid("", 12)],
    )
    assert simplify(model).affine_after_conv == 1
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu"]
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    (z, _) = _session(model.SerializeToString()).run(None, {"x": x})  # type: ignore[attr-defined]
    expected = np.concatenate([x * 1.0, x * 2.0], axis=1) * 3.0 + 0.5
    assert np.allclose(z, expected)
