"""`opensearch-kit serve start | status | stop` (needs the `ray` extra)."""

from __future__ import annotations

import click

from opensearch_kit.cli.common import emit, json_option

port_option = click.option("--port", default=8000, show_default=True, help="HTTP port.")


@click.group()
def serve() -> None:
    """Serve exports over HTTP on Ray Serve, for ML Commons remote models (opensearch-kit deploy --remote)."""


@serve.command("start")
@click.argument("exports", nargs=-1, required=True)
@port_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address of the HTTP routes; the only thing that can be exposed (e.g. 0.0.0.0: every interface, no auth).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--replicas", default=1, show_default=True, type=click.IntRange(1), help="Replicas per model.")
@click.option("--max-batch", default=32, show_default=True, type=click.IntRange(1), help="Dynamic batch size.")
@click.option(
    "--ray-address",
    help="Join this Ray cluster, with its RAY_AUTH_* settings from the environment (default: a local head on "
    "loopback with token authentication).",
)
@click.option("--cpus", type=click.IntRange(1), help="Logical CPUs of the local head (default: all).")
@json_option
def serve_start(exports, port, host, device, replicas, max_batch, ray_address, cpus, as_json) -> None:
    """Serve EXPORTS (ONNX sparse, dense and reranker exports): OpenAI /v1/embeddings, Cohere /v1/rerank, the
    bare sparse list at /v1/sparse, TEI /embed, /embed_sparse, /rerank, and /health."""
    from opensearch_kit.serve import start_server

    result = start_server(
        list(exports), port=port, host=host, device=device, replicas=replicas, max_batch=max_batch,
        ray_address=ray_address, cpus=cpus,
    )  # fmt: skip
    if as_json and result.warning:
        click.echo(result.warning, err=True)
    emit(result, as_json)


@serve.command("status")
@port_option
@json_option
def serve_status(port, as_json) -> None:
    """Where the server on PORT runs, what it serves and whether it answers."""
    from opensearch_kit.serve import server_status

    emit(server_status(port), as_json)


@serve.command("stop")
@port_option
@json_option
def serve_stop(port, as_json) -> None:
    """Stop the server on PORT and the Ray head its start began."""
    from opensearch_kit.serve import stop_server

    emit(stop_server(port), as_json)
