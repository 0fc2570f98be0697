"""`opensearch-kit cluster start | stop | status`."""

from __future__ import annotations

from pathlib import Path

import click

from opensearch_kit.cli.common import emit, json_option, transport
from opensearch_kit.cluster import DEFAULT_HEAP, LocalCluster, default_cache
from opensearch_kit.cluster.distribution import DISTRIBUTIONS
from opensearch_kit.cluster.maven import MAVEN_REPO_ENV, MavenCache

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPENSEARCH_KIT_HOME",
    help="Install and node-data directory (env OPENSEARCH_KIT_HOME).",
)


def local(ctx: click.Context, maven_repo: str | None = None, home: Path | None = None) -> LocalCluster:
    return LocalCluster.for_url(ctx.obj.url, home=home, cache=MavenCache(default_cache(), maven_repo))


@click.group()
def cluster() -> None:
    """A local OpenSearch (ML Commons, neural-search, k-NN, nori) assembled from Maven Central."""


@cluster.command("start")
@click.option("--nodes", default=1, show_default=True, type=click.IntRange(1, 5), help="Nodes on loopback ports.")
@click.option("--heap", default=DEFAULT_HEAP, show_default=True, help="JVM heap per node.")
@click.option("--maven-repo", envvar=MAVEN_REPO_ENV, help=f"Maven repository or mirror (env {MAVEN_REPO_ENV}).")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for a healthy cluster.")
@click.option(
    "--version",
    type=click.Choice(list(DISTRIBUTIONS)),
    help="OpenSearch version to assemble [default: the version the cluster's data is of, else 3.6.0].",
)
@click.option(
    "--security",
    is_flag=True,
    help="Run the security plugin: TLS with a generated CA, user admin with the password in "
    "$OPENSEARCH_INITIAL_ADMIN_PASSWORD (needs the `security` extra).",
)
@home_option
@json_option
@click.pass_context
def cluster_start(ctx, nodes, heap, maven_repo, timeout, version, security, home, as_json) -> None:
    """Download (once), assemble and start the local cluster; wait until it is healthy."""
    from opensearch_kit.cluster.security import Security

    secured = Security.from_env() if security else None
    emit(
        local(ctx, maven_repo, home).start(nodes=nodes, heap=heap, timeout=timeout, security=secured, version=version),
        as_json,
    )


@cluster.command("stop")
@home_option
@json_option
@click.pass_context
def cluster_stop(ctx, home, as_json) -> None:
    """Stop the local cluster's nodes cleanly."""
    emit(local(ctx, home=home).stop(), as_json)


@cluster.command("status")
@json_option
@click.pass_context
def cluster_status(ctx, as_json) -> None:
    """Version, plugins, nodes and health of the cluster at --url."""
    from opensearch_kit.opensearch.info import cluster_status as status

    emit(status(transport(ctx)), as_json)
