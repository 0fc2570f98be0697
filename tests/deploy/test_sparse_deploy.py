"""Exported sparse models deployed in the real cluster return what the local encoder returns."""

from __future__ import annotations

import json

import pytest
from helpers import deployed
from tiny_models import tiny_custom_sparse

from opensearch_kit.export import export_model
from opensearch_kit.runtime import SparseEncoder
from opensearch_kit.verify.cluster import check_in_cluster, cluster_sparse_weights

TEXTS = ["what is neural sparse search", "손해배상 청구 소송", "OpenSearch 한국어 검색"]


def assert_cluster_matches_local(ml, export, local: SparseEncoder) -> None:
    """Deploy `export`; its _predict output must equal the local encoder's: same tokens, weights within 1e-3."""
    with deployed(ml, export) as model_id:
        for got, want in zip(cluster_sparse_weights(ml, model_id, TEXTS), local.encode(TEXTS), strict=True):
            assert got.keys() == want.keys()
            assert max(abs(got[k] - want[k]) for k in want) <= 1e-3


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_tiny_splade_in_cluster_equals_local_encoder(ml, tiny_splade, tmp_path, fmt):
    local = SparseEncoder.from_dir(export_model("sparse", tiny_splade, tmp_path / "local", format="onnx").dir)
    export = export_model("sparse", tiny_splade, tmp_path / fmt, format=fmt, name=f"test-splade-{fmt}")
    assert export.report["blocked_head"]  # the cluster runs the blocked head in both formats
    assert_cluster_matches_local(ml, export, local)


@pytest.mark.parametrize(("fmt", "dtype", "quantize"), [("torchscript", "fp16", None), ("onnx", "fp32", "int8")])
def test_reduced_precision_sparse_in_cluster(ml, tiny_splade, tmp_path, fmt, dtype, quantize):
    """fp16 TorchScript runs on the server's CPU libtorch 2.5.1, int8 ONNX on its ONNX Runtime 1.16: both return
    the export's recorded weights within the report's bound."""
    name = f"test-splade-{fmt}-{quantize or dtype}"
    export = export_model("sparse", tiny_splade, tmp_path, format=fmt, name=name, dtype=dtype, quantize=quantize)
    with deployed(ml, export) as model_id:
        check = check_in_cluster(ml, model_id, export)
        assert check["ok"] and check["tolerance"] == export.report["cluster_bounds"]["max_abs_diff"], check


def test_custom_code_modernbert_in_cluster(ml, tmp_path):
    model_dir = str(tiny_custom_sparse(tmp_path / "custom"))
    options = {"name": "test-custom-sparse", "trust_remote_code": True}
    export = export_model("sparse", model_dir, tmp_path / "ts", format="torchscript", **options)
    local = SparseEncoder.from_dir(export_model("sparse", model_dir, tmp_path / "onnx", format="onnx", **options).dir)
    assert_cluster_matches_local(ml, export, local)


def test_sparse_tokenizer_returns_idf_weights(ml, tiny_splade, tmp_path):
    idf = tmp_path / "idf.json"
    idf.write_text(json.dumps({"sparse": 3.5, "search": 1.25}))
    export = export_model("sparse-tokenizer", tiny_splade, tmp_path / "out", idf=idf, name="test-splade-tokenizer")
    with deployed(ml, export) as model_id:
        got = cluster_sparse_weights(ml, model_id, ["sparse search engine"])[0]
        assert got == {"sparse": 3.5, "search": 1.25, "engine": 1.0}  # tokens missing from idf weigh 1.0
