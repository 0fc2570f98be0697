"""The `opensearch-kit` command line: a thin root that registers one module per command group. Each command
parses its options, calls one API function and prints the result's `summary()` (or `to_dict()` with --json);
library errors become a message with its fix and exit code 1."""

from __future__ import annotations

import errno
import sys

import click

from opensearch_kit.cli.cluster import cluster
from opensearch_kit.cli.common import connection_options, make_connection, quiet, report_error, report_unexpected
from opensearch_kit.cli.datasets import datasets
from opensearch_kit.cli.demo import demo
from opensearch_kit.cli.deploy import deploy, models
from opensearch_kit.cli.export import export
from opensearch_kit.cli.index import index_group
from opensearch_kit.cli.ingest import ingest
from opensearch_kit.cli.search import evaluate, search
from opensearch_kit.cli.serve import serve
from opensearch_kit.cli.tune import tune
from opensearch_kit.errors import KitError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@connection_options
@click.pass_context
def main(ctx: click.Context, verbose: bool, **connection) -> None:
    """Hugging Face retrieval models into OpenSearch: export, deploy, index, search, evaluate."""
    quiet(verbose)
    ctx.obj = make_connection(**connection)


for command in (cluster, datasets, demo, export, deploy, models, index_group, ingest, search, evaluate, tune, serve):
    main.add_command(command)


def disk_full(e: OSError) -> KitError:
    where = f" writing {e.filename}" if e.filename else ""
    return KitError(
        f"the disk is full{where}",
        "free disk space (exports take about twice the model's size while they are written) and run the same "
        "command again",
    )


def run() -> None:
    """Entry point: a KitError becomes its message and fix (a full disk too), any other exception one line (its
    traceback with --verbose); both exit with code 1."""
    try:
        main(standalone_mode=True)
    except KitError as e:
        report_error(e)
        sys.exit(1)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            report_error(disk_full(e))
        else:
            report_unexpected(e)
        sys.exit(1)
    except Exception as e:  # the CLI edge: anything unforeseen is one line, the traceback with --verbose
        report_unexpected(e)
        sys.exit(1)
