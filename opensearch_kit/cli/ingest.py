"""`opensearch-kit ingest`."""

from __future__ import annotations

from pathlib import Path

import click

from opensearch_kit.cli.common import emit, json_option, transport


@click.command("ingest")
@click.argument("index")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["pipeline", "client"]),
    help="pipeline (default): the cluster encodes; client (implied by --engine ray): local ONNX encoders compute "
    "the vectors.",
)
@click.option(
    "--sparse-encoder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="ONNX export dir of the sparse model (client mode; in pipeline mode it counts over-length texts).",
)
@click.option(
    "--dense-encoder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="ONNX export dir of the dense model (client mode, index with a dense field).",
)
@click.option("--id-field", default="_id", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--title-field", default="title", show_default=True, help="Prepended to the text; '' for none.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1), help="Documents per bulk.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="Bulk requests in flight.")
@click.option(
    "--failures",
    "failure_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected lines go, with reasons (default <index>.failures.jsonl).",
)
@click.option("--resume", is_flag=True, help="Skip documents the index already holds (after a crash or kill).")
@click.option("--limit", type=click.IntRange(1), help="Read only the first N lines.")
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: encode (local ONNX encoders) and bulk-write on a Ray Data actor pool of --workers actors.",
)
@click.option(
    "--ray-address",
    help="--engine ray: the Ray cluster, with its RAY_AUTH_* settings from the environment (default: a local head "
    "for the run, on loopback with token authentication).",
)
@click.option("--gpus-per-worker", type=float, default=0, help="--engine ray: GPUs per encoding actor.")
@json_option
@click.pass_context
def ingest(ctx, index, source, title_field, engine, ray_address, gpus_per_worker, as_json, **options):
    """Index SOURCE (a JSONL file or BEIR directory) into INDEX; bad lines are reported, never fatal."""
    mode = options.pop("mode")
    if engine == "ray":
        from opensearch_kit.ingest.ray_engine import ingest_ray

        if mode == "pipeline":
            raise click.UsageError("--engine ray encodes locally (client mode): drop --mode pipeline")
        if not options["sparse_encoder"]:
            raise click.UsageError("--engine ray encodes locally: pass --sparse-encoder DIR (the ONNX export)")
        report = ingest_ray(
            ctx.obj, index, source, title_field=title_field or None, progress=not as_json, ray_address=ray_address,
            gpus_per_worker=gpus_per_worker, **options,
        )  # fmt: skip
        return emit(report, as_json)
    from opensearch_kit.ingest import ingest as run

    report = run(
        transport(ctx), index, source, mode=mode or "pipeline", title_field=title_field or None,
        progress=not as_json, **options,
    )  # fmt: skip
    emit(report, as_json)
