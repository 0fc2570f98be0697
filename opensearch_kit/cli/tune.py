"""`opensearch-kit tune`."""

from __future__ import annotations

from pathlib import Path

import click

from opensearch_kit.cli.common import csv_of, emit, json_option, transport
from opensearch_kit.cli.search import encoder_options, filter_options, gathered_filter


@click.command("tune")
@click.argument("index")
@click.argument("beir_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
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
    "--apply",
    is_flag=True,
    help="Make the chosen fusion (untuned unless the gain is significant) the hybrid pipeline, recorded in _meta.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report.")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG chart (needs [eval]).")
@filter_options
@encoder_options
@json_option
@click.pass_context
def tune(ctx, index, beir_dir, sparse_encoder, dense_encoder, as_json, **options):
    """Choose INDEX's hybrid fusion (normalization, combination, weights, or RRF; or per-query weights) by
    cross-validation on dev queries of BEIR_DIR, keep the untuned hybrid unless the gain is significant, and report
    it on the held-out ones next to the untuned hybrid and each single mode."""
    from opensearch_kit.tune import tune as run

    options["hybrid"] = options["hybrid"] or ()
    options["filter"] = gathered_filter()
    report = run(
        transport(ctx),
        index,
        beir_dir,
        progress=not as_json,
        **options,
        sparse_encoder=sparse_encoder,
        dense_encoder=dense_encoder,
    )
    emit(report, as_json)
