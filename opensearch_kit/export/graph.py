"""Writing graphs: TorchScript traced for the server's libtorch, ONNX in the form ml-commons' ONNX Runtime loads,
their reduced-precision forms, and the size check that runs before any of it."""

from __future__ import annotations

from pathlib import Path

import torch

from opensearch_kit.errors import KitError
from opensearch_kit.opensearch.ml import MAX_UPLOAD_BYTES

# ONNX Runtime 1.16 (ml-commons' pin) runs opsets up to 19.
ONNX_OPSET = 17
# A single protobuf (.onnx file) cannot exceed 2 GiB; larger graphs keep their weights in an external data file.
ONNX_PROTOBUF_LIMIT = 2 * 1024**3


def write_torchscript(wrapper: torch.nn.Module, args: tuple, path: Path) -> None:
    """Trace `wrapper` (in eval mode) on `args` and save it."""
    with torch.no_grad():
        traced = torch.jit.trace(wrapper.eval(), args, strict=False, check_trace=False)
    traced.save(str(path))


def write_graph(
    fmt: str,
    wrapper: torch.nn.Module,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    fold_constants: bool = True,
) -> list[Path]:
    """TorchScript traced on `args`, or ONNX with these input / output names; the files written."""
    if fmt == "torchscript":
        write_torchscript(wrapper, args, path)
        return [path]
    return write_onnx(wrapper, args, path, input_names, output_names, fold_constants)


def write_onnx(
    wrapper: torch.nn.Module,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    fold_constants: bool = True,
) -> list[Path]:
    """Export with dynamic batch and sequence axes; returns the files written (the graph, and its external data
    file when the weights pass the 2 GiB protobuf limit). `fold_constants=False` keeps fp16-stored weights'
    casts in the graph (folding them would store the weights in fp32 again).

    DJL feeds ml-commons' inputs by name and insists that the graph declares every one of them, so an input the
    graph ignores (the exporter drops unused inputs) is declared again as an unused int64 [batch, sequence] input.
    """
    import tempfile

    import onnx

    dynamic = {name: {0: "batch", 1: "sequence"} for name in input_names}
    dynamic.update({name: {0: "batch"} for name in output_names})
    # Graphs over 2 GiB come out as one file per tensor: export into a scratch folder, then save tidily.
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch, torch.no_grad():
        raw = Path(scratch) / path.name
        torch.onnx.export(
            wrapper.eval(),
            args,
            str(raw),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic,
            opset_version=ONNX_OPSET,
            dynamo=False,
            do_constant_folding=fold_constants,
        )
        model = onnx.load(str(raw))
    present = {i.name for i in model.graph.input}
    for name in input_names:
        if name not in present:
            model.graph.input.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, ["batch", "sequence"])
            )
    return save_onnx(model, path)


def save_onnx(model, path: Path, external: bool | None = None) -> list[Path]:
    """Save a graph as one .onnx file, or (`external`, by default when the weights pass the protobuf limit) as
    the .onnx plus one `<file>.data` holding every weight; returns the files written."""
    import onnx

    if external is None:
        external = sum(t.ByteSize() for t in model.graph.initializer) > ONNX_PROTOBUF_LIMIT * 0.95
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    if not external:
        onnx.save_model(model, str(path))
        return [path]
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
    return [path, data]


BYTES_PER_PARAM = {"fp32": 4, "fp16": 2}


def estimated_bytes(module: torch.nn.Module, dtype: str, quantize: str | None) -> int:
    """Model file size from the parameter count: int8 (dynamic) stores linear weights in one byte and keeps
    embeddings and norms in fp32."""
    params = {id(p): p for p in module.parameters()}.values()
    total = sum(p.numel() for p in params)
    if quantize != "int8":
        return total * BYTES_PER_PARAM[dtype]
    linear = sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))
    return linear + (total - linear) * 4


def check_size(module: torch.nn.Module, fmt: str, dtype: str, quantize: str | None) -> int:
    """Refuse, before any export work, an artifact ML Commons would refuse; the estimated size otherwise."""
    size = estimated_bytes(module, dtype, quantize)
    if size <= MAX_UPLOAD_BYTES:
        return size
    fits = [
        label
        for label, (d, q) in {
            "--dtype fp16": ("fp16", None),
            "--format onnx --quantize int8": ("fp32", "int8"),
        }.items()
        if estimated_bytes(module, d, q) <= MAX_UPLOAD_BYTES
    ]
    chosen = f"{fmt} {dtype}" + (" int8" if quantize else "")
    raise KitError(
        f"the {chosen} model would be about {size / 1024**3:.1f} GiB; ML Commons accepts at most 4 GiB",
        f"export with {' or '.join(fits)}" if fits else "no export of this model fits ML Commons: use a smaller one",
    )
