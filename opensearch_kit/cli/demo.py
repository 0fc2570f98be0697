"""`opensearch-kit demo`."""

from __future__ import annotations

from pathlib import Path

import click

from opensearch_kit.cli.common import emit, json_option


@click.command()
@click.option("--sparse-model", help="Sparse encoder (local path or hub id); default: the tiny SPLADE from PyPI.")
@click.option(
    "--dense-model",
    help="Dense embedder (local path, hub id, or multilingual-e5-small: Korean + English, rebuilt from PyPI wheels); "
    "default: all-MiniLM-L6-v2 from PyPI.",
)
@click.option("--reranker", help="Optional reranker (local path or hub id); adds hybrid+rerank.")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where exports are kept between runs (default: the user cache).",
)
@json_option
@click.pass_context
def demo(ctx, sparse_model, dense_model, reranker, work_dir, as_json) -> None:
    """The whole path on small real models: local cluster, export + deploy, index + ingest, hybrid search, eval."""
    from opensearch_kit.cluster import default_cache
    from opensearch_kit.demo import DemoModels, run_demo

    models = DemoModels(sparse_model, dense_model, reranker)
    emit(run_demo(ctx.obj, models, work_dir or default_cache() / "demo", progress=not as_json), as_json)
