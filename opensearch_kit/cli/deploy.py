"""`opensearch-kit deploy` and `opensearch-kit models list | undeploy | delete`."""

from __future__ import annotations

from pathlib import Path

import click

from opensearch_kit.artifact import KINDS
from opensearch_kit.cli.common import emit, json_option, transport
from opensearch_kit.remote import APIS


@click.command()
@click.argument("source", required=False)
@click.option("--kind", type=click.Choice(KINDS), help="What SOURCE is (required for a model; read from an export).")
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default="torchscript", show_default=True)
@click.option("--name", help="Model name (default: <source>-<kind>-<format>-<fingerprint[:8]>).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where an export goes when SOURCE is a model (default: the export cache, one folder per fingerprint).",
)
@click.option("--idf", type=click.Path(exists=True, path_type=Path), help="sparse-tokenizer: idf.json or a corpus.")
@click.option("--trust-remote-code", is_flag=True, help="Allow models that ship their own modeling code.")
@click.option(
    "--timeout", type=float, help="Seconds to wait for the deploy task [default: 600, plus 300 per GB past the first]."
)
@click.option("--no-check", is_flag=True, help="Skip the in-cluster parity check.")
@click.option("--remote", "remote_url", help="A model server's URL: register a remote model through a connector.")
@click.option("--api", type=click.Choice(APIS), default="opensearch-kit", show_default=True, help="--remote: its API.")
@click.option("--remote-model", help="--remote: the model name the server expects (vLLM, hosted APIs).")
@click.option("--reference", help="--remote: the model's export, for the dimension and the in-cluster parity check.")
@click.option("--credential-env", help="--remote: environment variable holding the API key.")
@click.option("--allow-endpoint", is_flag=True, help="--remote: add the server to the trusted endpoint settings.")
@json_option
@click.pass_context
def deploy(
    ctx, source, kind, fmt, name, out_dir, idf, trust_remote_code, timeout, no_check,
    remote_url, api, remote_model, reference, credential_env, allow_endpoint, as_json,
) -> None:  # fmt: skip
    """Register, deploy and verify a model in ML Commons; prints its model id.

    SOURCE is an exported zip (or its folder) from `opensearch-kit export`, or a model (local path or hub id),
    which is exported first. A model with the same fingerprint (source files, kind, format, options) already in
    the cluster is reused: no export, no upload.
    The cluster then predicts sample texts and must return what the original model returns.

    With --remote URL (no SOURCE), the model served at URL (opensearch-kit serve, vLLM, TEI, a hosted API) is
    registered as an ML Commons remote model of --kind and checked against --reference.
    """
    if remote_url:
        from opensearch_kit.remote import deploy_remote

        if source or not kind:
            raise click.UsageError("--remote takes no SOURCE and needs --kind")
        result = deploy_remote(
            transport(ctx), remote_url, kind, api=api, remote_model=remote_model, reference=reference,
            credential_env=credential_env, allow_endpoint=allow_endpoint, name=name, timeout=timeout or 300,
            check=not no_check,
        )  # fmt: skip
        return emit(result, as_json)
    if not source:
        raise click.UsageError("SOURCE is required (or --remote URL)")
    from opensearch_kit.deploy import deploy as run

    result = run(
        transport(ctx), source, kind=kind, out_dir=out_dir, timeout=timeout, check=not no_check,
        progress=not as_json, format=fmt, name=name, idf=idf, trust_remote_code=trust_remote_code,
    )  # fmt: skip
    emit(result, as_json)


@click.group()
def models() -> None:
    """List, undeploy and delete ML Commons models."""


@models.command("list")
@json_option
@click.pass_context
def models_list(ctx, as_json) -> None:
    """Every registered model: id, state, function, format, name and the indexes using it."""
    from opensearch_kit.models import list_models

    emit(list_models(transport(ctx)), as_json)


@models.command("undeploy")
@click.argument("model_id")
@click.option("--force", is_flag=True, help="Even when indexes use the model (their neural search then fails).")
@json_option
@click.pass_context
def models_undeploy(ctx, model_id, force, as_json) -> None:
    """Unload a model from every node (it stays registered); refused while an index uses it."""
    from opensearch_kit.models import undeploy_model

    emit(undeploy_model(transport(ctx), model_id, force=force), as_json)


@models.command("delete")
@click.argument("model_id")
@click.option("--force", is_flag=True, help="Even when indexes use the model (their neural search then fails).")
@json_option
@click.pass_context
def models_delete(ctx, model_id, force, as_json) -> None:
    """Undeploy and delete a model; refused while an index uses it."""
    from opensearch_kit.models import delete_model

    emit(delete_model(transport(ctx), model_id, force=force), as_json)
