"""Talking to a cluster: how to reach it (`Connection`), the one request path (`Transport`), ML Commons
(`MLCommons`, via `Transport.ml`) and what the cluster runs (`cluster_status`)."""

from opensearch_kit.opensearch.connection import DEFAULT_URL, Connection
from opensearch_kit.opensearch.info import ClusterStatus, cluster_status
from opensearch_kit.opensearch.ml import MLCommons, Registration
from opensearch_kit.opensearch.transport import Transport

__all__ = ["DEFAULT_URL", "ClusterStatus", "Connection", "MLCommons", "Registration", "Transport", "cluster_status"]
