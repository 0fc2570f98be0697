"""What a cluster runs: version, plugins, nodes, health."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from opensearch_kit.opensearch.transport import Transport

REQUIRED_PLUGINS = ("opensearch-knn", "opensearch-ml", "opensearch-neural-search", "opensearch-job-scheduler")
KNN_ENGINE_NOTE = "lucene (the Maven k-NN zip has no faiss/nmslib natives; opensearch-kit defaults to lucene)"


@dataclass
class ClusterStatus:
    """Version, plugin list, node names and health of a cluster."""

    url: str
    version: str
    cluster_name: str
    plugins: list[dict]
    missing_plugins: list[str]
    nodes: list[dict]
    health: dict
    knn_engine: str = KNN_ENGINE_NOTE

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        plugins = ", ".join(sorted({p["component"] for p in self.plugins}))
        lines = [
            f"{self.url}: OpenSearch {self.version}, health {self.health['status']}, "
            f"{self.health['number_of_nodes']} node(s)",
            f"plugins: {plugins}",
            f"k-NN engine: {self.knn_engine}",
        ]
        if self.missing_plugins:
            lines.append(f"missing plugins: {', '.join(self.missing_plugins)}")
        return "\n".join(lines)


def cluster_status(transport: Transport) -> ClusterStatus:
    """Version, plugins, nodes and health of the cluster behind `transport`."""
    info = transport.request("GET", "/")
    plugins = transport.request("GET", "/_cat/plugins", params={"format": "json"})
    nodes = transport.request("GET", "/_cat/nodes", params={"format": "json", "h": "name,ip,node.role,heap.max"})
    health = transport.request("GET", "/_cluster/health")
    components = {p["component"] for p in plugins}
    return ClusterStatus(
        url=transport.url,
        version=info["version"]["number"],
        cluster_name=info["cluster_name"],
        plugins=plugins,
        missing_plugins=[p for p in REQUIRED_PLUGINS if p not in components],
        nodes=nodes,
        health=health,
    )
