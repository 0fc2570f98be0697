"""The Ray Serve application: every route answers in its ecosystem's shape with exactly our local encoders'
output, bad input gets a 4xx with the reason, and the records of start / status / stop hold."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from opensearch_kit.runtime import DenseEncoder, Reranker, SparseEncoder
from opensearch_kit.serve import server_status
from opensearch_kit.serve.handlers import MAX_TEXTS

TEXTS = ["neural sparse search expands queries", "hybrid search with dense vectors", "한국어 검색 모델", "x"]


def post(url: str, body, expect: int = 200):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            status, payload = r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        status, payload = e.code, json.loads(e.read())
    assert status == expect, payload
    return payload


def test_health_lists_the_models(server):
    health = server_status(server.port).health
    assert health["status"] == "ok"
    assert sorted(m["kind"] for m in health["models"]) == ["dense", "reranker", "sparse"]


def test_openai_embeddings_equal_the_local_encoder(server, served_exports):
    got = post(f"{server.url}/v1/embeddings", {"input": TEXTS})
    assert [d["index"] for d in got["data"]] == list(range(len(TEXTS)))
    want = DenseEncoder.from_dir(Path(served_exports["dense"])).embed(TEXTS)
    np.testing.assert_allclose(np.array([d["embedding"] for d in got["data"]]), want, atol=1e-5)
    tei = post(f"{server.url}/embed", {"inputs": TEXTS[0]})
    np.testing.assert_allclose(np.array(tei), want[:1], atol=1e-5)


def test_sparse_route_returns_the_bare_token_list(server, served_exports):
    encoder = SparseEncoder.from_dir(Path(served_exports["sparse"]))
    got = post(f"{server.url}/v1/sparse", {"input": TEXTS})
    assert isinstance(got, list) and len(got) == len(TEXTS)
    for row, want in zip(got, encoder.encode(TEXTS), strict=True):
        assert row.keys() == want.keys()
        assert max(abs(row[k] - want[k]) for k in want) < 1e-5
    by_id = post(f"{server.url}/v1/sparse", {"input": TEXTS, "format": "token_id"})
    assert [r.keys() for r in by_id] == [w.keys() for w in encoder.encode_ids(TEXTS)]
    tei = post(f"{server.url}/embed_sparse", {"inputs": TEXTS[:1]})
    assert {str(e["index"]) for e in tei[0]} == set(by_id[0])


def test_rerank_routes_equal_the_local_reranker(server, served_exports):
    scores = Reranker.from_dir(Path(served_exports["reranker"])).score(TEXTS[0], TEXTS)
    got = post(f"{server.url}/v1/rerank", {"query": TEXTS[0], "documents": TEXTS, "top_n": 2})["results"]
    best = sorted(range(len(TEXTS)), key=lambda i: -scores[i])[:2]
    assert [r["index"] for r in got] == best
    assert max(abs(r["relevance_score"] - scores[r["index"]]) for r in got) < 1e-5
    tei = post(f"{server.url}/rerank", {"query": TEXTS[0], "texts": TEXTS})
    assert sorted(r["index"] for r in tei) == list(range(len(TEXTS)))


def test_concurrent_requests_batch_and_still_match(server, served_exports):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"document number {i} about search" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(lambda t: post(f"{server.url}/v1/embeddings", {"input": [t]})["data"][0], texts))
    want = DenseEncoder.from_dir(Path(served_exports["dense"])).embed(texts)
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), want, atol=1e-5)


@pytest.mark.parametrize(
    ("route", "body", "status", "reason"),
    [
        ("/v1/embeddings", {"input": []}, 400, "non-empty list"),
        ("/v1/embeddings", {"input": ["ok", 3]}, 400, "only strings"),
        ("/v1/embeddings", {"input": ["x"] * (MAX_TEXTS + 1)}, 413, "at most"),
        ("/v1/embeddings", {"input": ["x" * 60_000]}, 413, "characters"),
        ("/v1/embeddings", {"input": ["x"], "model": "nope"}, 404, "no dense model"),
        ("/v1/embeddings", {"text": ["x"]}, 400, "missing field"),
        ("/v1/rerank", {"query": "", "documents": ["a"]}, 400, "'query'"),
        ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": 0}, 400, "top_n"),
        ("/v1/sparse", {"input": ["x"], "format": "bits"}, 400, "format"),
        ("/v1/nothing", {"input": ["x"]}, 404, "no route"),
    ],
)
def test_bad_input_gets_a_4xx_with_the_reason(server, route, body, status, reason):
    got = post(f"{server.url}{route}", body, expect=status)
    assert reason in got["error"]["message"]


def test_a_body_that_is_not_json_is_a_400(server):
    assert "not JSON" in post(f"{server.url}/v1/sparse", b"{nope", expect=400)["error"]["message"]


def test_serve_status_command_reports_the_running_server(server):
    from click.testing import CliRunner

    from opensearch_kit.cli import main

    result = CliRunner().invoke(main, ["serve", "status", "--port", str(server.port), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["url"] == server.url and record["health"]["status"] == "ok"
