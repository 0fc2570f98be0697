"""The one export pipeline every model kind runs, with per-kind hooks (`Exporter` subclasses):

options check -> size check on the weight-less architecture -> load -> the server's tokenizer.json -> the eager
original's reference outputs on the sample texts -> TorchScript or ONNX graph -> parity of the saved graph against
the reference (batch 1 and one padded batch) -> fp16 / int8 form and its quality against the reference -> the
final graph's outputs, recorded as what the cluster must return -> zip, register body and report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from opensearch_kit.artifact import FORMATS, Artifact, default_name, write_artifact, write_report
from opensearch_kit.errors import KitError
from opensearch_kit.export.graph import check_size, estimated_bytes, write_graph, write_torchscript
from opensearch_kit.export.load import model_shape, save_tokenizer
from opensearch_kit.export.quantize import fp16_storage, fp16_weights, int8_from_fp16_storage, int8_in_place
from opensearch_kit.export.resources import check_disk, check_memory, release_memory
from opensearch_kit.progress import progress_bar
from opensearch_kit.verify.compare import batch_runs, one_at_a_time

DTYPES = ("fp32", "fp16")
QUANTIZATIONS = ("int8",)
Runner = Callable[[list, int], np.ndarray]
# fp16 exports of models with more fp32 weights than this write no fp32 graph (see run_export): 1.7B -> <= 10 GB
LEAN_ABOVE_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ExportOptions:
    """How to export. The first group applies to every kind; the others to one kind each."""

    format: str = "torchscript"
    dtype: str = "fp32"
    quantize: str | None = None
    max_length: int | None = None
    trust_remote_code: bool = False
    name: str | None = None
    tolerance: float | None = None  # parity bound override (the kind's default when None)
    prune_ratio: float = 0.0  # sparse: zero weights below this fraction of each text's largest
    pooling: str | None = None  # dense: mean | cls | max | mean-sqrt-len | weighted-mean | last-token
    normalize: bool | None = None  # dense: L2-normalise (default: the model's config)
    query_prompt: str | None = None  # dense: put before queries (default: the sentence-transformers prompt)
    instruction: str | None = None  # reranker: the yes/no LLM's task instruction
    idf: Path | None = None  # sparse-tokenizer: idf.json, or a corpus to compute it from

    @property
    def variant(self) -> str:
        """fp32, fp16 or int8: the precision of the final graph."""
        return self.quantize or self.dtype

    def check(self) -> None:
        """Refuse format / quantization / dtype combinations no export supports."""
        if self.format not in FORMATS:
            raise KitError(f"unknown format {self.format!r}", f"use one of {', '.join(FORMATS)}")
        if self.dtype not in DTYPES:
            raise KitError(f"unknown dtype {self.dtype!r}", f"use one of {', '.join(DTYPES)}")
        if self.quantize and self.quantize not in QUANTIZATIONS:
            raise KitError(f"unknown quantization {self.quantize!r}", "use --quantize int8")
        if self.quantize and self.format != "onnx":
            raise KitError("--quantize int8 applies to ONNX exports", "add --format onnx")
        if self.quantize and self.dtype != "fp32":
            raise KitError("--quantize int8 starts from the fp32 graph", "drop --dtype fp16 when quantizing")

    @classmethod
    def of(cls, **values) -> ExportOptions:
        """Options from keyword arguments; an unknown one is a KitError naming the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise KitError(f"unknown export option(s) {', '.join(unknown)}", f"use {', '.join(sorted(known))}")
        return cls(**values)


class Exporter:
    """One model kind's hooks into the pipeline. `load` sets `model`, `tokenizer` and `max_length`; the other
    hooks build the graph's module, the sample items and their reference outputs, run a saved graph, compare."""

    kind: str
    description: str = "model"

    def __init__(self, source: str, options: ExportOptions):
        self.source = source
        self.options = options
        self.model: torch.nn.Module
        self.tokenizer = None
        self.max_length = 0

    def load(self, meta: bool = False) -> None:
        """Load the checkpoint (`meta`: the architecture only, no weights, to size it)."""
        raise NotImplementedError

    def module(self) -> torch.nn.Module:
        """The module whose outputs the graph computes (pooling, heads and masks included)."""
        raise NotImplementedError

    def server_tokenizer(self):
        """What ML Commons tokenizes with (saved as tokenizer.json): by default the model's own."""
        return self.tokenizer

    def samples(self) -> list:
        """The items (texts or (query, document) pairs) parity and the in-cluster check run on."""
        raise NotImplementedError

    def reference(self, module: torch.nn.Module, items: list) -> np.ndarray:
        """The eager original's outputs, one item at a time (no padding)."""
        raise NotImplementedError

    def graph(self, fmt: str, module: torch.nn.Module) -> tuple[torch.nn.Module, tuple, list[str], list[str]]:
        """(wrapper, trace args, input names, output names) for `fmt`."""
        raise NotImplementedError

    def runner(self, fmt: str, model_file: Path, tokenizer_file: Path) -> Runner:
        """run(items, batch_size) -> outputs through the saved graph, tokenized with the exported tokenizer.json."""
        raise NotImplementedError

    def compare(self, name: str, reference: np.ndarray, runs: dict[int, np.ndarray], tolerance: float | None = None):
        """A parity result (with ok, as_dict(), summary()) of the saved graph's runs against the reference, within
        `tolerance` (by default the user's --tolerance, else the kind's fp32 bound)."""
        raise NotImplementedError

    def quality(self, reference: np.ndarray, reduced: np.ndarray) -> dict:
        """How a reduced-precision graph's outputs compare with the fp32 original's."""
        raise NotImplementedError

    def expected(self, items: list, outputs: np.ndarray, run: Runner) -> dict:
        """What the cluster must return for the sample items: the final graph's outputs."""
        raise NotImplementedError

    def cluster_bounds(self, variant: str) -> dict:
        """How close the cluster must come to `expected` for a graph of this precision."""
        raise NotImplementedError

    def details(self) -> dict:
        """Kind-specific report fields."""
        return {}

    def model_config(self) -> dict | None:
        """The register body's model_config, if the kind has one."""
        return None

    def notes(self) -> list[str]:
        """Lines for people about this export (shown after the parity figures)."""
        return []

    def release(self) -> None:
        """Drop the loaded model once its graph is written (the hooks after it use no weights)."""
        self.model = None


