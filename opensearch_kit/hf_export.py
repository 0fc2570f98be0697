"""What every export kind shares: loading a Hugging Face checkpoint, tracing to TorchScript, exporting to ONNX
in the form ml-commons' runtimes load, and checking up front that the artifact can fit ML Commons' limits."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from opensearch_kit.errors import KitError
from opensearch_kit.ml_commons import MAX_UPLOAD_BYTES

# ML Commons' tokenizer (DJL) truncates at min(tokenizer.json max_length, 512).
SERVER_MAX_LENGTH = 512
# ONNX Runtime 1.16 (ml-commons' pin) runs opsets up to 19.
ONNX_OPSET = 17
# A single protobuf (.onnx file) cannot exceed 2 GiB; larger graphs keep their weights in an external data file.
ONNX_PROTOBUF_LIMIT = 2 * 1024**3
DTYPES = ("fp32", "fp16")


def check_options(fmt: str, quantize: str | None, dtype: str = "fp32") -> None:
    """Reject format / quantization / dtype combinations no export supports."""
    from opensearch_kit.artifact import FORMATS

    if fmt not in FORMATS:
        raise KitError(f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if dtype not in DTYPES:
        raise KitError(f"unknown dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
    if quantize and fmt != "onnx":
        raise KitError("--quantize int8 applies to ONNX exports", "add --format onnx")
    if quantize and dtype != "fp32":
        raise KitError("--quantize int8 starts from the fp32 graph", "drop --dtype fp16 when quantizing")


WEIGHT_FILES = ["*.safetensors", "*.bin", "*.pt", "*.pth", "*.onnx", "*.h5", "*.msgpack", "*.gguf"]


def model_files_dir(model_path: str) -> Path:
    """A local folder with the checkpoint's small files (configs, tokenizer, sentence-transformers modules): the
    path itself, or for a hub id its snapshot without weights (those come later, after the size check)."""
    if Path(model_path).is_dir():
        return Path(model_path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_path, ignore_patterns=WEIGHT_FILES))
    except Exception as e:
        raise KitError(
            f"{model_path} is neither a local folder nor a model the Hugging Face hub could give: {e}",
            "pass the path of a local model folder, or check the model id and hub access",
        ) from e


def load_tokenizer(model_path: str, trust_remote_code: bool = False, subfolder: str = ""):
    """The model's fast tokenizer; ML Commons needs its tokenizer.json."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code, subfolder=subfolder)
    if not getattr(tokenizer, "is_fast", False):
        raise KitError(f"{model_path} has no fast tokenizer (tokenizer.json)", "ML Commons needs tokenizer.json")
    return tokenizer


def require_trust(model_path: str, config, trust_remote_code: bool) -> bool:
    """True when the checkpoint maps an Auto class to its own code; a KitError unless the user trusts it."""
    custom = bool(getattr(config, "auto_map", None))
    if custom and not trust_remote_code:
        raise KitError(f"{model_path} ships its own model code", "pass --trust-remote-code if you trust it")
    return custom


def truncation_length(config, tokenizer, max_length: int | None, model_limit: int | None = None) -> int:
    """The length the server truncates to: the smallest of the user's, the model's and the server's limits."""
    limits = [
        max_length,
        model_limit,
        getattr(config, "max_position_embeddings", None),
        tokenizer.model_max_length,
        SERVER_MAX_LENGTH,
    ]
    return int(min(v for v in limits if v))


def make_scriptable_names(model: torch.nn.Module) -> None:
    """TorchScript names module types by their Python module path; remote code lives under paths such as
    `transformers_modules.<dir>.<hash>` whose segments may start with a digit or hold dashes, which a saved
    TorchScript file cannot load. Give such types a valid path."""
    for module_type in {type(m) for m in model.modules()}:
        parts = module_type.__module__.split(".")
        if not all(p.isidentifier() for p in parts):
            module_type.__module__ = ".".join(p if p.isidentifier() else "m_" + re.sub(r"\W", "_", p) for p in parts)


def write_torchscript(wrapper: torch.nn.Module, args: tuple, path: Path) -> None:
    """Trace `wrapper` (in eval mode) on `args` and save it."""
    with torch.no_grad():
        traced = torch.jit.trace(wrapper.eval(), args, strict=False, check_trace=False)
    traced.save(str(path))


def model_file_path(out_dir: Path, name: str, fmt: str) -> Path:
    from opensearch_kit.artifact import FORMATS

    return out_dir / f"{name}{FORMATS[fmt][1]}"


def write_graph(
    fmt: str, wrapper: torch.nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str]
) -> list[Path]:
    """TorchScript traced on `args`, or ONNX with these input / output names; the files written."""
    if fmt == "torchscript":
        write_torchscript(wrapper, args, path)
        return [path]
    return write_onnx(wrapper, args, path, input_names, output_names)


def write_onnx(
    wrapper: torch.nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str]
) -> list[Path]:
    """Export with dynamic batch and sequence axes; returns the files written (the graph, and its external data
    file when the weights pass the 2 GiB protobuf limit).

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


def write_reduced(
    fmt: str, quantize: str | None, wrapper: torch.nn.Module, args: tuple, model_file: Path
) -> list[Path]:
    """Replace a checked fp32 export by its smaller form (TorchScript: re-traced with fp16 weights and compute;
    ONNX: per-channel dynamic int8, or fp16 weight storage); the files to zip."""
    if fmt == "torchscript":
        wrapper.half()
        try:
            write_torchscript(wrapper, args, model_file)
        finally:
            wrapper.float()
        return [model_file]
    from opensearch_kit.quantize import fp16_weights, int8_in_place

    return int8_in_place(model_file, per_channel=True) if quantize == "int8" else fp16_weights(model_file)


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
