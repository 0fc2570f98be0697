"""Exported dense embedders deployed in the real cluster return the original model's embeddings."""

from __future__ import annotations

import uuid

import numpy as np
import onnx
import pytest
from helpers import deployed
from references import QUERY_PROMPT, qwen_reference

from opensearch_kit.artifact import Artifact, build_zip, register_body
from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model
from opensearch_kit.export.graph import save_onnx
from opensearch_kit.files import write_json
from opensearch_kit.runtime import DenseEncoder
from opensearch_kit.verify.cluster import check_in_cluster, cluster_embeddings
from opensearch_kit.verify.compare import cosines
from opensearch_kit.verify.samples import SAMPLE_TEXTS

TEXTS = ["what is neural sparse search", "손해배상 청구 소송", "OpenSearch 한국어 검색", "a"]


def export_dense(model: str, fmt: str, out, **options):
    return export_model("dense", model, out, format=fmt, **options)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_minilm_in_cluster_equals_sentence_transformers(ml, minilm, minilm_st, tmp_path, fmt):
    export = export_dense(minilm, fmt, tmp_path, name=f"test-minilm-{fmt}")
    with deployed(ml, export) as model_id:
        got = np.array(cluster_embeddings(ml, model_id, SAMPLE_TEXTS))
        assert cosines(minilm_st, got).min() >= 0.9999
        check = check_in_cluster(ml, model_id, export)
        assert check["ok"] and check["texts"] == 6 and check["queries"] == 0
        config = ml.get(model_id)["model_config"]
        assert config["embedding_dimension"] == 384 and config["additional_config"]["space_type"] == "cosinesimil"


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_qwen3_embedder_with_query_prompt_in_cluster(ml, tiny_qwen, tmp_path, fmt):
    export = export_dense(
        tiny_qwen, fmt, tmp_path, name=f"test-qwen3-{fmt}", pooling="last-token", normalize=True,
        query_prompt=QUERY_PROMPT,
    )  # fmt: skip
    with deployed(ml, export) as model_id:
        queries = np.array(cluster_embeddings(ml, model_id, TEXTS, "query"))
        passages = np.array(cluster_embeddings(ml, model_id, TEXTS, "passage"))
        assert cosines(qwen_reference(tiny_qwen, [QUERY_PROMPT + t for t in TEXTS]), queries).min() >= 0.9999
        assert cosines(qwen_reference(tiny_qwen, TEXTS), passages).min() >= 0.9999
        check = check_in_cluster(ml, model_id, export)
        assert check["ok"] and check["queries"] == 6
        with pytest.raises(KitError, match="asymmetric"):  # a prompted model needs content_type on every call
            cluster_embeddings(ml, model_id, TEXTS)


@pytest.mark.parametrize(
    ("fmt", "dtype", "quantize"), [("torchscript", "fp16", None), ("onnx", "fp16", None), ("onnx", "fp32", "int8")]
)
def test_reduced_precision_runs_in_cluster(ml, tiny_qwen, tmp_path, fmt, dtype, quantize):
    """fp16 TorchScript runs on the server's CPU libtorch 2.5.1; fp16-weight and int8 ONNX on its ONNX Runtime."""
    export = export_dense(
        tiny_qwen, fmt, tmp_path, name=f"test-qwen3-{fmt}-{quantize or dtype}", pooling="last-token", normalize=True,
        dtype=dtype, quantize=quantize,
    )  # fmt: skip
    # int8 uses 7-bit weights (reduce_range, safe on AVX2 CPUs without VNNI): 0.9896 on this random tiny Qwen3
    assert export.report["reduced_quality"]["min_cosine"] >= (0.985 if quantize else 0.99)
    with deployed(ml, export) as model_id:
        check = check_in_cluster(ml, model_id, export)
        assert check["ok"] and check["min_cosine"] >= 0.995


def test_onnx_with_external_data_deploys(ml, tiny_qwen, tmp_path):
    """ML Commons unpacks the whole zip, so an .onnx whose weights sit in a .onnx.data file beside it loads."""
    export = export_dense(tiny_qwen, "onnx", tmp_path, name="test-qwen3-external", pooling="last-token")
    files = save_onnx(onnx.load(str(export.model_file)), export.model_file, external=True)
    assert [f.name for f in files] == ["test-qwen3-external.onnx", "test-qwen3-external.onnx.data"]
    zip_path = build_zip(export.zip_path, [*files, export.tokenizer_file])
    body = export.register_body
    write_json(export.register_path, {**body, **register_body(body["name"], zip_path, "ONNX", "TEXT_EMBEDDING", "")})
    export = Artifact(export.dir, export.name)  # reads the rewritten register body
    with deployed(ml, export) as model_id:
        assert check_in_cluster(ml, model_id, export)["ok"]


def test_neural_search_prefixes_queries_not_passages(ml, client, tiny_qwen, tmp_path):
    """The text_embedding ingest processor embeds passages as passages and the neural query embeds its text as a
    query (query_prefix applied by the server), so a prompted model needs nothing from the client."""
    export = export_dense(
        tiny_qwen, "onnx", tmp_path, name="test-qwen3-neural", pooling="last-token", normalize=True,
        query_prompt=QUERY_PROMPT,
    )  # fmt: skip
    encoder = DenseEncoder.from_dir(tmp_path)
    name = f"kit-test-neural-{uuid.uuid4().hex[:8]}"
    mapping = {
        "settings": {"index.knn": True, "default_pipeline": name},
        "mappings": {
            "properties": {
                "text": {"type": "text"},
                # lucene: the Maven k-NN zip ships no faiss natives (a faiss field brings the node down)
                "emb": {"type": "knn_vector", "dimension": 32, "space_type": "cosinesimil",
                        "method": {"name": "hnsw", "engine": "lucene"}},
            }
        },
    }  # fmt: skip
    with deployed(ml, export) as model_id:
        pipeline = {"processors": [{"text_embedding": {"model_id": model_id, "field_map": {"text": "emb"}}}]}
        client.transport.perform_request("PUT", f"/_ingest/pipeline/{name}", body=pipeline)
        try:
            client.indices.create(index=name, body=mapping)
            for i, text in enumerate(TEXTS):
                client.index(index=name, id=str(i), body={"text": text}, refresh=True)
            stored = [client.get(index=name, id=str(i))["_source"]["emb"] for i in range(len(TEXTS))]
            passages = encoder.embed(TEXTS)
            assert cosines(passages, np.array(stored)).min() >= 0.9999
            query = {"neural": {"emb": {"query_text": "sparse search", "model_id": model_id, "k": len(TEXTS)}}}
            hits = client.search(index=name, body={"query": query})["hits"]["hits"]
            cos = passages @ encoder.embed(["sparse search"], is_query=True)[0]
            assert {int(h["_id"]): h["_score"] for h in hits} == pytest.approx(
                {i: (1 + c) / 2 for i, c in enumerate(cos)}, abs=1e-4
            )  # lucene cosinesimil score = (1 + cosine) / 2
        finally:
            client.indices.delete(index=name, ignore_unavailable=True)
            client.transport.perform_request("DELETE", f"/_ingest/pipeline/{name}")