def run_export(exporter: Exporter, out_dir: Path, *, fingerprint: str | None = None, progress: bool = True) -> Artifact:
    """Export, zip, write the register body and report (with the export's `fingerprint`, when given); a KitError
    with the figures when parity fails, or before loading any weight when the machine lacks the memory.

    A reduced-precision (fp16, int8) export of a model whose fp32 weights pass `LEAN_ABOVE_BYTES` is
    memory-bounded: it writes no fp32 graph (the reference outputs come from the eager fp32 model, which is then
    turned fp16 in place, written, and freed before the graph is quantized, loaded and checked)."""
    options = exporter.options
    options.check()
    fmt = options.format
    name = options.name or default_name(exporter.source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter.load(meta=True)
    estimated = check_size(exporter.module(), fmt, options.dtype, options.quantize)
    fp32_bytes = estimated_bytes(exporter.module(), "fp32", None)
    lean_possible = fp32_bytes > LEAN_ABOVE_BYTES
    lean = options.variant != "fp32" and lean_possible
    check_memory(exporter.source, fp32_bytes, f"{fmt} {options.variant}", lean, lean_possible)
    check_disk(out_dir, estimated)
    steps = ["load weights", "reference outputs", f"write {fmt}", "parity", "expected outputs", "zip"]
    with progress_bar(len(steps), desc=f"export {name}", unit="step", enabled=progress) as bar:

        def step(done: str) -> None:
            bar.set_description(f"export {name} ({done} done)", refresh=False)
            bar.update(1)

        def runs(what: str, total: int):
            """A bar counting a step's runs over the sample items ("parity: 3/9")."""
            return progress_bar(total, desc=f"export {name}: {what}", unit="run", enabled=progress)

        exporter.load()
        step(steps[0])
        module = exporter.module().eval()
        tokenizer_file = out_dir / "tokenizer.json"
        save_tokenizer(exporter.server_tokenizer(), exporter.max_length, tokenizer_file)
        items = exporter.samples()
        with runs(steps[1], len(items)) as counted:
            reference = one_at_a_time(lambda one, _: exporter.reference(module, one), items, counted.update)
        step(steps[1])
        model_file = out_dir / f"{name}{FORMATS[fmt][1]}"
        report: dict = {
            "kind": exporter.kind,
            "model": exporter.source,
            "format": fmt,
            "dtype": options.dtype,
            "quantize": options.quantize,
            "model_file": model_file.name,
            "max_length": exporter.max_length,
            "estimated_model_bytes": estimated,
            "memory_bounded": lean,
            "shape": model_shape(exporter.model.config),
            **exporter.details(),
        }
        if lean:
            members = write_lean(exporter, module, fmt, model_file)
            del module  # the last reference to the torch model: freed before its graph is loaded
            release_memory()
            run = exporter.runner(fmt, model_file, tokenizer_file)
            step(steps[2])
            # No fp32 graph: the parity check holds the fp16 graph's batched outputs to its one-at-a-time ones,
            # at the precision the cluster is held to; reduced_quality compares the final graph with the fp32
            # original. (An int8 graph is checked in its fp16 form: dynamic int8 quantizes each batch's
            # activations with one scale, so batching moves its outputs by design.)
            with runs(steps[3], len(items) + 1) as counted:
                batched = batch_runs(run, items, counted.update)
            outputs = batched[1]  # the one-at-a-time runs, as ML Commons runs a sample text
            parity = exporter.compare(f"{fmt} fp16 batched", outputs, batched, tolerance_of(exporter, "fp16"))
        else:
            wrapper, args, input_names, output_names = exporter.graph(fmt, module)
            members = write_graph(fmt, wrapper, args, model_file, input_names, output_names)
            step(steps[2])
            run = exporter.runner(fmt, model_file, tokenizer_file)
            with runs(steps[3], len(items) + 1) as counted:
                parity = exporter.compare(f"{fmt} fp32", reference, batch_runs(run, items, counted.update))
        step(steps[3])
        report["parity"] = parity.as_dict()
        if not parity.ok:
            path = write_report(out_dir, name, report)
            raise KitError(
                f"parity check failed: {parity.summary()}",
                f"the exported graph differs from the original; details in {path}",
            )
        variant = options.variant
        if lean and options.quantize:
            del run  # the fp16 graph's runtime, before its weights are quantized
            release_memory()
            members = int8_from_fp16_storage(model_file)
            run = exporter.runner(fmt, model_file, tokenizer_file)
        if variant != "fp32" and not lean:
            report["fp32_model_bytes"] = sum(f.stat().st_size for f in members)
            del run  # the fp32 graph's runtime, before the reduced graph is written and loaded
            members = write_reduced(fmt, options.quantize, wrapper, args, model_file)
            del wrapper, module
            exporter.release()
            run = exporter.runner(fmt, model_file, tokenizer_file)
        if not lean or options.quantize:
            with runs(steps[4], len(items)) as counted:
                outputs = one_at_a_time(run, items, counted.update)
        if variant != "fp32":
            report["reduced_quality"] = {"name": f"{fmt} {variant}", **exporter.quality(reference, outputs)}
        report["cluster_bounds"] = exporter.cluster_bounds(variant)
        report["expected"] = exporter.expected(items, outputs, run)
        del run
        step(steps[4])
        report["notes"] = exporter.notes() + (
            [f"memory-bounded export: no fp32 graph was written; the {options.variant} graph's quality against the "
             "fp32 original is reduced_quality"] if lean else []
        )  # fmt: skip
        artifact = write_artifact(
            out_dir,
            name,
            members=members,
            tokenizer_file=tokenizer_file,
            kind=exporter.kind,
            fmt=fmt,
            description=f"{exporter.description} exported by opensearch-kit from {exporter.source}",
            report=report,
            model_config=exporter.model_config(),
            fingerprint=fingerprint,
        )
        step(steps[5])
    return artifact


def tolerance_of(exporter: Exporter, variant: str) -> float:
    """The kind's parity tolerance equal to its cluster bound for `variant` (dense: 1 - the minimum cosine)."""
    bounds = exporter.cluster_bounds(variant)
    return bounds["max_abs_diff"] if "max_abs_diff" in bounds else 1 - bounds["min_cosine"]


def write_lean(exporter: Exporter, module: torch.nn.Module, fmt: str, model_file: Path) -> list[Path]:
    """Write the fp16 graph straight from the fp32 model turned fp16 in place (TorchScript: fp16 weights and
    compute; ONNX: fp16 weights cast to fp32 in the graph) and drop the exporter's hold on the model, so that once
    the caller drops `module` no torch weights are left: never the torch model, an fp32 graph and a runtime
    session at once. The files to zip."""
    if fmt == "onnx":
        fp16_storage(module)
    else:
        module.half()
    wrapper, args, input_names, output_names = exporter.graph(fmt, module)
    members = write_graph(fmt, wrapper, args, model_file, input_names, output_names, fold_constants=False)
    exporter.release()
    return members


def write_reduced(fmt: str, quantize: str | None, wrapper: torch.nn.Module, args: tuple, model_file: Path) -> list:
    """Replace a checked fp32 graph by its smaller form (TorchScript: `wrapper` turned fp16 for good and re-traced,
    fp16 weights and compute; ONNX: per-channel dynamic int8, or fp16 weight storage); the files to zip."""
    if fmt == "torchscript":
        wrapper.half()  # in place, for good: the fp32 weights are not needed again
        write_torchscript(wrapper, args, model_file)
        return [model_file]
    return int8_in_place(model_file, per_channel=True) if quantize == "int8" else fp16_weights(model_file)


def torchscript_runner(model_file: Path, tokenizer_file: Path, call) -> Runner:
    """run(items, batch_size) -> [n, ...] through a saved TorchScript module; items are texts or (query, doc)
    pairs, tokenized with the exported tokenizer.json; `call(module, feeds)` runs one batch of torch tensors
    {input_ids, attention_mask, token_type_ids}."""
    from tokenizers import Tokenizer

    from opensearch_kit.runtime.onnx import run_padded

    module = torch.jit.load(str(model_file))
    tokenizer = Tokenizer.from_file(str(tokenizer_file))

    def run_batch(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return call(module, {k: torch.from_numpy(v) for k, v in feeds.items()}).float().numpy()

    def run(items: list, batch_size: int) -> np.ndarray:
        return np.stack(run_padded(tokenizer.encode_batch(items), batch_size, run_batch))

    return run
