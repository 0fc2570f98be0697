"""What every command shares: the connection options, `--json`, the output of results, quiet third-party
output unless `--verbose`, and turning library errors into messages with their fix."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from opensearch_kit.errors import KitError
from opensearch_kit.opensearch.connection import DEFAULT_URL, Connection
from opensearch_kit.opensearch.transport import Transport


def _json_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """--json: scripts read stdout; without a terminal, stderr gets no progress lines either (for this command)."""
    if value:
        from opensearch_kit.progress import PLAIN

        PLAIN["quiet"] = True
        ctx.call_on_close(lambda: PLAIN.update(quiet=False))
    return value


json_option = click.option(
    "--json", "as_json", is_flag=True, callback=_json_flag, help="Print a JSON record for scripts."
)


def emit(result: Any, as_json: bool) -> None:
    """Print a result (anything with `to_dict()` and `summary()`) as JSON for scripts or as text for people."""
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(result.summary())


def transport(ctx: click.Context, timeout: float = 60) -> Transport:
    """The cluster the root options point at."""
    return ctx.obj.transport(timeout)


def connection_options(group: click.Group) -> Callable:
    """The root's options: where the cluster is, how to authenticate, TLS, verbosity."""
    options = [
        click.option(
            "--url",
            envvar="OPENSEARCH_URL",
            default=DEFAULT_URL,
            show_default=True,
            help="Cluster URL (env OPENSEARCH_URL).",
        ),
        click.option("--user", envvar="OPENSEARCH_USER", help="Basic-auth user (env OPENSEARCH_USER)."),
        click.option("--password", envvar="OPENSEARCH_PASSWORD", help="Basic-auth password (env OPENSEARCH_PASSWORD)."),
        click.option(
            "--ca-certs",
            envvar="OPENSEARCH_CA_CERTS",
            type=click.Path(exists=True, dir_okay=False),
            help="CA bundle for TLS verification (env OPENSEARCH_CA_CERTS).",
        ),
        click.option(
            "--insecure", is_flag=True, help="Skip TLS certificate verification (not recommended; --ca-certs wins)."
        ),
        click.option(
            "--client-cert",
            envvar="OPENSEARCH_CLIENT_CERT",
            type=click.Path(exists=True, dir_okay=False),
            help="Client certificate (PEM) for mutual TLS (env OPENSEARCH_CLIENT_CERT).",
        ),
        click.option(
            "--client-key",
            envvar="OPENSEARCH_CLIENT_KEY",
            type=click.Path(exists=True, dir_okay=False),
            help="Its private key, unless in the certificate file (env OPENSEARCH_CLIENT_KEY).",
        ),
        click.option("--aws-sigv4", is_flag=True, help="Sign requests with AWS SigV4 (needs boto3)."),
        click.option("--verbose", "-v", is_flag=True, help="Show third-party warnings and library logs."),
    ]
    for option in reversed(options):
        group = option(group)
    return group


def make_connection(url, user, password, ca_certs, insecure, client_cert, client_key, aws_sigv4) -> Connection:
    """The root options' Connection; one warning on stderr when certificates will not be checked."""
    conn = Connection(
        url=url,
        user=user,
        password=password,
        ca_certs=ca_certs,
        insecure=insecure,
        client_cert=client_cert,
        client_key=client_key,
        aws_sigv4=aws_sigv4,
    )
    if not conn.verifies and conn.url.startswith("https:"):
        click.secho(f"warning: --insecure: the TLS certificate of {conn.url} is not checked", fg="yellow", err=True)
    return conn


VERBOSE = {"on": False}  # set by `quiet`: whether an unexpected error shows its traceback


def quiet(verbose: bool) -> None:
    """Keep third-party deprecation notices, tracer warnings, loading bars and per-request logs away from users
    unless they ask for them; the toolkit's own messages always show."""
    VERBOSE["on"] = verbose
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return
    warnings.filterwarnings("ignore")
    # third-party code logs on the root logger (onnxruntime's quantizer) or its own: errors only; ours: warnings
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    logging.getLogger("opensearch_kit").setLevel(logging.WARNING)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in ("opensearch", "urllib3", "transformers", "torch", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def csv_of(kind: type) -> Callable:
    """A click callback turning "a,b,c" into a tuple of `kind`."""

    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError as e:
            raise click.BadParameter(f"expected comma-separated {kind.__name__} values, got {value!r}") from e

    return parse


def spec_of(parse: Callable[[str], Any]) -> Callable:
    """A click callback applying an API parser (e.g. `Chunking.parse`) to an option's text."""
    return lambda ctx, param, value: None if value is None else parse(value)


def report_error(e: KitError) -> None:
    click.secho(f"error: {e}", fg="red", err=True)


def report_unexpected(e: BaseException) -> None:
    """One line for a failure the toolkit did not foresee (a bug or an unusual environment); the traceback
    with --verbose."""
    if VERBOSE["on"]:
        traceback.print_exception(e)
        return
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    click.secho(
        f"error: unexpected {type(e).__name__}{at}: {e}\n  fix: run the same command with --verbose for the details"
        " (please include them when you report it)",
        fg="red",
        err=True,
    )
