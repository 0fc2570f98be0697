"""The served models for the remote tests: ONNX exports of the tiny SPLADE, MiniLM and a tiny cross-encoder,
served by `opensearch-kit serve` on a local Ray head for the whole session (stopped at the end)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.export


@pytest.fixture(scope="session")
def served_exports(tiny_splade, minilm, tmp_path_factory) -> dict[str, str]:
    """Export dir by kind: sparse (tiny SPLADE), dense (MiniLM), reranker (tiny cross-encoder)."""
    from tiny_models import tiny_bert_cross_encoder

    from opensearch_kit.export import export_model

    root = tmp_path_factory.mktemp("served")
    source = tiny_bert_cross_encoder(root / "cross-encoder-src")
    made = {
        "sparse": export_model("sparse", tiny_splade, root / "sparse", format="onnx", name="test-remote-sparse"),
        "dense": export_model("dense", minilm, root / "dense", format="onnx", name="test-remote-dense"),
        "reranker": export_model("reranker", str(source), root / "rerank", format="onnx", name="test-remote-rerank"),
    }
    return {kind: str(a.dir) for kind, a in made.items()}


@pytest.fixture(scope="session")
def server(served_exports):
    """A running server of the three exports (its ServerRecord)."""
    from opensearch_kit.serve import start_server, stop_server
    from opensearch_kit.serve.ray_head import free_port

    port = free_port()
    record = start_server(list(served_exports.values()), port=port, cpus=2, max_batch=16)
    try:
        yield record
    finally:
        stop_server(port)


@pytest.fixture(scope="session")
def remote_models(transport, server, served_exports):
    """`deploy --remote` of each served model (checked against its export): RemoteDeployResult by kind."""
    from opensearch_kit.models import delete_model
    from opensearch_kit.remote import deploy_remote

    apis = {"sparse": "opensearch-kit", "dense": "openai", "reranker": "cohere"}
    made = {}
    try:
        for kind, api in apis.items():
            made[kind] = deploy_remote(transport, server.url, kind, api=api, reference=served_exports[kind])
        yield made
    finally:
        for result in made.values():
            delete_model(transport, result.model_id)
