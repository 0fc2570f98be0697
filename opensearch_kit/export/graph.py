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
    dynamic = {name: {0: "batch", 1: "sequence"} for name in input_names}
    dynamic.update({name: {0: "batch"} for name in output_names})
    try:
        return export_onnx(wrapper, args, path, input_names, output_names, dynamic, fold_constants)
    finally:
        drop_exporter_state()


def export_onnx(
    wrapper: torch.nn.Module,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic: dict,
    fold_constants: bool,
) -> list[Path]:
    """`write_onnx` less the clean-up. Graphs over 2 GiB come out of torch as one file per tensor: they are
    exported into a scratch folder, then those files are gathered into one data file without loading the
    weights (onnx.load and save would hold them twice more)."""
    import tempfile

    import onnx
    from onnx import external_data_helper

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
        model = onnx.load(str(raw), load_external_data=False)
        present = {i.name for i in model.graph.input}
        for name in input_names:
            if name not in present:
                model.graph.input.append(
                    onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, ["batch", "sequence"])
                )
        tensors = external_data_helper._get_all_tensors(model)  # initializers and node attributes' tensors
        external = [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]
        if not external:
            return save_onnx(model, path)
        data = path.with_name(path.name + ".data")
        gather_external_data(external, Path(scratch), data)
        onnx.save_model(model, str(path))
        return [path, data]


def drop_exporter_state() -> None:
    """torch's TorchScript-based ONNX exporter keeps the constant values of its last graph (for a 1.7B model,
    4 GB) in a process-wide map that only its next export clears: export a one-weight graph to drop them."""
    import io

    with torch.no_grad():
        torch.onnx.export(torch.nn.Linear(1, 1), (torch.zeros(1, 1),), io.BytesIO(), dynamo=False)


def gather_external_data(tensors: list, folder: Path, data: Path, chunk: int = 16 * 1024**2) -> None:
    """Copy the external data of `tensors` (stored in files under `folder`) into the one file `data`, streaming,
    and point each tensor at its place there."""
    offset = 0
    with data.open("wb") as out:
        for tensor in tensors:
            info = {entry.key: entry.value for entry in tensor.external_data}
            left = int(info["length"]) if "length" in info else None
            with (folder / info["location"]).open("rb") as source:
                source.seek(int(info.get("offset", 0)))
                while left is None or left > 0:
                    block = source.read(chunk if left is None else min(chunk, left))
                    if not block:
                        break
                    out.write(block)
                    left = None if left is None else left - len(block)
            length = out.tell() - offset
            del tensor.external_data[:]
            for key, value in (("location", data.name), ("offset", str(offset)), ("length", str(length))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            offset += length


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
