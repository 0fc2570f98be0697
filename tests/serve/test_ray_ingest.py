"""`ingest --engine ray` on a 2-node Ray cluster (a head and a second `ray start --address` node on this
machine): every good line indexed exactly once, planted bad lines reported, the count check holds; a worker
killed mid-run -> the run completes, or `resume` completes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SCIFACT

from opensearch_kit.cli import main
from opensearch_kit.errors import KitError
from opensearch_kit.index import create_index
from opensearch_kit.ingest.ray_engine import ingest_ray
from opensearch_kit.serve.ray_head import start_node

BAD = ["{not json", json.dumps({"_id": "no-text"}), json.dumps({"_id": "blank", "text": ""})]


@pytest.fixture(scope="module")
def ray_cluster():
    """A head (not on loopback only, as other nodes join it; token authentication on) and a second node joining
    it: (head, worker). The driver joins it as a user joins a secured cluster: RAY_AUTH_MODE=token and
    RAY_AUTH_TOKEN_PATH in the environment."""
    head = start_node(cpus=1, loopback=False)
    try:
        worker = start_node(head_address=head.address, token_file=head.token_file, cpus=1)
        try:
            with pytest.MonkeyPatch.context() as env:
                env.setenv("RAY_AUTH_MODE", "token")
                env.setenv("RAY_AUTH_TOKEN_PATH", head.token_file)
                yield head, worker
        finally:
            worker.stop()
    finally:
        head.stop()


def corpus_with_bad_lines(path: Path, docs: int) -> tuple[Path, set[str]]:
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:docs]
    mixed = lines[:10] + BAD + lines[10:]
    path.write_text("\n".join(mixed) + "\n", encoding="utf-8")
    return path, {json.loads(x)["_id"] for x in lines}


def test_two_nodes_index_every_good_line_once_and_report_the_bad(
    conn, client, deployed_splade, ray_cluster, fresh, tmp_path
):
    model_id, export_dir = deployed_splade
    index = fresh("ray")
    create_index(conn.transport(), index, model_id)
    source, good = corpus_with_bad_lines(tmp_path / "corpus.jsonl", 80)
    failures = tmp_path / "failures.jsonl"
    report = ingest_ray(
        conn, index, source, sparse_encoder=export_dir, ray_address=ray_cluster[0].address, workers=2,
        batch_size=8, failure_file=failures, progress=False,
    )  # fmt: skip
    assert report.count_ok and report.indexed == len(good) and report.rejected == len(BAD), report.summary()
    assert report.index_count == len(good)
    ids = {h["_id"] for h in client.search(index=index, body={"size": 200, "_source": False})["hits"]["hits"]}
    assert ids == good
    rejected = [json.loads(x) for x in failures.read_text().splitlines()]
    assert len(rejected) == len(BAD) and all(r["reason"] for r in rejected)


def test_a_killed_worker_loses_nothing(conn, client, deployed_splade, ray_cluster, fresh, tmp_path):
    model_id, export_dir = deployed_splade
    index = fresh("ray-kill")
    create_index(conn.transport(), index, model_id)
    source, good = corpus_with_bad_lines(tmp_path / "corpus.jsonl", 300)
    kwargs = dict(sparse_encoder=export_dir, ray_address=ray_cluster[0].address, workers=2, batch_size=4,
                  failure_file=tmp_path / "f.jsonl", progress=False)  # fmt: skip
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["report"] = ingest_ray(conn, index, source, **kwargs)
        except (KitError, Exception) as e:  # a run may fail when its worker dies; resume must then finish it
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        for pid in ray_cluster[1].pids() + ray_cluster[0].pids():
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "EncodeAndIndex" in title and client.count(index=index)["count"] > 20:
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.5)
    thread.join(600)
    assert killed, "no worker was found to kill"
    if "error" in outcome:
        outcome["report"] = ingest_ray(conn, index, source, resume=True, **kwargs)
    report = outcome["report"]
    assert report.count_ok, report.summary()
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == len(good)


def test_joining_a_secured_cluster_without_its_token_names_the_fix(
    conn, deployed_splade, ray_cluster, fresh, tmp_path, monkeypatch
):
    model_id, export_dir = deployed_splade
    index = fresh("ray-no-token")
    create_index(conn.transport(), index, model_id)
    source, _ = corpus_with_bad_lines(tmp_path / "corpus.jsonl", 10)
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    with pytest.raises(KitError) as refused:
        ingest_ray(conn, index, source, sparse_encoder=export_dir, ray_address=ray_cluster[0].address, progress=False,
                   failure_file=tmp_path / "f.jsonl")  # fmt: skip
    assert "RAY_AUTH_MODE=token" in refused.value.fix and "refused" in refused.value.message


def test_engine_ray_implies_client_mode_and_refuses_only_pipeline_mode(
    conn, client, deployed_splade, ray_cluster, fresh, tmp_path
):
    model_id, export_dir = deployed_splade
    index = fresh("ray-cli")
    create_index(conn.transport(), index, model_id)
    source, good = corpus_with_bad_lines(tmp_path / "corpus.jsonl", 20)
    args = ["--url", conn.url, "ingest", index, str(source), "--engine", "ray", "--sparse-encoder", str(export_dir)]
    refused = CliRunner().invoke(main, [*args, "--mode", "pipeline"])
    assert refused.exit_code == 2 and "drop --mode pipeline" in refused.output
    options = ["--ray-address", ray_cluster[0].address, "--workers", "1", "--failures", str(tmp_path / "f.jsonl")]
    cli = [sys.executable, "-c", "from opensearch_kit.cli import run; run()"]  # a process: stderr as users see it
    done = subprocess.run([*cli, *args, *options, "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr  # no --mode client
    marks = ("Dataset", "Deprecat", "core_worker", "Actor with class name")
    noise = [line for line in done.stderr.splitlines() if any(mark in line for mark in marks)]
    assert not noise, f"Ray Data's console lines reached the user: {noise}"
    report = json.loads(done.stdout)
    assert report["mode"] == "ray" and report["indexed"] == len(good) and report["rejected"] == len(BAD)
    assert client.count(index=index)["count"] == len(good)
