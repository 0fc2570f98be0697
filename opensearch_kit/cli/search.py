"""`opensearch-kit search` and `opensearch-kit eval`."""

from __future__ import annotations

from pathlib import Path

import click

from opensearch_kit.cli.common import csv_of, emit, json_option, spec_of, transport
from opensearch_kit.index.options import parse_weights


def encoder_options(command):
    """--sparse-encoder / --dense-encoder / --encoding: where queries are encoded."""
    options = [
        click.option(
            "--sparse-encoder",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="ONNX sparse export directory for local query encoding.",
        ),
        click.option(
            "--dense-encoder",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Exported dense model directory for local query embedding.",
        ),
        click.option(
            "--encoding",
            type=click.Choice(["auto", "local", "cluster"]),
            default="auto",
            show_default=True,
            help="Encode queries with the index's in-cluster models, or locally (auto: in-cluster when recorded).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def filter_options(command):
    """--filter JSON / --where SHORTHAND (both repeatable, all must hold), gathered into one `filter` argument."""
    from opensearch_kit.search.filters import parse_filter

    def gather(ctx, param, value):
        found = ctx.meta.setdefault("opensearch_kit.filter", [])
        found.extend(parse_filter(v) if param.name == "filter_json" else v for v in value)
        return tuple(found)

    options = [
        click.option(
            "--filter",
            "filter_json",
            multiple=True,
            callback=gather,
            expose_value=False,
            help='An OpenSearch query clause every hit must pass, e.g. \'{"term": {"lang": "ko"}}\' (repeatable).',
        ),
        click.option(
            "--where",
            multiple=True,
            callback=gather,
            expose_value=False,
            help="Shorthand filter: 'lang=ko', 'lang!=ko', 'year>=2020', 'tag in a,b' (repeatable).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def seismic_options(command):
    """--top-n / --heap-factor / --seismic-k: SEISMIC query knobs (sparse_vector indexes); each one not given comes
    from the index's tuned setting (`tune --grid seismic --apply`), else the kit default."""
    from opensearch_kit.index.options import HEAP_FACTOR, TOP_N

    options = [
        click.option("--top-n", type=click.IntRange(1),
                     help=f"SEISMIC: query tokens that pick the posting lists [default: tuned, else {TOP_N}]."),
        click.option("--heap-factor", type=click.FloatRange(0, min_open=True),
                     help=f"SEISMIC: > 1 visits more clusters (recall up, speed down) [default: tuned, else "
                          f"{HEAP_FACTOR:g}]."),
        click.option("--seismic-k", type=click.IntRange(1),
                     help="SEISMIC: candidates per segment [default: tuned, else the hits retrieved]."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def gathered_filter() -> tuple:
    """The --filter / --where clauses of the running command, in the order given."""
    return tuple(click.get_current_context().meta.get("opensearch_kit.filter", ()))


def seismic_query(options: dict):
    """The SeismicQuery of the --top-n / --heap-factor / --seismic-k values popped from `options`."""
    from opensearch_kit.search.query import SeismicQuery

    return SeismicQuery(options.pop("top_n"), options.pop("heap_factor"), options.pop("seismic_k"))


weights_option = click.option(
    "--weights", callback=spec_of(parse_weights), help="Hybrid weights in sub-query order, summing to 1, e.g. 0.3,0.7."
)


@click.command("search")
@click.argument("index")
@click.argument("text")
@click.option("--mode", type=click.Choice(["bm25", "sparse", "dense", "hybrid"]), default="hybrid", show_default=True)
@click.option("--k", "--size", "k", default=10, show_default=True, type=click.IntRange(1), help="Hits to show.")
@click.option("--from", "offset", default=0, show_default=True, type=click.IntRange(0), help="Hits to skip (paging).")
@click.option("--hybrid", callback=csv_of(str), help="Hybrid sub-queries, e.g. bm25,sparse (default: all).")
@weights_option
@click.option("--rrf", is_flag=True, help="Combine hybrid sub-queries by reciprocal rank fusion.")
@click.option("--rerank", is_flag=True, help="Rerank with the index's rerank pipeline.")
@click.option("--rerank-depth", type=click.IntRange(1), help="Hits the reranker sees (default: --k).")
@click.option("--two-phase", is_flag=True, help="Sparse mode: prune the query, then rescore the top hits in full.")
@click.option("--explain", is_flag=True, help="Show each hybrid signal's raw score per hit.")
@click.option("--source-fields", "source", callback=csv_of(str), help="Fields of each hit's _source to return.")
@click.option("--highlight", is_flag=True, help="Show each hit's passage best matching the query's words.")
@click.option(
    "--fusion",
    type=click.Choice(["auto", "client", "server"]),
    default="auto",
    show_default=True,
    help="Where hybrid sub-queries are combined: client (each sub-query alone in _msearch, bm25 ahead of the "
    "encoding; fused here as the pipeline would: the same hits, faster), server (the hybrid query), auto (client "
    "where it can).",
)
@filter_options
@seismic_options
@encoder_options
@json_option
@click.pass_context
def search(ctx, index, text, sparse_encoder, dense_encoder, encoding, fusion, as_json, **options):
    """Search INDEX for TEXT in one retrieval mode."""
    from opensearch_kit.search import QueryOptions, Searcher

    options["hybrid"] = options["hybrid"] or ()
    options["filter"] = gathered_filter()
    options["seismic"] = seismic_query(options)
    encoders = {"sparse_encoder": sparse_encoder, "dense_encoder": dense_encoder}  # export dirs, bound by the Searcher
    searcher = Searcher(transport(ctx), index, encoding=encoding, fusion=fusion, **encoders)
    emit(searcher.search(text, QueryOptions(**options)), as_json)


@click.command("eval")
@click.argument("index")
@click.argument("beir_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--modes",
    default="bm25,sparse,dense,hybrid,hybrid+rerank",
    show_default=True,
    callback=csv_of(str),
    help="Comma-separated modes; flags join with +: hybrid+rrf, hybrid+rerank, sparse+two-phase.",
)
@click.option("--k", default=100, show_default=True, type=click.IntRange(1), help="Hits retrieved per query.")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to judge with.")
@click.option("--hybrid", callback=csv_of(str), help="Sub-queries of hybrid modes (default: all).")
@weights_option
@click.option("--max-queries", type=click.IntRange(1), help="Evaluate only the first N judged queries.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report, runs included.")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG chart (needs [eval]).")
@filter_options
@seismic_options
@encoder_options
@json_option
@click.pass_context
def evaluate(ctx, index, beir_dir, sparse_encoder, dense_encoder, as_json, **options):
    """Evaluate retrieval modes on a BEIR data set: NDCG@1/3/5/10, Recall@10/100, MRR@10, p50/p95 latency."""
    from opensearch_kit.evaluate import EvalReport
    from opensearch_kit.evaluate import evaluate as run

    options["hybrid"] = options["hybrid"] or ()
    options["filter"] = gathered_filter()
    options["seismic"] = seismic_query(options)
    report: EvalReport = run(
        transport(ctx),
        index,
        beir_dir,
        progress=not as_json,
        **options,
        sparse_encoder=sparse_encoder,
        dense_encoder=dense_encoder,
    )
    emit(report, as_json)
