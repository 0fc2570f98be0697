"""Two local nodes form one cluster, from the cached install (no download)."""

from __future__ import annotations

from conftest import free_port

from opensearch_kit.cluster.local import LocalCluster, http_json


def test_two_nodes_form_one_cluster_from_cache(conn):
    """Runs after the session cluster exists, so every artifact is cached: nothing may be downloaded."""
    port = free_port(nodes=2)
    local = LocalCluster(port)
    rec = local.start(nodes=2, heap="512m", timeout=300)
    try:
        assert local.maven.downloaded == []
        nodes = http_json(f"{rec.url}/_cat/nodes?format=json&h=name")
        assert sorted(n["name"] for n in nodes) == ["node-0", "node-1"]
        uuids = {http_json(f"http://127.0.0.1:{p}/")["cluster_uuid"] for p in (port, port + 1)}
        assert len(uuids) == 1
        assert http_json(f"{rec.url}/_cluster/health")["number_of_nodes"] == 2
    finally:
        local.record_path.unlink()  # a lost record (crash, racing start) must not hide the nodes from stop
        stopped = local.stop()
    assert sorted(stopped.pids) == sorted(rec.pids)
    assert local.running_pids() == []
