"""What a cluster runs: version, plugins, nodes, health."""

from __future__ import annotations

from opensearch_kit.client import Connection, cluster_errors

REQUIRED_PLUGINS = ("opensearch-knn", "opensearch-ml", "opensearch-neural-search", "opensearch-job-scheduler")
KNN_ENGINE_NOTE = "lucene (the Maven k-NN zip has no faiss/nmslib natives; opensearch-kit defaults to lucene)"


def cluster_status(conn: Connection) -> dict:
    """Version, plugin list, node names and health of the cluster at `conn.url`."""
    client = conn.client()
    with cluster_errors(conn):
        info = client.info()
        plugins = client.cat.plugins(format="json")
        nodes = client.cat.nodes(format="json", h="name,ip,node.role,heap.max")
        health = client.cluster.health()
    components = {p["component"] for p in plugins}
    return {
        "url": conn.url,
        "version": info["version"]["number"],
        "cluster_name": info["cluster_name"],
        "plugins": plugins,
        "missing_plugins": [p for p in REQUIRED_PLUGINS if p not in components],
        "nodes": nodes,
        "health": health,
        "knn_engine": KNN_ENGINE_NOTE,
    }
