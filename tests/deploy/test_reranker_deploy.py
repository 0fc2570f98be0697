"""Rerankers deployed in the real cluster: the `rerank` search pipeline orders hits as the reference scores."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import deployed, rerank_order
from references import DOCS, QUERY, reranker_reference

from opensearch_kit.export import export_model
from opensearch_kit.verify.cluster import check_in_cluster, cluster_scores


@pytest.mark.parametrize("kind", ["cross-encoder", "yes-no"])
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_rerank_pipeline_orders_hits_as_the_reference(client, ml, rerankers, tmp_path, kind, fmt):
    export = export_model("reranker", rerankers[kind], tmp_path, format=fmt, name=f"test-rr-{kind}-{fmt}")
    want = reranker_reference(kind, rerankers[kind], QUERY, DOCS)
    with deployed(ml, export) as model_id:
        check = check_in_cluster(ml, model_id, export)
        assert check["ok"] and check["pairs"] == 12
        assert np.abs(np.array(cluster_scores(ml, model_id, QUERY, DOCS)) - want).max() <= 1e-3
        hits = rerank_order(client, model_id, QUERY)
    assert [i for i, _ in hits] == list(np.argsort(-want))
    assert max(abs(score - want[i]) for i, score in hits) <= 1e-3


@pytest.mark.parametrize(("fmt", "dtype", "quantize"), [("torchscript", "fp16", None), ("onnx", "fp32", "int8")])
def test_reduced_precision_reranker_in_cluster(ml, rerankers, tmp_path, fmt, dtype, quantize):
    export = export_model(
        "reranker", rerankers["yes-no"], tmp_path, format=fmt, name=f"test-rr-{fmt}-{dtype}", dtype=dtype,
        quantize=quantize,
    )  # fmt: skip
    assert export.report["reduced_quality"]["spearman"] >= 0.9
    with deployed(ml, export) as model_id:
        assert check_in_cluster(ml, model_id, export)["ok"]
