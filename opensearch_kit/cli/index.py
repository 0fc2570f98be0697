"""`opensearch-kit index create | info | delete`."""

from __future__ import annotations

from pathlib import Path

import click

from opensearch_kit.cli.common import emit, json_option, spec_of, transport
from opensearch_kit.index.options import Chunking, Prune, parse_weights


@click.group("index")
def index_group() -> None:
    """Hybrid indexes: text, sparse and dense vector fields, their ingest and search pipelines."""


@index_group.command("create")
@click.argument("index")
@click.option("--sparse-model", required=True, help="Id of the deployed SPARSE_ENCODING model.")
@click.option("--dense-model", help="Id of a deployed TEXT_EMBEDDING model (adds a Lucene HNSW knn_vector field).")
@click.option(
    "--reranker-model", "--rerank-model", help="Id of a deployed TEXT_SIMILARITY model (adds the rerank pipeline)."
)
@click.option("--language", type=click.Choice(["en", "ko"]), default="en", show_default=True, help="Text analyzer.")
@click.option(
    "--chunking",
    callback=spec_of(Chunking.parse),
    help="Chunk texts in the ingest pipeline: TOKEN_LIMIT[:OVERLAP_RATE], e.g. 384:0.1.",
)
@click.option(
    "--sparse-type",
    type=click.Choice(["rank_features", "sparse_vector"]),
    default="rank_features",
    show_default=True,
    help="sparse_vector: SEISMIC approximate search (neural-search 3.3+).",
)
@click.option(
    "--prune",
    callback=spec_of(Prune.parse),
    help="Prune document vectors at ingest: TYPE:RATIO (top_k, max_ratio, alpha_mass, abs_value).",
)
@click.option("--weights", callback=spec_of(parse_weights), help="Hybrid sub-query weights summing to 1, e.g. 0.3,0.7.")
@click.option("--shards", default=1, show_default=True, type=click.IntRange(1))
@click.option(
    "--field",
    "fields",
    multiple=True,
    help="A key of the source lines indexed as a typed top-level field, NAME:TYPE (keyword, text, integer, long, "
    "float, double, boolean, date), e.g. --field lang:keyword --field year:integer (repeatable).",
)
@click.option(
    "--sparse-encoder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The sparse model's export directory, to read its vocabulary size (checked for sparse_vector).",
)
@json_option
@click.pass_context
def index_create(ctx, index, sparse_model, as_json, **options):
    """Create INDEX and its pipelines for the given models (their ids, kinds and dimensions read from the cluster)."""
    from opensearch_kit.index import create_index
    from opensearch_kit.index.fields import parse_fields

    options["fields"] = parse_fields(options["fields"])
    emit(create_index(transport(ctx), index, sparse_model, **options), as_json)


@index_group.command("delete")
@click.argument("index")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def index_delete(ctx, index, yes, as_json):
    """Delete INDEX (made by opensearch-kit) and its pipelines; the models stay."""
    from opensearch_kit.index import delete_index

    if not yes:
        click.confirm(f"delete index {index} and its pipelines?", abort=True)
    emit(delete_index(transport(ctx), index), as_json)


@index_group.command("info")
@click.argument("index")
@json_option
@click.pass_context
def index_info(ctx, index, as_json):
    """What INDEX was built with (its _meta), its document count, pipelines and models."""
    from opensearch_kit.index import index_info as info

    emit(info(transport(ctx), index), as_json)
