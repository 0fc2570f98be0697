"""int8 from an fp16-stored graph (the memory-bounded path) is the int8 graph onnxruntime's own quantizer makes
of the same weights in fp32: the same int8 weights and scales, the same outputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from opensearch_kit.export.graph import save_onnx
from opensearch_kit.export.quantize import int8_from_fp16_storage, quantize_int8


def two_linears(weights: list[np.ndarray], fp16_storage: bool) -> onnx.ModelProto:
    """x @ W0.T and x @ W1.T, as torch exports Linear layers: with `fp16_storage`, fp16 W -> Cast -> Transpose ->
    MatMul (what `fp16_storage` makes); else the fp32 W.T as a MatMul initializer (a folded fp32 export)."""
    nodes, inits = [], []
    for n, w in enumerate(weights):
        if fp16_storage:
            inits.append(numpy_helper.from_array(w.astype(np.float16), f"w{n}"))
            nodes += [
                helper.make_node("Cast", [f"w{n}"], [f"w{n}_f"], to=TensorProto.FLOAT),
                helper.make_node("Transpose", [f"w{n}_f"], [f"w{n}_t"], perm=[1, 0]),
            ]
        else:
            inits.append(numpy_helper.from_array(w.astype(np.float16).astype(np.float32).T.copy(), f"w{n}_t"))
        nodes.append(helper.make_node("MatMul", ["x", f"w{n}_t"], [f"y{n}"]))
    rows = weights[0].shape[1]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", rows])],
        [helper.make_tensor_value_info(f"y{n}", TensorProto.FLOAT, ["b", w.shape[0]]) for n, w in enumerate(weights)],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("external", [False, True])
def test_int8_from_fp16_storage_is_onnxruntimes_per_channel_int8(tmp_path, external):
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(48, 64)).astype(np.float32), rng.normal(size=(32, 64)).astype(np.float32)]
    weights[1][5] = 0  # an all-zero output channel
    ours, fp32, theirs = tmp_path / "ours.onnx", tmp_path / "fp32.onnx", tmp_path / "theirs.onnx"
    save_onnx(two_linears(weights, fp16_storage=True), ours, external=external)  # big graphs keep weights apart
    onnx.save(two_linears(weights, fp16_storage=False), fp32)
    int8_from_fp16_storage(ours)
    quantize_int8(fp32, theirs, per_channel=True)
    mine, reference = onnx.load(ours).graph, onnx.load(theirs).graph
    assert {n.op_type for n in mine.node} == {n.op_type for n in reference.node}
    assert sum(n.op_type == "DynamicQuantizeLinear" for n in mine.node) == 1  # shared by both MatMuls
    for n in range(2):
        for suffix in ("quantized", "scale", "zero_point"):
            got = numpy_helper.to_array(next(i for i in mine.initializer if i.name == f"w{n}_{suffix}"))
            want = numpy_helper.to_array(next(i for i in reference.initializer if i.name == f"w{n}_t_{suffix}"))
            assert got.dtype == want.dtype and np.array_equal(got, want), (n, suffix)
    x = rng.normal(size=(5, 64)).astype(np.float32)
    run = [onnxruntime.InferenceSession(str(f)).run(None, {"x": x}) for f in (ours, theirs)]
    for got, want in zip(*run, strict=True):
        np.testing.assert_array_equal(got, want)
