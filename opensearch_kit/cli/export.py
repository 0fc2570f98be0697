"""`opensearch-kit export sparse | sparse-tokenizer | dense | reranker`."""

from __future__ import annotations

from pathlib import Path

import click

from opensearch_kit.cli.common import emit, json_option


def model_export_options(command):
    """The options every model export shares."""
    options = [
        click.argument("model"),
        click.option(
            "--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default="torchscript", show_default=True
        ),
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True),
        click.option("--name", help="Artifact name (default: <source>-<kind>-<format>-<fingerprint[:8]>)."),
        click.option(
            "--quantize",
            type=click.Choice(["int8"]),
            help="Dynamic per-channel int8 (ONNX only), with a quality report.",
        ),
        click.option(
            "--dtype",
            type=click.Choice(["fp32", "fp16"]),
            default="fp32",
            show_default=True,
            help="fp16: TorchScript computes in fp16 (the server's CPU libtorch runs it); ONNX stores fp16 weights "
            "and computes in fp32. Halves the zip (ML Commons takes at most 4 GiB).",
        ),
        click.option("--max-length", type=int, help="Truncation length (default: the model's, at most 512)."),
        click.option("--trust-remote-code", is_flag=True, help="Allow models that ship their own modeling code."),
        json_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_export(kind: str, model: str, out_dir: Path, fmt: str, as_json: bool, **options) -> None:
    from opensearch_kit.export import export_model

    emit(export_model(kind, model, out_dir, format=fmt, progress=not as_json, **options), as_json)


@click.group()
def export() -> None:
    """Export Hugging Face models to the form ML Commons runs, with a parity check."""


@export.command("sparse")
@model_export_options
@click.option(
    "--prune-ratio",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Zero weights below this fraction of each text's largest weight, in the graph.",
)
def export_sparse(model, fmt, out_dir, as_json, **options):
    """Export a SPLADE-style sparse encoder (MODEL: local path or hub id) as a SPARSE_ENCODING zip."""
    run_export("sparse", model, out_dir, fmt, as_json, **options)


@export.command("dense")
@model_export_options
@click.option(
    "--pooling",
    type=click.Choice(["mean", "cls", "max", "mean-sqrt-len", "weighted-mean", "last-token"]),
    help="How token outputs become the embedding (default: from the sentence-transformers config; required for "
    "plain Hugging Face encoders; decoder embedders such as Qwen3-Embedding use last-token).",
)
@click.option("--normalize/--no-normalize", default=None, help="L2-normalise embeddings (default: the model's config).")
@click.option(
    "--query-prompt",
    help="Text put before queries, e.g. $'Instruct: ...\\nQuery:' in bash (default: the sentence-transformers 'query' "
    "prompt); registered as the model's query_prefix.",
)
def export_dense(model, fmt, out_dir, as_json, **options):
    """Export a dense embedder (MODEL: local path or hub id) as a TEXT_EMBEDDING zip; pooling and normalisation
    run inside the graph."""
    run_export("dense", model, out_dir, fmt, as_json, **options)


@export.command("reranker")
@model_export_options
@click.option(
    "--instruction",
    help="Task instruction of LLM yes/no rerankers (default: 'Given a web search query, retrieve relevant "
    "passages that answer the query').",
)
def export_reranker(model, fmt, out_dir, as_json, **options):
    """Export a cross-encoder or a Qwen3-Reranker-style yes/no LLM (MODEL: local path or hub id) as a
    TEXT_SIMILARITY zip for the rerank search processor."""
    run_export("reranker", model, out_dir, fmt, as_json, **options)


@export.command("sparse-tokenizer")
@click.argument("model")
@click.option(
    "--idf",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="idf.json, or a JSONL / BEIR corpus to compute it from.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--name", help="Artifact name (default: <source>-sparse-tokenizer-<fingerprint[:8]>).")
@json_option
def export_sparse_tokenizer(model, idf, out_dir, name, as_json):
    """Build the inference-free query side: a SPARSE_TOKENIZE zip with tokenizer.json and idf.json."""
    from opensearch_kit.export import export_model

    emit(export_model("sparse-tokenizer", model, out_dir, idf=idf, name=name), as_json)
