"""A local OpenSearch node assembled from Maven Central: artifacts (`maven`), the distribution (`distribution`),
a Java runtime (`jdk`), and the nodes themselves (`local`)."""

from opensearch_kit.cluster.local import DEFAULT_HEAP, LocalCluster, default_cache, default_home

__all__ = ["DEFAULT_HEAP", "LocalCluster", "default_cache", "default_home"]
