"""Smaller ONNX exports: dynamic int8 quantization and fp16 weight storage."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import torch

from opensearch_kit.export.graph import save_onnx


def quantize_int8(src: Path, dst: Path, external: bool = False, per_channel: bool = False) -> None:
    """Dynamic (weights int8, activations quantized at run time) quantization with onnxruntime; `external` for
    graphs whose weights live in an external data file; `per_channel` scales each weight column on its own (dense
    embeddings keep cosine ~0.98 with it, ~0.83 without, on all-MiniLM-L6-v2)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # reduce_range: 7-bit weights, so the u8 x s8 products cannot saturate the 16-bit sums of AVX2 CPUs without
    # VNNI (the graph may run on any data node); on such CPUs full-range int8 loses up to 10 % cosine
    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel, reduce_range=True,
        use_external_data_format=external,
    )  # fmt: skip


def int8_in_place(model_file: Path, per_channel: bool = False) -> list[Path]:
    """Quantize a checked fp32 export in place: the int8 graph takes the fp32 one's file name (the fp32 graph is
    deleted once quantized); the files to zip (the graph, and its external data when too big for one protobuf)."""
    fp32_file = model_file.with_name(model_file.name.replace(".onnx", ".fp32.onnx"))
    fp32_files = save_onnx(onnx.load(str(model_file)), fp32_file)
    for stale in (model_file, model_file.with_name(model_file.name + ".data")):
        stale.unlink(missing_ok=True)
    quantize_int8(fp32_file, model_file, len(fp32_files) > 1, per_channel)
    for stale in fp32_files:
        stale.unlink()
    return save_onnx(onnx.load(str(model_file)), model_file)


def int8_from_fp16_storage(model_file: Path) -> list[Path]:
    """Quantize, in place, the MatMul weights of a graph written with `fp16_storage` (fp16 weight -> Cast ->
    Transpose -> MatMul) as `quantize_int8(per_channel=True)` quantizes an fp32 graph's, one weight at a time read
    from the graph's files: the peak is the int8 graph, never the fp16 one whole nor an fp32 copy. Other weights
    (the embedding table) keep their fp16 storage. The files to zip."""
    from onnx import helper, numpy_helper
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    model = onnx.load(str(model_file), load_external_data=False)
    graph, base = model.graph, str(model_file.parent)
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    matched = {}  # id(MatMul) -> weight name; the Cast and Transpose before it are dropped
    dropped = set()
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT16 or len(init.dims) != 2:
            continue
        cast = _only_consumer(consumers, init.name, "Cast")
        transpose = cast and _only_consumer(consumers, cast.output[0], "Transpose")
        matmul = transpose and _only_consumer(consumers, transpose.output[0], "MatMul")
        if matmul and list(transpose.attribute[0].ints) == [1, 0] and matmul.input[1] == transpose.output[0]:
            matched[id(matmul)] = init.name
            dropped |= {id(cast), id(transpose)}
    weights = set(matched.values())
    initializers = []
    for init in graph.initializer:
        if init.name not in weights:
            if uses_external_data(init):  # kept as it is: its bytes move into the graph, saved again below
                load_external_data_for_tensor(init, base)
                init.data_location = onnx.TensorProto.DEFAULT
                del init.external_data[:]
            initializers.append(init)
            continue
        weight = numpy_helper.to_array(init, base).astype(np.float32).T  # [in, out], as MatMul takes it
        scale, quantized = int8_per_column(weight)
        initializers += [
            numpy_helper.from_array(quantized, f"{init.name}_quantized"),
            numpy_helper.from_array(scale, f"{init.name}_scale"),
            numpy_helper.from_array(np.zeros_like(quantized[0]), f"{init.name}_zero_point"),
        ]
    nodes, activations = [], set()
    for node in graph.node:
        if id(node) in dropped:
            continue
        if id(node) not in matched:
            nodes.append(node)
            continue
        x, w, out = node.input[0], matched[id(node)], node.output[0]
        if x not in activations:  # one DynamicQuantizeLinear per activation, shared by its MatMuls
            activations.add(x)
            nodes.append(
                helper.make_node("DynamicQuantizeLinear", [x], [f"{x}_quantized", f"{x}_scale", f"{x}_zero_point"])
            )
        nodes += [
            helper.make_node("Mul", [f"{x}_scale", f"{w}_scale"], [f"{out}_scale"]),
            helper.make_node(
                "MatMulInteger",
                [f"{x}_quantized", f"{w}_quantized", f"{x}_zero_point", f"{w}_zero_point"],
                [f"{out}_int32"],
            ),
            helper.make_node("Cast", [f"{out}_int32"], [f"{out}_float"], to=onnx.TensorProto.FLOAT),
            helper.make_node("Mul", [f"{out}_float", f"{out}_scale"], [out]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return save_onnx(model, model_file)


def _only_consumer(consumers: dict, name: str, op_type: str):
    """The one node reading `name`, when there is exactly one and it is an `op_type`; else None."""
    found = consumers[name]
    return found[0] if len(found) == 1 and found[0].op_type == op_type else None


def int8_per_column(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale per column, int8 weight) as onnxruntime's dynamic quantizer makes them for per-channel, reduce-range
    int8: symmetric, zero point 0, values in [-64, 64], scale = max |column| / 64 (1 for an all-zero column)."""
    scale = (np.abs(weight).max(axis=0) * 2 / np.float32(128)).astype(np.float32)
    scale[scale == 0] = 1
    return scale, np.clip(np.round(weight / scale), -64, 64).astype(np.int8)


def fp16_weights(model_file: Path, min_elements: int = 4096) -> list[Path]:
    """Store the large float weights as fp16, each cast back to fp32 in the graph (ONNX Runtime folds the casts
    when it loads the model): half the file size, fp32 compute on any CPU. Returns the files to zip."""
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_file))
    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) < min_elements:
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{name}.fp16"))
        casts.append(helper.make_node("Cast", [f"{name}.fp16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return save_onnx(model, model_file)


class ToFloat(torch.nn.Module):
    """The parametrization `fp16_storage` puts on a weight: its fp16 storage, cast to fp32 where it is used."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.float()


def fp16_storage(module: torch.nn.Module, min_elements: int = 4096) -> None:
    """Store `module`'s large float weights as fp16, in place, each cast to fp32 where the forward uses it: an
    ONNX export then holds fp16 initializers and Cast nodes (what `fp16_weights` makes of an fp32 graph) with
    no fp32 copy of the weights in memory. A weight shared by several modules stays one fp16 tensor."""
    from torch.nn.utils import parametrize

    halves: dict[int, torch.nn.Parameter] = {}
    for owner in list(module.modules()):
        for name, param in list(owner.named_parameters(recurse=False)):
            if param.dtype != torch.float32 or param.numel() < min_elements:
                continue
            half = halves.setdefault(id(param), torch.nn.Parameter(param.detach().half(), requires_grad=False))
            setattr(owner, name, half)
            parametrize.register_parametrization(owner, name, ToFloat(), unsafe=True)
