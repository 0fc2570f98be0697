"""A node killed (SIGKILL) in the middle of an ingest and restarted with `cluster start`: the run rides through on
its retries, or stops naming `--resume`; either way every document ends up indexed exactly once. The node is a
cluster of its own (session port + 5), so the session's cluster stays up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import write_jsonl

from opensearch_kit.cluster.local import LocalCluster
from opensearch_kit.index import create_index
from opensearch_kit.opensearch import Connection

ROOT = Path(__file__).resolve().parents[2]
DOCS = 300


@pytest.fixture(scope="module")
def victim(conn, tiny_splade, tmp_path_factory):
    """(LocalCluster, its Connection, deployed tiny SPLADE id, its ONNX export dir) on a node the tests kill."""
    from opensearch_kit.export import export_model

    local = LocalCluster((urlsplit(conn.url).port or 9200) + 5)
    local.stop()
    shutil.rmtree(local.dir, ignore_errors=True)
    rec = local.start(heap="1g")
    victim_conn = Connection(rec.url)
    try:
        artifact = export_model(
            "sparse", tiny_splade, tmp_path_factory.mktemp("kill-splade"), format="onnx", name="kill"
        )
        ml = victim_conn.transport().ml
        model_id = ml.register_zip(artifact.zip_path, artifact.register_body, progress=False).model_id
        ml.deploy(model_id, timeout=300)
        yield local, victim_conn, model_id, artifact.dir
    finally:
        local.stop()


def ready_after_restart(ml, model_id: str, timeout: float = 300) -> None:
    """Wait for the redeploy a restarted node does on its own (an earlier test restarted it)."""
    deadline = time.monotonic() + timeout
    while ml.get(model_id).get("model_state") != "DEPLOYED" and time.monotonic() < deadline:
        time.sleep(2)
    ml.deploy(model_id)


@pytest.mark.parametrize("mode", ["client", "pipeline"])
def test_node_killed_mid_ingest_then_every_document_indexed_once(conn, victim, tmp_path, mode):
    local, victim_conn, model_id, export_dir = victim
    client = victim_conn.client()
    ready_after_restart(victim_conn.transport().ml, model_id)
    index = f"test-index-kill-{mode}"
    client.indices.delete(index=index, ignore_unavailable=True)
    create_index(client, index, model_id)
    source = write_jsonl(
        tmp_path / "docs.jsonl", [{"_id": f"d{i}", "text": f"document {i} on topic {i % 7}"} for i in range(DOCS)]
    )
    url = ("--url", victim_conn.url)
    cli = [sys.executable, "-c", "from opensearch_kit.cli import run; run()"]
    args = [*url, "ingest", index, str(source), "--mode", mode, "--sparse-encoder", str(export_dir)]
    args += ["--batch-size", "5", "--workers", "1", "--failures", str(tmp_path / "f.jsonl"), "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen([*cli, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while client.count(index=index)["count"] < 30:
        if run.poll() is not None:
            pytest.fail(f"the run ended before the node was killed: {run.stderr.read()}")
        assert time.monotonic() < deadline, "no 30 documents indexed in time"
        time.sleep(0.2)
    killed = local.running_pids()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    gone_by = time.monotonic() + 30  # SIGKILL is asynchronous: a JVM's exit takes a moment to free its ports
    while not set(local.running_pids()).isdisjoint(killed) and time.monotonic() < gone_by:
        time.sleep(0.1)
    restart = subprocess.run(
        [*cli, *url, "cluster", "start", "--heap", "1g"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert restart.returncode == 0, restart.stderr
    assert set(local.running_pids()).isdisjoint(killed)
    out, err = run.communicate(timeout=600)
    if run.returncode != 0:  # it gave up while the node was down: it must say how to go on
        assert "--resume" in err, err
        resumed = subprocess.run([*cli, *args, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        out = resumed.stdout
    report = json.loads(out)
    assert report["count_ok"] and report["rejected"] == 0, report
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == DOCS
    hits = client.search(index=index, body={"size": DOCS, "_source": ["text"], "query": {"match_all": {}}})["hits"][
        "hits"
    ]
    assert sorted(h["_id"] for h in hits) == sorted(f"d{i}" for i in range(DOCS))
