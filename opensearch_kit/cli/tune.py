"""`opensearch-kit tune`."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from opensearch_kit.cli.common import csv_of, emit, json_option, transport
from opensearch_kit.cli.search import encoder_options, filter_options, gathered_filter
from opensearch_kit.errors import KitError

# the options of one grid only; the others (split, metric, k, filters, sparse encoding, apply, out) serve both
GRID_OPTIONS = {
    "fusion": (
        "dev_split", "dev_fraction", "seed", "rank_constants", "hybrid", "folds", "per_query", "check_queries", "chart",
        "dense_encoder",
    ),
    "seismic": ("top_ns", "heap_factors", "recall_target"),
}  # fmt: skip


@click.command("tune")
@click.argument("index")
@click.argument("beir_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--grid",
    type=click.Choice(["fusion", "seismic"]),
    default="fusion",
    show_default=True,
    help="fusion: the hybrid fusion; seismic: SEISMIC query knobs (top_n x heap_factor) of a sparse_vector index.",
)
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv: the judged queries.")
@click.option("--dev-split", help="qrels/<NAME>.tsv holds the dev queries (the others of --split are held out).")
@click.option(
    "--dev-fraction",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Without --dev-split: the share of --split's queries to tune on.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the --dev-fraction draw.")
@click.option("--metric", default="ndcg@10", show_default=True, help="What to maximise: ndcg@K, recall@K, mrr@10.")
@click.option("--k", default=100, show_default=True, type=click.IntRange(1), help="Hits per sub-query and run.")
@click.option(
    "--rank-constants",
    default="1,5,10,20,60",
    show_default=True,
    callback=csv_of(int),
    help="RRF rank constants in the grid.",
)
@click.option("--hybrid", callback=csv_of(str), help="Sub-queries to fuse, e.g. bm25,dense (default: all).")
@click.option(
    "--folds", default=5, show_default=True, type=click.IntRange(2), help="Cross-validation folds of the dev queries."
)
@click.option(
    "--per-query/--no-per-query",
    default=True,
    show_default=True,
    help="Also cross-validate a per-query weights model (applied per request when it wins).",
)
@click.option(
    "--check-queries",
    default=3,
    show_default=True,
    type=click.IntRange(0),
    help="Held-out queries searched by the server too, to check the client-side fusion.",
)
@click.option(
    "--top-ns", default="5,10,20,40", show_default=True, callback=csv_of(int), help="Seismic grid: top_n values."
)
@click.option(
    "--heap-factors",
    default="1,1.5,2",
    show_default=True,
    callback=csv_of(float),
    help="Seismic grid: heap_factor values.",
)
@click.option(
    "--recall-target",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Seismic grid: the fastest setting with at least this recall@10 against exhaustive SEISMIC is chosen.",
)
@click.option(
    "--apply",
    is_flag=True,
    help="Make the chosen fusion (untuned unless the gain is significant) the hybrid pipeline, recorded in _meta; "
    "seismic grid: record the chosen knobs in _meta, used by search and eval for each knob not given.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report.")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG chart (needs [eval]).")
@filter_options
@encoder_options
@json_option
@click.pass_context
def tune(ctx, index, beir_dir, grid, as_json, **options):
    """Choose INDEX's hybrid fusion (normalization, combination, weights, or RRF; or per-query weights) by
    cross-validation on dev queries of BEIR_DIR, keep the untuned hybrid unless the gain is significant, and report
    it on the held-out ones next to the untuned hybrid and each single mode. With --grid seismic: grid the SEISMIC
    query knobs of a sparse_vector index over the judged queries, each setting's recall@10 against exhaustive
    SEISMIC, judged metric and p50 latency, and choose the fastest that reaches --recall-target."""
    from opensearch_kit.tune import tune as run
    from opensearch_kit.tune import tune_seismic

    other = next(g for g in GRID_OPTIONS if g != grid)
    given = [
        p.opts[0]
        for p in ctx.command.params
        if p.name in GRID_OPTIONS[other] and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE
    ]
    if given:
        raise KitError(f"{', '.join(given)}: only for --grid {other}", f"drop them, or pass --grid {other}")
    for name in GRID_OPTIONS[other]:
        options.pop(name)
    options["filter"] = gathered_filter()
    if grid == "fusion":
        options["hybrid"] = options["hybrid"] or ()
    tuned = run if grid == "fusion" else tune_seismic
    emit(tuned(transport(ctx), index, beir_dir, progress=not as_json, **options), as_json)
