"""The local cluster assembled from Maven Central: plugins, rank_features + knn, an offline ML deploy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_models import tiny_sparse_zip

from opensearch_kit.cluster.distribution import distribution
from opensearch_kit.cluster.local import LocalCluster
from opensearch_kit.opensearch.info import REQUIRED_PLUGINS, cluster_status


def test_plugins_are_installed(transport):
    status = cluster_status(transport)
    components = {p["component"] for p in status.plugins}
    assert set(REQUIRED_PLUGINS) | {"analysis-nori"} <= components
    assert status.missing_plugins == []
    assert status.version.startswith("3.")


def test_nori_analyzes_korean(client):
    tokens = client.indices.analyze(body={"tokenizer": "nori_tokenizer", "text": "한국어 형태소 분석기"})["tokens"]
    assert [t["token"] for t in tokens][:2] == ["한국", "어"]


def test_rank_features_and_lucene_knn(client):
    index = "test-foundation-hybrid"
    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(
        index=index,
        body={
            "settings": {"index.knn": True, "number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "properties": {
                    "text": {"type": "text"},
                    "sparse": {"type": "rank_features"},
                    "dense": {
                        "type": "knn_vector",
                        "dimension": 3,
                        "method": {"name": "hnsw", "engine": "lucene", "space_type": "l2"},
                    },
                }
            },
        },
    )
    docs = {
        "a": {"text": "cats", "sparse": {"cat": 2.0, "pet": 1.0}, "dense": [1.0, 0.0, 0.0]},
        "b": {"text": "dogs", "sparse": {"dog": 2.0, "pet": 0.5}, "dense": [0.0, 1.0, 0.0]},
        "c": {"text": "fish", "sparse": {"fish": 3.0}, "dense": [0.0, 0.0, 1.0]},
    }
    for doc_id, doc in docs.items():
        client.index(index=index, id=doc_id, body=doc)
    client.indices.refresh(index=index)
    sparse = client.search(
        index=index,
        body={
            "query": {
                "bool": {
                    "should": [
                        {"rank_feature": {"field": "sparse.dog", "linear": {}}},
                        {"rank_feature": {"field": "sparse.pet", "linear": {}}},
                    ]
                }
            }
        },
    )
    assert [h["_id"] for h in sparse["hits"]["hits"]] == ["b", "a"]
    knn = client.search(index=index, body={"size": 1, "query": {"knn": {"dense": {"vector": [0.1, 0.0, 0.9], "k": 1}}}})
    assert knn["hits"]["hits"][0]["_id"] == "c"
    client.indices.delete(index=index)


def test_ml_commons_deploys_a_chunked_torchscript_model_offline(client, ml, tmp_path):
    path, model, tok = tiny_sparse_zip(tmp_path)
    meta = {"name": "test-tiny-sparse", "model_format": "TORCH_SCRIPT", "function_name": "SPARSE_ENCODING"}
    model_id = ml.register_zip(path, meta, chunk_size=1024, progress=False).model_id
    try:
        chunks = client.search(index=".plugins-ml-model", body={"query": {"term": {"model_id": model_id}}})
        assert path.stat().st_size > 1024 and chunks["hits"]["total"]["value"] > 1  # really uploaded in chunks
        ml.deploy(model_id, timeout=300)
        texts = ["hello world", "한국어 검색 모델"]
        result = ml.predict(model_id, {"text_docs": texts})["inference_results"]
        vocab = {i: t for t, i in tok.get_vocab().items()}
        for text, res in zip(texts, result, strict=True):
            enc = tok.encode(text)
            with torch.no_grad():
                expected = model(
                    {"input_ids": torch.tensor([enc.ids]), "attention_mask": torch.tensor([enc.attention_mask])}
                )["output"][0]
            want = {vocab[i]: float(v) for i, v in enumerate(expected) if v > 0}
            got = res["output"][0]["dataAsMap"]["response"][0]
            assert got.keys() == want.keys()
            assert all(abs(got[k] - want[k]) < 1e-5 for k in want)
    finally:
        ml.delete(model_id)


def test_deploy_used_the_prestaged_libtorch(conn):
    """DJL downloads libtorch only when libtorch.so is missing; its download index would be left behind."""
    local = LocalCluster.for_url(conn.url)
    if local.record() is None:
        pytest.skip("the cluster under test was not started by opensearch-kit")
    torch_dir = local.node_dir(0) / "data" / distribution().djl_torch_dir
    assert (torch_dir / "libtorch.so").exists()
    assert not (torch_dir.parent / "2.5.1.txt").exists()
    staged = Path(local.record().home) / "djl-natives" / "libtorch_cpu.so"
    assert (torch_dir / "libtorch_cpu.so").stat().st_ino == staged.stat().st_ino
